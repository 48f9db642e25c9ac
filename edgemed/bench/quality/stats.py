"""Every statistic the bench reports, once: the bootstraps, the exact sign/McNemar test, the length regression.

Pure math over lists of numbers: no I/O, no torch, nothing of bench.json's layout (the formulas that
make the numbers live in ``healthbench`` and ``metrics``; ``compare`` applies these tests to
two builds' per-prompt rows).

- **Resampling**: every bootstrap draws ``resample_indices(n, n_bootstrap, seed)`` (examples with
  replacement, numpy's ``default_rng(seed)``), so one seed gives the same resamples everywhere and
  a paired test resamples the prompts once for both arms (prompt difficulty cancels out).
- **Intervals**: 95% percentile intervals (2.5th and 97.5th percentile of the resampled statistic).
- **Exact test**: the two-sided sign test (binomial, p = ½) on the non-zero differences;
  McNemar's exact test is the same test on the discordant pass/fail pairs.
- **Length control**: OLS of the per-prompt score difference on the answer-token difference; the
  intercept is the gain at equal length.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def resample_indices(n: int, n_bootstrap: int = 1000, seed: int = 0) -> np.ndarray:
    """``n_bootstrap`` rows of ``n`` example indices drawn with replacement: one bootstrap resample per row.

    >>> resample_indices(3, 2, seed=0).shape
    (2, 3)
    """
    return np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))


def percentile_ci(boot: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of resampled values.

    >>> percentile_ci(list(range(101)))
    (2.5, 97.5)
    """
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(lo), float(hi)


def clipped_mean_std(values: Sequence[float], n_bootstrap: int = 1000, seed: int = 0) -> float:
    """simple-evals' bootstrap std: the population std of the resampled means, each clipped to [0, 1].

    >>> clipped_mean_std([1.2, 1.4])                  # every resampled mean clips to 1.0
    0.0
    >>> round(clipped_mean_std([0.0, 1.0] * 50, seed=1), 2)   # ≈ √(0.25/100)
    0.05
    """
    arr = np.asarray(values, dtype=float)
    boot = np.clip(arr[resample_indices(arr.size, n_bootstrap, seed)].mean(axis=1), 0.0, 1.0)
    return float(boot.std())


def bootstrap_mean_ci(values: Sequence[float], n_bootstrap: int = 1000,
                      seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Unclipped mean and its 95% percentile bootstrap CI (resampling examples with replacement).

    >>> bootstrap_mean_ci([-0.5, -0.5, -0.5])
    (-0.5, -0.5, -0.5)
    >>> m, lo, hi = bootstrap_mean_ci([-1.0, 0.0] * 20); m, lo < m < hi
    (-0.5, True)
    >>> bootstrap_mean_ci([])
    (None, None, None)
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None, None, None
    lo, hi = percentile_ci(arr[resample_indices(arr.size, n_bootstrap, seed)].mean(axis=1))
    mean = float(arr.mean())
    return mean, min(lo, mean), max(hi, mean)


def _paired_arrays(a: Sequence[float], b: Sequence[float], error: str) -> tuple[np.ndarray, np.ndarray]:
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1 or a_arr.size == 0:
        raise ValueError(error)
    return a_arr, b_arr


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_bootstrap: int = 1000,
                     seed: int = 0) -> tuple[float, float, float, float]:
    """Difference of clipped means (b − a), its 95% percentile CI and a two-sided bootstrap p-value.

    >>> d, lo, hi, p = paired_bootstrap([0.2] * 30, [0.6] * 30)
    >>> round(d, 6), round(lo, 6), round(hi, 6), p
    (0.4, 0.4, 0.4, 0.0)
    """
    a_arr, b_arr = _paired_arrays(a, b, "paired_bootstrap needs two equally long, non-empty score lists")
    diff = float(np.clip(b_arr.mean(), 0, 1) - np.clip(a_arr.mean(), 0, 1))
    idx = resample_indices(a_arr.size, n_bootstrap, seed)
    boot = np.clip(b_arr[idx].mean(1), 0, 1) - np.clip(a_arr[idx].mean(1), 0, 1)
    lo, hi = percentile_ci(boot)
    # Two-sided: how often the resampled difference lands on the other side of zero.
    p = min(1.0, 2 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    return diff, lo, hi, p


def sign_test(diffs: Sequence[float], tol: float = 1e-12) -> tuple[int, int, float]:
    """Exact two-sided sign test: (n up, n down, p); ties (|d| ≤ tol) are dropped, no differences → p = 1.

    >>> sign_test([0.1] * 8)                          # all 8 up: p = 2 / 2^8
    (8, 0, 0.0078125)
    >>> sign_test([0.0, 0.0]), sign_test([0.2, -0.1])
    ((0, 0, 1.0), (1, 1, 1.0))
    """
    up = sum(1 for d in diffs if d > tol)
    down = sum(1 for d in diffs if d < -tol)
    n = up + down
    if n == 0:
        return up, down, 1.0
    k = min(up, down)
    return up, down, min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def mcnemar_exact(a_pass: Sequence[bool], b_pass: Sequence[bool]) -> tuple[int, int, float]:
    """McNemar's exact test: (a-only passes, b-only passes, two-sided p), i.e. the sign test on the
    discordant pairs (a pair both pass or both fail is a tie).

    >>> mcnemar_exact([0] * 10, [1] * 8 + [0] * 2)    # 8 discordant, all favouring b: p = 2 / 2^8
    (0, 8, 0.0078125)
    >>> mcnemar_exact([1, 0], [1, 0])
    (0, 0, 1.0)
    """
    if len(a_pass) != len(b_pass):
        raise ValueError("mcnemar_exact needs paired lists of equal length")
    b_only, a_only, p = sign_test([int(bool(y)) - int(bool(x)) for x, y in zip(a_pass, b_pass)])
    return a_only, b_only, p


def paired_difference(a: Sequence[float], b: Sequence[float], n_bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """Mean per-prompt difference B − A, its paired-bootstrap 95% CI and the sign test, on one metric.

    >>> d = paired_difference([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    >>> d["diff"], d["ci_low"], d["ci_high"], d["sign_p"]
    (0.0, 0.0, 0.0, 1.0)
    >>> d = paired_difference([0.0] * 10, [0.5] * 10); d["diff"], d["ci_low"], d["n_up"], round(d["sign_p"], 4)
    (0.5, 0.5, 10, 0.002)
    """
    a_arr, b_arr = _paired_arrays(a, b, "paired_difference needs two equally long, non-empty lists")
    d = b_arr - a_arr
    diff, lo, hi = bootstrap_mean_ci(d, n_bootstrap, seed)
    up, down, p = sign_test(d.tolist())
    return {"n": int(d.size), "mean_a": float(a_arr.mean()), "mean_b": float(b_arr.mean()), "diff": diff,
            "ci_low": lo, "ci_high": hi, "n_up": up, "n_down": down, "n_tie": int(d.size) - up - down,
            "sign_p": p}


def _intercept_and_slope(dy: np.ndarray, dx: np.ndarray) -> tuple[float, float]:
    """OLS of dy on dx: (intercept, slope); a constant dx leaves only the mean (slope 0)."""
    if dx.size < 2 or float(np.var(dx)) < 1e-12:
        return float(dy.mean()), 0.0
    slope = float(np.cov(dx, dy, bias=True)[0, 1] / np.var(dx))
    return float(dy.mean() - slope * dx.mean()), slope


LENGTH_CONTROL_METHOD = ("intercept of the per-prompt score difference regressed on the per-prompt answer-token "
                         "difference (OLS), i.e. the expected gain when both answers have equal length; "
                         "95% CI by paired bootstrap over prompts")


def length_controlled_difference(a_scores: Sequence[float], b_scores: Sequence[float], a_len: Sequence[float],
                                 b_len: Sequence[float], n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The score difference B − A at equal answer length, with its paired-bootstrap 95% CI.

    Per prompt, d_score = α + β·d_tokens: a gain bought by writing longer answers shows as β > 0
    with α near 0; α is what B gains over A when the two answers are equally long.

    >>> a, b = [0.1, 0.2, 0.3, 0.4], [0.2, 0.4, 0.6, 0.8]
    >>> r = length_controlled_difference(a, b, [10, 10, 10, 10], [20, 30, 40, 50])  # all the gain is length
    >>> round(r["diff"], 6), round(r["slope_per_100_tokens"], 4), r["length_diff"]
    (0.0, 1.0, 25.0)
    >>> r = length_controlled_difference([0.0] * 6, [0.1] * 6, [5] * 6, [5, 6, 4, 5, 6, 4])
    >>> round(r["diff"], 6), round(r["ci_low"], 6)
    (0.1, 0.1)
    """
    ys = np.asarray(b_scores, float) - np.asarray(a_scores, float)
    xs = np.asarray(b_len, float) - np.asarray(a_len, float)
    if ys.shape != xs.shape or ys.size == 0:
        raise ValueError("length_controlled_difference needs equally long, non-empty lists")
    alpha, beta = _intercept_and_slope(ys, xs)
    lo, hi = percentile_ci([_intercept_and_slope(ys[idx], xs[idx])[0]
                            for idx in resample_indices(ys.size, n_bootstrap, seed)])
    return {"method": LENGTH_CONTROL_METHOD, "n": int(ys.size), "diff": alpha, "ci_low": min(lo, alpha),
            "ci_high": max(hi, alpha), "slope_per_100_tokens": beta * 100, "length_diff": float(xs.mean())}
