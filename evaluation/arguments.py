"""Argument types and start-up shared by the project's command lines."""

from __future__ import annotations

import argparse


def _int_at_least(value: str, least: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {n}")
    return n


def positive_int(value: str) -> int:
    """An integer >= 1 (counts, sizes, steps), with argparse's error on anything else."""
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    """An integer >= 0 (an optional count where 0 means none)."""
    return _int_at_least(value, 0)


def offline_torch(threads: int | None) -> None:
    """Local model folders only (never reach a hub), and torch's CPU threads when given."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if threads:
        import torch

        torch.set_num_threads(threads)


def error_exit(exc: Exception, out: object = None) -> int:
    """Print a user's mistake as one ``error:`` line on stderr; the exit code 2.

    An OSError (an output folder that cannot be written) is named by its file, else ``out``.
    """
    import sys

    if isinstance(exc, OSError):
        print(f"error: {exc.filename or out}: {exc.strerror or exc}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 2
