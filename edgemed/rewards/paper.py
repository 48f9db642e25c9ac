"""The two graded rewards of arXiv 2606.05174 ("variance-aware" rubric rewards for GRPO), exactly.

With P, Pmax, N, Nmax over the graded items (core.Tally) and n the rubric size:
s = P / max(Pmax, 1), ρ = N / max(Nmax, 1) (0 when there are no pitfalls),
perfect = (P ≥ Pmax and N = 0).

- hybrid:     r = max(0, 15·s − 4.5·ρ) + 5·[perfect],                          range [0, 20]
- complexity: r = clip(20 · max(0, s − 0.5·ρ)^1.2 · (1 + 0.2·ln(1+n)/ln 26), 0, 25)

"Variance-aware" in the paper means partial credit, monotone in quality, so a GRPO group rarely
has zero spread; there is no explicit variance term. With probabilities as verdicts (partial
credit per item) the same formulas apply; the perfect bonus then needs every desirable item at
1.0 and every pitfall at 0.0.
"""

from __future__ import annotations

import math
from typing import Sequence

from edgemed.errors import ConfigError
from edgemed.rewards.core import tally

HYBRID_BASE, HYBRID_PITFALL, HYBRID_BONUS = 15.0, 4.5, 5.0  # 4.5 = 30 % of the base portion
COMPLEXITY_SCALE, COMPLEXITY_EXPONENT, COMPLEXITY_PITFALL = 20.0, 1.2, 0.5
COMPLEXITY_BONUS, COMPLEXITY_REF_ITEMS, COMPLEXITY_CAP = 0.2, 25, 25.0


def hybrid(points: Sequence[float], met: Sequence[float | None]) -> float | None:
    """The paper's hybrid reward: partial credit plus a bonus for a perfect answer; [0, 20].

    >>> hybrid([5, 3, -2], [1, 1, 0])   # perfect: 15 + 5
    20.0
    >>> hybrid([5, 3, -2], [1, 0, 1])   # s = 5/8, ρ = 2/2: 15·0.625 − 4.5
    4.875
    >>> hybrid([5, -2], [None, None]) is None
    True
    """
    t = tally(points, met)
    if t is None:
        return None
    base = max(0.0, HYBRID_BASE * t.score - HYBRID_PITFALL * t.pitfall_ratio)
    return base + (HYBRID_BONUS if t.perfect else 0.0)


def complexity(points: Sequence[float], met: Sequence[float | None], *,
               n_items: int | None = None) -> float | None:
    """The paper's complexity reward (its best): convex in the score, a bonus for long rubrics; [0, 25].

    ``n_items`` is n in the formula, default ``len(points)``: the rubric's size is a property of
    the prompt, so an item the judge failed on still counts towards it (only s and ρ are
    re-normalised). Pass it when ``points`` is already a filtered subset.

    >>> round(complexity([5, 3, -2], [1, 1, 0]), 4)      # 20 · 1 · (1 + 0.2·ln 4 / ln 26)
    21.702
    >>> round(complexity([5, 3, -2], [1, 0, 1]), 4)      # max(0, 0.625 − 0.5)^1.2 = 0.125^1.2
    1.7897
    """
    t = tally(points, met)
    if t is None:
        return None
    n = t.n_items if n_items is None else n_items
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n_items must be a positive integer, got {n!r}")
    adjusted = max(0.0, t.score - COMPLEXITY_PITFALL * t.pitfall_ratio)
    size_bonus = 1.0 + COMPLEXITY_BONUS * math.log1p(n) / math.log1p(COMPLEXITY_REF_ITEMS)
    r = COMPLEXITY_SCALE * adjusted ** COMPLEXITY_EXPONENT * size_bonus
    return min(max(r, 0.0), COMPLEXITY_CAP)
