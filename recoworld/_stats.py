"""Confidence intervals shared by the benchmark tables and off-policy evaluation."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ci95", "jsd", "t_interval", "t_quantile"]

# Two-sided 95% Student-t quantiles for 1..30 degrees of freedom.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile: exact table for 95% and ``df ≤ 30``, else the
    Cornish–Fisher expansion around the normal quantile (within 0.5% for ``df ≥ 3``)."""
    if df < 1:
        raise ValueError(f"df: expected at least 1 degree of freedom, got {df}")
    if level == 0.95 and df <= len(_T95):
        return _T95[df - 1]
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def t_interval(values: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of ``values`` (e.g. one figure
    per seed); the half-width is NaN for a single value, both are NaN for none."""
    arr = np.asarray(values, np.float64).ravel()
    if arr.size == 0:
        return float("nan"), float("nan")
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan")
    df = arr.size - 1
    return mean, t_quantile(df, level) * float(arr.std(ddof=1)) / math.sqrt(arr.size)


def ci95(values: ArrayLike) -> tuple[float, float]:
    """Mean and 95% t-interval half-width of the finite ``values`` (NaN and inf skipped): the
    cell of the benchmark and experiment tables."""
    arr = np.asarray(values, np.float64).ravel()
    return t_interval(arr[np.isfinite(arr)])


def jsd(p: NDArray[np.floating], q: NDArray[np.floating]) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) of two histograms (normalized here):
    ``½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = ½(p + q)``."""
    a = np.asarray(p, np.float64)
    b = np.asarray(q, np.float64)
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    a, b = a / a.sum(), b / b.sum()
    m = 0.5 * (a + b)

    def kl(x: NDArray[np.float64]) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return 0.5 * kl(a) + 0.5 * kl(b)
