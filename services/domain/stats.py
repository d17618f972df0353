"""Figures about a set of times: the nearest-rank percentile the report and the benchmarks both give."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def percentile(values: Sequence[float], p: float) -> float | None:
    """Return the nearest-rank p-th percentile, the ⌈p·n/100⌉-th smallest value (always one that occurred), or
    None for no values.

    The rank is computed exactly (p as the decimal it is written as), so p = 99.9 of 1,000 values is the 999th,
    never the 1,000th by a binary rounding error.
    """
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-Fraction(str(p)) * len(ordered) // 100)  # the ceiling, in exact decimal arithmetic
    return ordered[int(rank) - 1]
