"""The shared first step of every rubric reward: check (points, met), drop ungraded items, tally.

Conventions every reward in this package follows (docs/rewards.md):

- ``points[j]`` is the item's signed weight: > 0 desirable, < 0 pitfall (docs/method.md §1).
- ``met[j]`` is 1/0, a probability in [0, 1] (continuous partial credit), or ``None`` when the
  judge failed. For a pitfall, met means the bad behaviour is present.
- ``None`` is never read as 0: the item is left out and the reward re-normalised over the graded
  items. When no item is graded the reward is ``None`` (trl then ignores the row).

Pure Python on purpose: no numpy or torch, so rewards stay cheap to import and to property-test.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from edgemed.errors import DataError

# The paper thresholds a judge probability at 0.5 when it wants yes/no verdicts.
BINARY_THRESHOLD = 0.5


class Tally(NamedTuple):
    """Sums over the graded items of one response (docs/method.md §3 notation).

    ``positive`` = P (points of met desirable items), ``positive_max`` = Pmax, ``pitfall`` = N
    (|points| of met pitfalls), ``pitfall_max`` = Nmax, ``n_items`` = rubric size (graded or not),
    ``n_graded`` = items with a verdict.
    """

    positive: float
    positive_max: float
    pitfall: float
    pitfall_max: float
    n_items: int
    n_graded: int

    @property
    def n_ungraded(self) -> int:
        return self.n_items - self.n_graded

    @property
    def score(self) -> float:
        """s = P / max(Pmax, 1): the paper's normalised positive score."""
        return self.positive / max(self.positive_max, 1.0)

    @property
    def pitfall_ratio(self) -> float:
        """ρ = N / max(Nmax, 1), or 0 when the graded rubric has no pitfalls."""
        return self.pitfall / max(self.pitfall_max, 1.0) if self.pitfall_max > 0 else 0.0

    @property
    def perfect(self) -> bool:
        """Every graded desirable item fully met and no graded pitfall triggered at all."""
        return self.positive >= self.positive_max and self.pitfall == 0


def check(points: Sequence[float], met: Sequence[float | None]) -> None:
    """Raise a clear error for inputs no reward can be computed from.

    >>> check([5, -2], [1.0, None])
    >>> check([5, -2], [1.0])
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: met: 1 verdict(s) for 2 rubric item(s)
    """
    if len(points) != len(met):
        raise DataError(f"{len(met)} verdict(s) for {len(points)} rubric item(s)", field="met")
    for j, p in enumerate(points):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p == 0:
            raise DataError(f"must be a finite non-zero number, got {p!r}", field=f"points[{j}]")
    for j, m in enumerate(met):
        if m is None:
            continue
        if not isinstance(m, (int, float)) or not (0.0 <= m <= 1.0):
            raise DataError(f"must be None or a number in [0, 1], got {m!r}", field=f"met[{j}]")


def binarize(met: Sequence[float | None], threshold: float = BINARY_THRESHOLD) -> list[float | None]:
    """Turn judge probabilities into the paper's yes/no verdicts (``met >= threshold``); keeps None.

    >>> binarize([0.2, 0.5, None, 0.97])
    [0.0, 1.0, None, 1.0]
    """
    return [None if m is None else float(m >= threshold) for m in met]


def graded(points: Sequence[float], met: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """The items with a verdict, as parallel lists (after :func:`check`).

    >>> graded([5, 3, -2], [1, None, 0.25])
    ([5.0, -2.0], [1.0, 0.25])
    """
    check(points, met)
    pairs = [(float(p), float(m)) for p, m in zip(points, met) if m is not None]
    return [p for p, _ in pairs], [m for _, m in pairs]


def satisfaction(points: Sequence[float], met: Sequence[float]) -> list[float]:
    """Per-item "how good is this response here" in [0, 1]: met for desirable items, 1 − met
    for pitfalls (a pitfall is phrased positively as "avoided", as RaR does).

    >>> satisfaction([5, -2], [1.0, 0.25])
    [1.0, 0.75]
    """
    return [m if p > 0 else 1.0 - m for p, m in zip(points, met)]


def tally(points: Sequence[float], met: Sequence[float | None]) -> Tally | None:
    """Check the inputs, leave ungraded items out, and sum what the formulas need.

    Returns None when no item is graded: there is nothing to score, and 0 would be a lie.

    >>> t = tally([5, 3, -2, -1], [1, 0.5, 1, None])
    >>> t.positive, t.positive_max, t.pitfall, t.pitfall_max, t.n_items, t.n_graded
    (6.5, 8.0, 2.0, 2.0, 4, 3)
    >>> tally([5, -2], [None, None]) is None
    True
    """
    pts, mets = graded(points, met)
    if not pts:
        return None
    # fsum keeps P == Pmax exact when every item is met, which the hybrid's perfect bonus tests.
    return Tally(
        positive=math.fsum(p * m for p, m in zip(pts, mets) if p > 0),
        positive_max=math.fsum(p for p in pts if p > 0),
        pitfall=math.fsum(-p * m for p, m in zip(pts, mets) if p < 0),
        pitfall_max=math.fsum(-p for p in pts if p < 0),
        n_items=len(points),
        n_graded=len(pts),
    )


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """Σ w·v / Σ w, computed with fsum so equal inputs give bit-equal outputs.

    >>> weighted_mean([1.0, 0.0], [3.0, 1.0])
    0.75
    """
    return math.fsum(w * v for v, w in zip(values, weights)) / math.fsum(weights)
