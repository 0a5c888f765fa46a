"""Argument types shared by the project's command lines."""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """An integer >= 1 (counts, sizes, steps), with argparse's error on anything else."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def non_negative_int(value: str) -> int:
    """An integer >= 0 (an optional count where 0 means none)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n
