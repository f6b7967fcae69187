"""Mismatch rates with a Wilson score interval, so a small sample cannot pass a gate by luck."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

Verdict = Literal["pass", "fail", "inconclusive"]


def z_for(confidence: float) -> float:
    """Two-sided z for a confidence level, e.g. 0.95 -> 1.96."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (lower, upper) for `successes` out of `n`; (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom), min(1.0, (centre + margin) / denom)


def verdict(mismatches: int, n: int, max_rate: float, *, confidence: float = 0.95, min_samples: int = 30) -> Verdict:
    """`pass` when the upper bound is within `max_rate` (and the sample is big enough), `fail` when
    even the lower bound exceeds it, otherwise `inconclusive` (not enough data to tell)."""
    lower, upper = wilson(mismatches, n, confidence)
    if n >= min_samples and upper <= max_rate:
        return "pass"
    if n > 0 and lower > max_rate:
        return "fail"
    return "inconclusive"
