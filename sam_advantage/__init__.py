"""Stepwise Advantage Masking (SAM) for verl: estimator, reward manager, trainer mode."""

from sam_advantage.core import VARIANTS, compute_sam_advantage, sam_metrics

__all__ = ["VARIANTS", "compute_sam_advantage", "sam_metrics"]
