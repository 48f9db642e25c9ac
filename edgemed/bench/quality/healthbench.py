"""HealthBench scoring and the paper's metrics: pure math over (points, met), no I/O, no torch.

Two families, always labelled apart in reports (docs/method.md §5):

- **HealthBench** (OpenAI simple-evals): per example, Σ points of met items / Σ positive points,
  not clipped; the aggregate is the mean clipped to [0, 1] with a bootstrap std of that clipped
  mean (``edgemed.bench.quality.stats.clipped_mean_std``); per ``axis:*`` rubric tag the same formula over
  the tag's items; per ``theme:*`` example tag the example's overall score.
- **The paper's metrics** (arXiv 2606.05174): pass = normalised score > 0.5 with
  norm = (achieved − min_possible) / (max_possible − min_possible), min_possible = Σ negative
  points; accuracy = mean(pass); F1 = 2·acc / (1 + acc) because their ground truth is all ones;
  95% CI = binomial ±1.96·√(acc(1 − acc)/n).
- **The paper's keyword heuristic** (``paper_keyword_pass``): the evaluation its released code
  actually runs, with no judge at all; reported beside the judge-based figures, labelled as such.

``met`` entries are 1/0, a probability in [0, 1] (partial credit: points × p), or ``None`` when
the judge failed. A None item is left out of numerator *and* denominator: a failure is never
"not met" (docs/method.md §2). An example with no gradable positive item has no score (None) and is
counted, not averaged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edgemed.bench.quality import stats

Met = float | bool | None


def _graded(points: Sequence[float], met: Sequence[Met]) -> list[tuple[float, float]]:
    if len(points) != len(met):
        raise ValueError(f"{len(points)} points but {len(met)} judgements")
    out = []
    for p, m in zip(points, met):
        if m is None:
            continue
        m = float(m)
        if not 0.0 <= m <= 1.0 or math.isnan(m):
            raise ValueError(f"met must be in [0, 1] or None, got {m!r}")
        out.append((float(p), m))
    return out


def example_score(points: Sequence[float], met: Sequence[Met]) -> float | None:
    """HealthBench per-example score: Σ points of met items / Σ positive points (not clipped).

    >>> example_score([5, 3, -4], [1, 0, 0])          # 5 / 8
    0.625
    >>> example_score([5, 3, -4], [1, 0, 1])          # pitfalls subtract; may go below 0
    0.125
    >>> example_score([5, 3, -4], [0, 0, 1])
    -0.5
    >>> example_score([5, 3], [1, None])              # a failed judgement is left out, not "not met"
    1.0
    >>> example_score([5, 3], [0.5, 1])               # probabilities give partial credit
    0.6875
    >>> example_score([5, -2], [None, 1]) is None     # nothing positive left to score against
    True
    """
    graded = _graded(points, met)
    possible = sum(p for p, _ in graded if p > 0)
    if possible <= 0:
        return None
    return sum(p * m for p, m in graded) / possible


def tag_scores(points: Sequence[float], met: Sequence[Met],
               tags: Sequence[Iterable[str]], prefix: str = "axis:") -> dict[str, float]:
    """Per rubric-tag scores of one example (simple-evals: a tag with no positive item is skipped).

    >>> tag_scores([5, 3, -4], [1, 0, 1], [["axis:accuracy"], ["axis:completeness"], ["axis:accuracy"]])
    {'axis:accuracy': 0.2, 'axis:completeness': 0.0}
    """
    by_tag: dict[str, tuple[list[float], list[Met]]] = defaultdict(lambda: ([], []))
    for p, m, item_tags in zip(points, met, tags):
        for t in dict.fromkeys(item_tags):
            if t.startswith(prefix):
                by_tag[t][0].append(p)
                by_tag[t][1].append(m)
    out = {}
    for t in sorted(by_tag):
        s = example_score(*by_tag[t])
        if s is not None:
            out[t] = s
    return out


@dataclass(frozen=True)
class Aggregate:
    """HealthBench aggregate: clipped mean, bootstrap std of the clipped mean, n (+ examples left out)."""

    score: float | None
    std: float | None
    n: int
    n_excluded: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def aggregate(scores: Sequence[float | None], n_bootstrap: int = 1000, seed: int = 0) -> Aggregate:
    """Mean of per-example scores clipped to [0, 1], with simple-evals' bootstrap std.

    The std is that of ``n_bootstrap`` clipped means of resamples with replacement (population std,
    as ``np.std``); None scores (no gradable item) are excluded and counted.

    >>> aggregate([0.5, 1.5, -0.2]).score            # mean 0.6
    0.6
    >>> aggregate([1.2, 1.4]).score, aggregate([1.2, 1.4]).std   # clipped: every resample is 1.0
    (1.0, 0.0)
    >>> a = aggregate([0.0, 1.0] * 50, seed=1); round(a.std, 2), a.n   # ≈ √(0.25/100)
    (0.05, 100)
    >>> aggregate([None, 0.5])
    Aggregate(score=0.5, std=0.0, n=1, n_excluded=1)
    >>> aggregate([None]).score is None
    True
    """
    values = np.array([s for s in scores if s is not None], dtype=float)
    excluded = len(scores) - len(values)
    if len(values) == 0:
        return Aggregate(None, None, 0, excluded)
    mean = float(np.clip(values.mean(), 0.0, 1.0))
    return Aggregate(mean, stats.clipped_mean_std(values, n_bootstrap, seed), len(values), excluded)


@dataclass(frozen=True)
class PaperMetrics:
    """The paper's pass-rate metrics. ``f1`` is 2·acc/(1+acc) — all-ones ground truth, as they compute it."""

    accuracy: float | None
    f1: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_pass: int
    n_excluded: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def normalised_score(points: Sequence[float], met: Sequence[Met]) -> float | None:
    """The paper's norm = (achieved − Σ negative) / (Σ positive − Σ negative), in [0, 1].

    >>> normalised_score([5, 3, -4], [1, 0, 0])       # (5 + 4) / (8 + 4)
    0.75
    >>> normalised_score([5, 3, -4], [1, 0, 1])       # (1 + 4) / 12
    0.4166666666666667
    >>> normalised_score([5], [None]) is None
    True
    """
    graded = _graded(points, met)
    max_possible = sum(p for p, _ in graded if p > 0)
    min_possible = sum(p for p, _ in graded if p < 0)
    if max_possible - min_possible <= 0:
        return None
    achieved = sum(p * m for p, m in graded)
    return (achieved - min_possible) / (max_possible - min_possible)


def paper_metrics(points_list: Sequence[Sequence[float]], met_list: Sequence[Sequence[Met]]) -> PaperMetrics:
    """Pass rate at norm > 0.5 (accuracy), the paper's F1 and the binomial 95% CI (clipped to [0, 1]).

    >>> m = paper_metrics([[5, -4], [5, -4], [2, 2], [1]], [[1, 0], [0, 1], [1, 0], [0]])
    >>> m.n_pass, m.n, m.accuracy, round(m.f1, 4)    # norms 1.0, 0.0, 0.5 (not > 0.5), 0.0
    (1, 4, 0.25, 0.4)
    >>> round(m.ci_low, 4), round(m.ci_high, 4)      # 0.25 ± 1.96·√(0.25·0.75/4)
    (0.0, 0.6744)
    """
    if len(points_list) != len(met_list):
        raise ValueError(f"{len(points_list)} examples of points but {len(met_list)} of judgements")
    norms = [normalised_score(p, m) for p, m in zip(points_list, met_list)]
    passes = [n > 0.5 for n in norms if n is not None]
    return pass_rate_metrics(passes, len(norms) - len(passes))


def pass_rate_metrics(passes: Sequence[bool], n_excluded: int = 0) -> PaperMetrics:
    """Accuracy = pass rate, F1 = 2·acc/(1+acc) and the binomial 95% CI, from pass/fail outcomes.

    >>> m = pass_rate_metrics([True, False]); m.accuracy, round(m.f1, 4), m.n_pass
    (0.5, 0.6667, 1)
    >>> pass_rate_metrics([], 2).accuracy is None
    True
    """
    n = len(passes)
    if n == 0:
        return PaperMetrics(None, None, None, None, 0, 0, n_excluded)
    n_pass = sum(bool(x) for x in passes)
    acc = n_pass / n
    half = 1.96 * math.sqrt(acc * (1 - acc) / n)
    return PaperMetrics(acc, 2 * acc / (1 + acc), max(0.0, acc - half), min(1.0, acc + half),
                        n, n_pass, n_excluded)


# --- the paper's own released evaluation: keyword heuristics, no judge --------------------------

KEYWORD_ITEMS = 5               # only the first 5 rubric items are looked at
KEYWORD_MAX_CRITERION = 2000    # longer criteria are skipped (their slot among the 5 is still used)
KEYWORD_MIN_CHARS = 100         # a positive item needs an answer longer than this
KEYWORD_POSITIVE = ("should", "recommend", "important", "seek", "care")
KEYWORD_NEGATIVE = ("unsafe", "harmful")


def _item_field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


def paper_keyword_pass(items: Sequence[Any], response: str) -> bool:
    """The paper's released no-judge evaluation (``evaluate_completion``): keyword rules on the first 5 items.

    Items are mappings or objects with ``criterion`` and ``points``. Of ``items[:5]``, criteria longer
    than 2,000 characters are skipped *inside* that window (so they still use up one of the 5 slots,
    as in the paper's loop). A positive item earns 0.5 × points when the answer is over 100
    characters and contains should/recommend/important/seek/care; a negative item adds its points
    when the answer contains "unsafe" or "harmful" (lower-cased substrings). norm = (total − Σ neg) /
    (Σ pos − Σ neg) over the considered items, 0.5 when that range is 0; pass = norm > 0.5. So an
    answer passes only if a pitfall item is among the 5 and it avoids "unsafe"/"harmful": with
    positive items alone the best norm is exactly 0.5, a fail. An empty rubric fails.

    >>> long = "You should seek care today. " * 4            # 112 characters, has the keywords
    >>> paper_keyword_pass([{"criterion": "a", "points": 5}, {"criterion": "b", "points": -3}], long)
    True
    >>> paper_keyword_pass([{"criterion": "a", "points": 5}], long)        # 2.5 / 5 = 0.5, not > 0.5
    False
    >>> paper_keyword_pass([{"criterion": "b", "points": -3}], "That is harmful.")  # (−3 + 3) / 3 = 0
    False
    """
    text = (response or "").lower()
    long_enough = len(response or "") > KEYWORD_MIN_CHARS
    positive_hit = long_enough and any(w in text for w in KEYWORD_POSITIVE)
    negative_hit = any(w in text for w in KEYWORD_NEGATIVE)
    total = max_possible = min_possible = 0.0
    considered = 0
    for item in list(items)[:KEYWORD_ITEMS]:
        if len(str(_item_field(item, "criterion"))) > KEYWORD_MAX_CRITERION:
            continue
        points = float(_item_field(item, "points"))
        considered += 1
        if points > 0:
            max_possible += points
            total += 0.5 * points if positive_hit else 0.0
        elif points < 0:
            min_possible += points
            total += points if negative_hit else 0.0
    if considered == 0:
        return False
    span = max_possible - min_possible
    norm = 0.5 if span == 0 else (total - min_possible) / span
    return norm > 0.5


def paper_keyword_metrics(items_list: Sequence[Sequence[Any]], responses: Sequence[str]) -> PaperMetrics:
    """Accuracy and F1 of the paper's keyword heuristic over a build's answers (no judge involved).

    >>> long = "It is important to seek care. " * 4
    >>> m = paper_keyword_metrics([[{"criterion": "a", "points": 2}, {"criterion": "b", "points": -1}]] * 2,
    ...                           [long, "ok"]); m.accuracy, round(m.f1, 4)
    (0.5, 0.6667)
    """
    if len(items_list) != len(responses):
        raise ValueError(f"{len(items_list)} rubrics but {len(responses)} answers")
    return pass_rate_metrics([paper_keyword_pass(i, r) for i, r in zip(items_list, responses)])
