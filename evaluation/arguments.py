"""Argument types shared by the project's command lines."""

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
