"""edgemed.bench.quality.healthbench against hand-computed values and OpenAI simple-evals' own HealthBench code."""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemed.bench.quality import healthbench


def simple_evals_functions() -> dict:
    """calculate_score, _compute_clipped_stats and RubricItem from the installed simple_evals.

    Its package import pulls network samplers (tenacity, openai); the scoring code itself needs
    only numpy, so the three definitions are lifted out of the source file verbatim.
    """
    spec = importlib.util.find_spec("simple_evals")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nvidia-simple-evals is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "evals" / "healthbench_eval.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wanted = {"calculate_score", "_compute_clipped_stats", "RubricItem"}
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in wanted]
    assert {n.name for n in nodes} == wanted, "simple_evals' healthbench_eval.py changed shape"
    ns: dict = {"np": np, "__name__": "simple_evals_lifted"}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102
    return ns


FIXTURES = [  # (points, met) with hand-computed HealthBench score and paper norm
    ([5, 3, -4], [1, 0, 0], 5 / 8, 9 / 12),
    ([5, 3, -4], [1, 1, 1], 4 / 8, 8 / 12),
    ([5, 3, -4], [0, 0, 1], -4 / 8, 0 / 12),
    ([10, -2, -2, 5], [1, 1, 0, 1], 13 / 15, 17 / 19),
    ([7], [0], 0.0, 0.0),
]


@pytest.mark.parametrize("points,met,hb,norm", FIXTURES)
def test_example_score_matches_hand_and_simple_evals(points, met, hb, norm):
    se = simple_evals_functions()
    items = [se["RubricItem"](criterion=f"c{i}", points=p, tags=[]) for i, p in enumerate(points)]
    official = se["calculate_score"](items, [{"criteria_met": bool(m)} for m in met])
    assert healthbench.example_score(points, met) == pytest.approx(hb)
    assert healthbench.example_score(points, met) == pytest.approx(official)
    assert healthbench.normalised_score(points, met) == pytest.approx(norm)


def test_tag_scores_match_simple_evals_per_tag_rule():
    se = simple_evals_functions()
    points, met = [5, 3, -4, 2], [1, 0, 1, 1]
    tags = [["axis:accuracy"], ["axis:completeness"], ["axis:accuracy"], ["axis:communication"]]
    ours = healthbench.tag_scores(points, met, tags)
    for tag in ("axis:accuracy", "axis:completeness", "axis:communication"):
        idx = [i for i, t in enumerate(tags) if tag in t]
        items = [se["RubricItem"](criterion=str(i), points=points[i], tags=tags[i]) for i in idx]
        assert ours[tag] == pytest.approx(se["calculate_score"](items, [{"criteria_met": bool(met[i])} for i in idx]))
    assert ours["axis:accuracy"] == pytest.approx((5 - 4) / 5)


def test_aggregate_matches_simple_evals_clipped_mean_and_bootstrap():
    se = simple_evals_functions()
    rng = np.random.default_rng(3)
    values = list(rng.uniform(-0.6, 1.0, size=60))
    ours = healthbench.aggregate(values, n_bootstrap=1000, seed=0)
    assert ours.score == pytest.approx(float(se["_compute_clipped_stats"](values, "mean")))
    assert ours.n == se["_compute_clipped_stats"](values, "n_samples") == 60
    np.random.seed(0)  # simple-evals draws from the global numpy RNG
    official_std = float(se["_compute_clipped_stats"](values, "bootstrap_std"))
    analytic = np.std(values) / math.sqrt(len(values))  # no clipping bites at this mean
    assert ours.std == pytest.approx(official_std, rel=0.15)
    assert ours.std == pytest.approx(analytic, rel=0.15)


def test_aggregate_clips_like_simple_evals():
    se = simple_evals_functions()
    for values in ([1.4, 1.2, 0.9], [-0.5, -0.1, 0.2]):
        assert healthbench.aggregate(values).score == pytest.approx(float(se["_compute_clipped_stats"](values, "mean")))


def test_judge_failures_are_left_out_not_scored_as_not_met():
    # A failed pitfall verdict must not raise the score; a failed positive one must not lower it.
    assert healthbench.example_score([5, -4], [1, None]) == 1.0
    assert healthbench.example_score([5, 5], [1, None]) == 1.0
    assert healthbench.example_score([5, 5], [1, 0]) == 0.5
    m = healthbench.paper_metrics([[5, -4], [5]], [[1, None], [None]])
    assert (m.n, m.n_excluded, m.accuracy) == (1, 1, 1.0)


def test_paper_metrics_hand_computed():
    # norms: 1.0 (pass), 0.75 (pass), 0.5 (not > 0.5), 0.0 → acc 0.5
    m = healthbench.paper_metrics([[4, -4], [5, 3, -4], [2, 2], [3, -1]], [[1, 0], [1, 0, 0], [1, 0], [0, 1]])
    assert (m.n_pass, m.n) == (2, 4)
    assert m.accuracy == 0.5 and m.f1 == pytest.approx(2 * 0.5 / 1.5)
    half = 1.96 * math.sqrt(0.25 / 4)
    assert (m.ci_low, m.ci_high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))


met_strategy = st.one_of(st.none(), st.sampled_from([0.0, 1.0]), st.floats(0, 1))
points_strategy = st.floats(-10, 10).filter(lambda x: abs(x) > 1e-3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(points_strategy, met_strategy), min_size=1, max_size=12))
def test_properties(pairs):
    points, met = [p for p, _ in pairs], [m for _, m in pairs]
    s = healthbench.example_score(points, met)
    kept = [(p, m) for p, m in pairs if m is not None]
    # Leaving an item out == never having had it.
    assert s == (healthbench.example_score([p for p, _ in kept], [m for _, m in kept]) if kept else None)
    if s is not None:
        pos = sum(p for p, _ in kept if p > 0)
        neg = sum(p for p, _ in kept if p < 0)
        assert neg / pos - 1e-9 <= s <= 1 + 1e-9
    n = healthbench.normalised_score(points, met)
    if n is not None:
        assert -1e-9 <= n <= 1 + 1e-9
    agg = healthbench.aggregate([s, 0.3], n_bootstrap=50)
    assert 0.0 <= agg.score <= 1.0 and agg.std >= 0


# --- the paper's keyword heuristic (its released evaluate_completion), no judge ----------------

LONG = "You should seek care promptly if the chest pain returns. " * 2  # 114 characters, has keywords


def items(*points, criterion="c"):
    return [{"criterion": criterion, "points": p} for p in points]


def test_keyword_pass_reads_only_the_first_five_items():
    # Five positive items alone top out at norm 0.5: a fail. A pitfall as 6th item would make it a pass,
    # but only the first 5 are read.
    assert not healthbench.paper_keyword_pass(items(2, 2, 2, 2, 2), LONG)
    assert not healthbench.paper_keyword_pass(items(2, 2, 2, 2, 2, -5), LONG)
    assert healthbench.paper_keyword_pass(items(2, 2, 2, 2, -5), LONG)


def test_keyword_pass_long_criteria_are_skipped_but_use_a_slot():
    long_item = {"criterion": "x" * 2001, "points": -5}
    # The skipped pitfall takes slot 1; the pitfall in slot 6 is still out of reach.
    assert not healthbench.paper_keyword_pass([long_item] + items(2, 2, 2, 2, -5), LONG)
    # A 2,000-character criterion is not "longer than 2000": it counts.
    assert healthbench.paper_keyword_pass([{"criterion": "x" * 2000, "points": -5}] + items(2), LONG)


def test_keyword_pass_tie_at_half_fails():
    assert not healthbench.paper_keyword_pass(items(4), LONG)          # 2 / 4 = 0.5, not > 0.5
    too_long = [{"criterion": "x" * 2001, "points": 3}]              # nothing considered: range 0 → 0.5
    assert not healthbench.paper_keyword_pass(too_long, LONG)
    assert healthbench.paper_keyword_pass(items(-3), "fine")           # a pitfall avoided: (0 + 3) / 3 = 1
    assert not healthbench.paper_keyword_pass(items(), LONG)           # empty rubric fails


def test_keyword_pass_100_character_threshold():
    exactly = ("You should seek care. " * 5)[:100]
    assert len(exactly) == 100 and "should" in exactly
    assert not healthbench.paper_keyword_pass(items(4, -4), exactly)       # (0 + 4) / 8 = 0.5
    assert healthbench.paper_keyword_pass(items(4, -4), exactly + ".")     # 101 chars: (2 + 4) / 8
    assert not healthbench.paper_keyword_pass(items(4, -4), "x" * 150)     # long, but no keyword


def test_keyword_pass_negatives_and_objects():
    assert healthbench.paper_keyword_pass(items(4, -4), LONG)
    assert not healthbench.paper_keyword_pass(items(4, -4), LONG + " That would be HARMFUL.")  # (2 − 4 + 4) / 8
    from edgemed.data.schema import RubricItem

    assert healthbench.paper_keyword_pass([RubricItem("a", 4.0), RubricItem("b", -4.0)], LONG)


def test_keyword_metrics_accuracy_and_f1():
    m = healthbench.paper_keyword_metrics([items(4, -4)] * 4, [LONG, LONG, "no", "no"])
    assert (m.accuracy, m.n_pass, m.n) == (0.5, 2, 4) and m.f1 == pytest.approx(2 * 0.5 / 1.5)


# --- metrics that move at every scale (their statistics: test_stats.py) ------------------------

from edgemed.bench.quality import metrics as qm  # noqa: E402


def test_criteria_counts_skip_and_count_judge_failures():
    c = qm.criteria_counts([5, 3, -4, -2], [1, None, None, 0])
    assert c == {"pos_met": 1.0, "pos_judged": 1, "neg_met": 0.0, "neg_judged": 1, "judge_failures": 2}
    e = qm.example_metrics([5, -4], [None, None])
    assert e["hit_rate"] is None and e["pitfall_rate"] is None and e["score"] is None  # unknown, not 0


def test_summarise_rates_length_and_truncation():
    rows = [qm.example_metrics([5, 5, -4], [1, 0, 1], "a b c", 80, 80),
            qm.example_metrics([5, -4], [1, 0], "a", 10, 80)]
    s = qm.summarise(rows)
    assert s["hit_rate"] == pytest.approx(2 / 3) and s["pitfall_rate"] == pytest.approx(1 / 2)
    assert s["mean_tokens"] == 45 and s["mean_words"] == 2 and s["truncation_rate"] == 0.5
    assert s["unclipped"] == pytest.approx((0.1 + 1.0) / 2)
    assert s["unclipped_ci_low"] <= s["unclipped"] <= s["unclipped_ci_high"]


def test_unclipped_ci_covers_a_negative_mean_that_clipping_hides():
    rows = [qm.example_metrics([5, -10], [0, 1]), qm.example_metrics([5, -10], [1, 1])]  # −2.0, −1.0
    s = qm.summarise(rows)
    assert s["clipped"] == 0.0 and s["unclipped"] == pytest.approx(-1.5)
    assert -2.0 <= s["unclipped_ci_low"] <= -1.5 <= s["unclipped_ci_high"] <= -1.0
