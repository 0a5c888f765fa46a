"""Stepwise Advantage Masking (SAM) for verl: estimator, reward manager, trainer mode."""

# verl loads this package's plugin while it is itself being imported. Importing
# verl first means that happens before any of our submodules start importing,
# so the plugin never sees a half-initialised module of ours.
import verl  # noqa: F401  (import order matters, see above)

from sam_advantage.core import VARIANTS, compute_sam_advantage, sam_metrics  # noqa: E402

__all__ = ["VARIANTS", "compute_sam_advantage", "sam_metrics"]
