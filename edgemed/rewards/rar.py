"""Rubrics as Rewards (RaR, arXiv 2507.17746): explicit and implicit aggregation of rubric verdicts.

- ``explicit``: r = Σ w_j·v_j / Σ w_j with w_j = |points_j| and v_j the item's satisfaction
  (met for desirable items, 1 − met for pitfalls, which RaR phrases positively as "avoided").
- ``explicit_categories``: the same mean with RaR's category weights (Essential 1.0, Important 0.7,
  Optional 0.3, Pitfall 0.8) read from ``category:*`` tags.
- ``explicit_signed``: HealthBench's per-example score, r = Σ_{met} points / Pmax (pitfalls subtract).
- ``implicit``: one judge call rates the response against the whole rubric on a 1–10 Likert
  scale; r = (L − 1)/9 maps it onto [0, 1] with 1 → 0 and 10 → 1.

All are monotone: meeting a desirable item never lowers them, triggering a pitfall never raises them.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from edgemed.errors import ConfigError, DataError
from edgemed.rewards.core import graded, satisfaction, tally, weighted_mean

# RaR-EXPLICIT's fixed weights per criterion category (the paper's Table of category weights).
CATEGORY_WEIGHTS: dict[str, float] = {"essential": 1.0, "important": 0.7, "optional": 0.3, "pitfall": 0.8}
CATEGORY_PREFIX = "category:"
# Untagged items: the sign of points only says desirable vs pitfall; "important" is the middle
# weight, so untagged desirable items neither dominate nor vanish next to tagged ones.
UNTAGGED_POSITIVE, UNTAGGED_NEGATIVE = "important", "pitfall"


def explicit(points: Sequence[float], met: Sequence[float | None]) -> float | None:
    """RaR explicit reward weighted by |points|; range [0, 1]; None if nothing is graded.

    >>> explicit([5, 3, -2], [1, 0, 0])     # 5 + 0 + 2 (pitfall avoided) over 10
    0.7
    >>> explicit([5, 3, -2], [1, None, 1])  # the ungraded item is left out: 5 / 7
    0.7142857142857143
    """
    pts, mets = graded(points, met)
    if not pts:
        return None
    return weighted_mean(satisfaction(pts, mets), [abs(p) for p in pts])


def category_of(points: float, tags: Sequence[str]) -> str:
    """The item's RaR category: its ``category:*`` tag, else the sign of its points.

    >>> category_of(5, ["axis:accuracy", "category:essential"]), category_of(-1, []), category_of(2, [])
    ('essential', 'pitfall', 'important')
    """
    for tag in tags:
        if tag.startswith(CATEGORY_PREFIX):
            return tag[len(CATEGORY_PREFIX):].strip().lower()
    return UNTAGGED_POSITIVE if points > 0 else UNTAGGED_NEGATIVE


def explicit_categories(points: Sequence[float], met: Sequence[float | None], *,
                        tags: Sequence[Sequence[str]] | None = None,
                        weights: Mapping[str, float] | None = None) -> float | None:
    """RaR-EXPLICIT with category weights; range [0, 1]; None if nothing is graded.

    ``tags`` holds one tag list per item (the adapter passes the rubric's tags); ``weights``
    overrides entries of :data:`CATEGORY_WEIGHTS`. The category only picks the weight: whether
    ``met`` is good or bad still follows the sign of points.

    >>> explicit_categories([5, 1, -2], [1, 0, 1],
    ...     tags=[["category:essential"], ["category:optional"], ["category:pitfall"]])  # 1 / 2.1
    0.47619047619047616
    >>> explicit_categories([5, 1], [0, 1])                                           # untagged: equal weights
    0.5
    """
    tags = [()] * len(points) if tags is None else tags
    if len(tags) != len(points):
        raise DataError(f"{len(tags)} tag list(s) for {len(points)} rubric item(s)", field="tags")
    table = {**CATEGORY_WEIGHTS, **(weights or {})}
    for name, w in table.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigError(f"category weight {name!r} must be a positive number, got {w!r}")
    pts, mets = graded(points, met)
    if not pts:
        return None
    kept = [t for t, m in zip(tags, met) if m is not None]
    w = []
    for p, t in zip(pts, kept):
        cat = category_of(p, t)
        if cat not in table:
            raise DataError(f"unknown category {cat!r}; known: {sorted(table)}", field="tags")
        w.append(table[cat])
    return weighted_mean(satisfaction(pts, mets), w)


def explicit_signed(points: Sequence[float], met: Sequence[float | None], *,
                    clip: bool = False) -> float | None:
    """HealthBench's per-example score: (P − N) / Pmax over the graded items, not clipped
    unless ``clip`` (HealthBench clips only the mean over examples). Range [−Nmax/Pmax, 1].

    None when nothing is graded or no graded item is desirable (Pmax = 0: the score is undefined;
    HealthBench skips such examples too).

    >>> explicit_signed([5, 3, -4], [1, 0, 1])   # (5 − 4) / 8
    0.125
    >>> explicit_signed([2, -4], [0, 1]), explicit_signed([2, -4], [0, 1], clip=True)
    (-2.0, 0.0)
    """
    t = tally(points, met)
    if t is None or t.positive_max == 0:
        return None
    r = (t.positive - t.pitfall) / t.positive_max
    return min(max(r, 0.0), 1.0) if clip else r


def implicit(points: Sequence[float], met: Sequence[float | None], *,
             rating: float | None = None) -> float | None:
    """RaR implicit reward from one holistic 1–10 Likert rating: (L − 1) / 9, range [0, 1].

    ``points`` and ``met`` are not read (the judge saw the whole rubric in one call); they keep
    the signature every reward shares. A failed rating (None) gives None.

    >>> implicit([5, -2], [None, None], rating=7)
    0.6666666666666666
    >>> implicit([5], [None], rating=None) is None
    True
    """
    if rating is None:
        return None
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not (1.0 <= rating <= 10.0):
        raise DataError(f"must be None or a number in [1, 10], got {rating!r}", field="rating")
    return (float(rating) - 1.0) / 9.0
