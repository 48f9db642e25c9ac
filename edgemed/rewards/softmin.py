"""Soft-min aggregation of rubric items: reward the weakest criteria more than a plain mean does.

A mean over criteria lets a response trade a missed essential point for several easy ones. The
soft-min −(1/k)·log mean_j exp(−k·x_j) lies between min_j x_j and mean_j x_j and, for small k,
≈ mean − (k/2)·variance: a variance-penalised aggregate (RVPO, arXiv 2605.05750).

- ``softmin``: per response, over the item satisfactions v_j ∈ [0, 1] (met, or 1 − met for a
  pitfall), weighted by |points|. Range [0, 1].
- ``rvpo_group``: RVPO's group form. For the G responses to one prompt, each criterion's
  satisfactions are turned into z-scores across the group, Z_ij = (v_ij − μ_j) / σ_j, and
  response i gets A_i = −(1/k)·log Σ_j w_j·exp(−k·Z_ij) / Σ_j w_j. A criterion every response
  meets (or misses) has Z = 0 and says nothing; a response is pushed up by the criteria where it
  beats its siblings and held back most by the one where it trails them.
"""

from __future__ import annotations

import math
from typing import Sequence

from edgemed.errors import ConfigError, DataError
from edgemed.rewards.core import check, graded, satisfaction

DEFAULT_K = 2.0  # a rubric half met with 0/1 verdicts scores 0.28 instead of its mean 0.5
DEFAULT_GROUP_K = 1.0  # z-scores have unit variance, so k = 1 already halves a one-σ spread
# Criterion spreads below this are raised to it: judge-probability jitter of 0.001 must not become a
# full unit z-score (the tiny-std problem of docs/method.md §4). Binary verdicts in groups of 2–16 have
# σ ≥ 0.24, untouched by it.
DEFAULT_MIN_STD = 0.1


def _check_k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k <= 0:
        raise ConfigError(f"softmin k must be a positive number, got {k!r}")
    return float(k)


def soft_minimum(values: Sequence[float], weights: Sequence[float], k: float) -> float:
    """−(1/k)·log(Σ w·exp(−k·x) / Σ w), computed stably (shifted by the minimum).

    >>> round(soft_minimum([0.0, 1.0], [1.0, 1.0], k=50.0), 3)   # large k → the minimum
    0.014
    >>> round(soft_minimum([0.5, 0.5], [1.0, 3.0], k=4.0), 12)   # equal values → that value
    0.5
    """
    k = _check_k(k)
    low = min(values)
    total = math.fsum(weights)
    inner = math.fsum(w * math.exp(-k * (x - low)) for x, w in zip(values, weights)) / total
    return low - math.log(inner) / k


def softmin(points: Sequence[float], met: Sequence[float | None], *, k: float = DEFAULT_K) -> float | None:
    """Soft-min of the item satisfactions, weighted by |points|; range [0, 1]; None if nothing graded.

    Always between the weakest item and :func:`edgemed.rewards.explicit` (the weighted mean).

    >>> round(softmin([5, 5, -2], [1, 1, 0]), 6)       # every item satisfied
    1.0
    >>> round(softmin([1, 1], [1, 0]), 4)             # mean 0.5, pulled towards the missed item
    0.2831
    """
    pts, mets = graded(points, met)
    if not pts:
        return None
    return soft_minimum(satisfaction(pts, mets), [abs(p) for p in pts], k)


def _column_stats(column: Sequence[float | None], min_std: float) -> tuple[float, float] | None:
    vals = [v for v in column if v is not None]
    if not vals:
        return None
    mu = math.fsum(vals) / len(vals)
    sd = math.sqrt(math.fsum((v - mu) ** 2 for v in vals) / len(vals))
    return mu, max(sd, min_std)


def rvpo_group(points: Sequence[float], met_rows: Sequence[Sequence[float | None]], *,
               k: float = DEFAULT_GROUP_K, min_std: float = DEFAULT_MIN_STD) -> list[float | None]:
    """RVPO group soft-min over per-criterion z-scores; one value per response (row).

    ``met_rows`` is the G × n matrix of verdicts of G responses to the same rubric. Items a row's
    judge failed on are left out of that row and of the criterion's group statistics; a row with
    no verdict at all gets None. Values are centred near 0 (they are advantages); trl's own group
    normalisation afterwards only rescales them.

    >>> a = rvpo_group([5, 5], [[1, 1], [1, 0], [0, 0]])
    >>> [round(x, 3) for x in a]
    [0.999, -0.232, -1.122]
    >>> rvpo_group([5, 5], [[1, 1], [1, 1]])    # nothing separates the two responses
    [0.0, 0.0]
    """
    k = _check_k(k)
    if isinstance(min_std, bool) or not isinstance(min_std, (int, float)) or not min_std > 0:
        raise ConfigError(f"min_std must be a positive number, got {min_std!r}")
    sat_rows: list[list[float | None]] = []
    for i, row in enumerate(met_rows):
        try:
            check(points, row)
        except DataError as e:
            raise DataError(e.message, field=f"met_rows[{i}].{e.field}") from None
        sat_rows.append([None if m is None else (m if p > 0 else 1.0 - m) for p, m in zip(points, row)])
    stats = [_column_stats([r[j] for r in sat_rows], min_std) for j in range(len(points))]
    out: list[float | None] = []
    for row in sat_rows:
        zs, ws = [], []
        for j, v in enumerate(row):
            if v is None or stats[j] is None:
                continue
            mu, sd = stats[j]
            zs.append((v - mu) / sd)
            ws.append(abs(points[j]))
        out.append(soft_minimum(zs, ws, k) if zs else None)
    return out
