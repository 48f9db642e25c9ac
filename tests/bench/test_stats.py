"""edgemed.bench.quality.stats (every bootstrap and exact test) and edgemed.bench.quality.compare (base vs trained)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemed.bench.quality import compare, healthbench, stats


def test_mcnemar_and_paired_bootstrap():
    assert stats.mcnemar_exact([1, 1, 1, 0], [0, 0, 0, 0]) == (3, 0, 0.25)
    d, lo, hi, p = stats.paired_bootstrap([0.1, 0.5, 0.9, 0.3] * 10, [0.1, 0.5, 0.9, 0.3] * 10)
    assert (d, lo, hi, p) == (0.0, 0.0, 0.0, 1.0)
    d, lo, hi, p = stats.paired_bootstrap(list(np.linspace(0, 0.5, 40)), list(np.linspace(0, 0.5, 40) + 0.2))
    assert d == pytest.approx(0.2) and lo <= 0.2 <= hi and p < 0.01


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_unclipped_equals_clipped_inside_unit_interval(values):
    mean, lo, hi = stats.bootstrap_mean_ci(values, n_bootstrap=50)
    assert mean == pytest.approx(healthbench.aggregate(values, n_bootstrap=50).score)
    assert lo <= mean <= hi


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-2, 1), min_size=1, max_size=30))
def test_paired_identical_inputs_give_zero_ci_and_p_one(values):
    d = stats.paired_difference(values, values, n_bootstrap=50)
    assert (d["diff"], d["ci_low"], d["ci_high"], d["sign_p"]) == (0.0, 0.0, 0.0, 1.0)
    assert d["n_tie"] == len(values)


def test_sign_test_exact_binomial():
    assert stats.sign_test([]) == (0, 0, 1.0)
    assert stats.sign_test([0.0] * 5) == (0, 0, 1.0)
    up, down, p = stats.sign_test([1] * 9 + [-1])  # P(X ≤ 1 | n=10) × 2 = 22 / 1024
    assert (up, down) == (9, 1) and p == pytest.approx(22 / 1024)
    assert stats.sign_test([1, -1, 1, -1])[2] == 1.0


def test_paired_difference_detects_a_consistent_shift():
    a = list(np.linspace(-0.5, 0.2, 20))
    d = stats.paired_difference(a, [x + 0.1 for x in a])
    assert d["diff"] == pytest.approx(0.1) and d["ci_low"] > 0 and d["sign_p"] < 0.001
    assert compare.verdict(d["ci_low"], d["ci_high"]) == "helped"
    assert compare.verdict(d["ci_low"], d["ci_high"], higher_is_better=False) == "made it worse"


def test_compare_examples_skips_missing_values_and_old_rows():
    a = {"p1": {"score": 0.1, "hit_rate": 0.5, "pitfall_rate": None}, "p2": {"score": 0.2}}
    b = {"p1": {"score": 0.3, "hit_rate": 0.7, "pitfall_rate": 0.0}, "p2": {"score": 0.2}, "p3": {"score": 1.0}}
    c = compare.compare_examples(a, b)
    assert set(c) == {"unclipped_score", "hit_rate"}
    assert c["unclipped_score"]["n"] == 2 and c["unclipped_score"]["n_tie"] == 1
    assert c["hit_rate"]["n"] == 1 and c["hit_rate"]["diff"] == pytest.approx(0.2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=40))
def test_mcnemar_is_the_sign_test_on_discordant_pairs(pairs):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    a_only, b_only, p = stats.mcnemar_exact(a, b)
    assert (a_only, b_only) == (sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs))
    assert stats.sign_test([int(y) - int(x) for x, y in pairs]) == (b_only, a_only, p)
