"""Properties every rubric reward must keep, over random rubrics and verdicts (hypothesis).

Monotone: meeting a desirable item more never lowers a reward; triggering a pitfall more never
raises it. Ranges hold. A failed verdict (None) never acts as 0: it is left out.
"""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgemed import rewards

CATEGORIES = ["category:essential", "category:important", "category:optional", "category:pitfall"]
PER_RESPONSE = ["explicit", "explicit_categories", "explicit_signed", "hybrid", "complexity", "softmin"]
RANGES = {"explicit": (0, 1), "explicit_categories": (0, 1), "hybrid": (0, 20), "complexity": (0, 25),
          "softmin": (0, 1)}
TOL = 1e-9
settings.register_profile("rewards", max_examples=100, deadline=None)
settings.load_profile("rewards")

point = st.one_of(st.floats(0.25, 10), st.floats(-10, -0.25), st.sampled_from([5, 3, 1, -1, -2]))
verdict = st.one_of(st.none(), st.sampled_from([0.0, 1.0]), st.floats(0, 1))


@st.composite
def graded_rubric(draw, min_items=1, max_items=12):
    n = draw(st.integers(min_items, max_items))
    points = draw(st.lists(point, min_size=n, max_size=n))
    met = draw(st.lists(verdict, min_size=n, max_size=n))
    tags = [[draw(st.sampled_from(CATEGORIES))] if draw(st.booleans()) else [] for _ in range(n)]
    return points, met, tags


def score(name, points, met, tags):
    fn = rewards.get_reward(name)
    return fn(points, met, tags=tags) if name == "explicit_categories" else fn(points, met)


def _raise_one(points, met, data, want_positive):
    idx = [j for j, (p, m) in enumerate(zip(points, met)) if m is not None and (p > 0) == want_positive]
    assume(idx)
    j = data.draw(st.sampled_from(idx))
    higher = data.draw(st.floats(met[j], 1.0))
    return j, met[:j] + [higher] + met[j + 1:]


@pytest.mark.parametrize("desirable", [True, False], ids=["meeting_desirable_never_lowers",
                                                         "triggering_pitfall_never_raises"])
@pytest.mark.parametrize("name", PER_RESPONSE)
@given(case=graded_rubric(), data=st.data())
def test_monotone(name, desirable, case, data):
    points, met, tags = case
    _, more = _raise_one(points, met, data, want_positive=desirable)
    before, after = score(name, points, met, tags), score(name, points, more, tags)
    assume(before is not None)  # explicit_signed is undefined without a graded desirable item
    assert after is not None
    assert (after >= before - TOL) if desirable else (after <= before + TOL)


@pytest.mark.parametrize("name", PER_RESPONSE)
@given(case=graded_rubric())
def test_ranges_hold(name, case):
    points, met, tags = case
    r = score(name, points, met, tags)
    assume(r is not None)
    if name == "explicit_signed":
        t = rewards.tally(points, met)
        low, high = -t.pitfall_max / t.positive_max, 1.0
    else:
        low, high = RANGES[name]
    assert low - TOL <= r <= high + TOL


@pytest.mark.parametrize("name", PER_RESPONSE)
@given(case=graded_rubric())
def test_none_is_left_out_never_zero(name, case):
    points, met, tags = case
    keep = [j for j, m in enumerate(met) if m is not None]
    r = score(name, points, met, tags)
    if not keep:
        assert r is None
        return
    sub = ([points[j] for j in keep], [met[j] for j in keep], [tags[j] for j in keep])
    if name == "complexity":  # n is the rubric's size, graded or not
        expected = rewards.complexity(sub[0], sub[1], n_items=len(points))
    else:
        expected = score(name, *sub)
    assert (r is None) == (expected is None)
    if r is not None:
        assert r == pytest.approx(expected, abs=TOL)
    if name != "explicit_signed":
        assert r is not None


@given(case=graded_rubric(), k=st.floats(0.05, 20))
def test_softmin_lies_between_the_weakest_item_and_the_mean(case, k):
    points, met, _ = case
    r = rewards.softmin(points, met, k=k)
    assume(r is not None)
    sat = [m if p > 0 else 1 - m for p, m in zip(points, met) if m is not None]
    assert min(sat) - TOL <= r <= rewards.explicit(points, met) + TOL


@given(values=st.lists(st.floats(0, 1), min_size=2, max_size=8))
def test_softmin_small_k_is_mean_minus_half_k_variance(values):
    k = 1e-3
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    r = rewards.softmin([1.0] * len(values), values, k=k)
    assert r == pytest.approx(mean - k / 2 * var, abs=1e-6)


@st.composite
def group(draw):
    n = draw(st.integers(1, 6))
    g = draw(st.integers(2, 6))
    points = draw(st.lists(point, min_size=n, max_size=n))
    rows = [draw(st.lists(verdict, min_size=n, max_size=n)) for _ in range(g)]
    return points, rows


@given(case=group(), data=st.data(), k=st.floats(0.1, 5))
def test_rvpo_is_monotone_in_a_responses_own_verdicts(case, data, k):
    points, rows = case
    i = data.draw(st.integers(0, len(rows) - 1))
    cells = [j for j, m in enumerate(rows[i]) if m is not None]
    assume(cells)
    j = data.draw(st.sampled_from(cells))
    changed = [list(r) for r in rows]
    changed[i][j] = data.draw(st.floats(rows[i][j], 1.0))
    before = rewards.rvpo_group(points, rows, k=k)[i]
    after = rewards.rvpo_group(points, changed, k=k)[i]
    if points[j] > 0:
        assert after >= before - 1e-7
    else:
        assert after <= before + 1e-7


@given(case=group(), data=st.data())
def test_rvpo_follows_its_rows_and_keeps_none(case, data):
    points, rows = case
    order = data.draw(st.permutations(range(len(rows))))
    a = rewards.rvpo_group(points, rows)
    b = rewards.rvpo_group(points, [rows[i] for i in order])
    for pos, i in enumerate(order):
        assert (a[i] is None) == (b[pos] is None)
        if a[i] is not None:
            assert a[i] == pytest.approx(b[pos], abs=1e-9)
        assert (a[i] is None) == all(m is None for m in rows[i])


@given(rs=st.lists(st.one_of(st.none(), st.floats(0, 20)), min_size=1, max_size=8), t=st.floats(0, 5))
def test_min_spread_filter_either_keeps_or_equalises(rs, t):
    out, flat = rewards.flatten_low_spread(rs, t)
    assert [r is None for r in out] == [r is None for r in rs]
    vals = [r for r in out if r is not None]
    if flat:
        assert max(vals) - min(vals) == 0
        assert math.fsum(vals) == pytest.approx(math.fsum(r for r in rs if r is not None))
    else:
        assert out == rs
