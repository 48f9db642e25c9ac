"""Every reward against values computed by hand from the formulas in docs/rewards.md.

One rubric throughout (5 essential, 3 important, 1 optional, −2 pitfall), graded six ways.
"""

import math
import re
from pathlib import Path

import pytest

from edgemed import rewards
from edgemed.errors import ConfigError, DataError

POINTS = [5, 3, 1, -2]
TAGS = [["category:essential"], ["category:important"], ["category:optional"], ["category:pitfall"]]
A = [1, 1, 1, 0]            # perfect
B = [1, 0, 1, 0]            # misses the important item
C = [1, 1, 0, 1]            # triggers the pitfall
D = [0, 0, 0, 1]            # nothing right, pitfall triggered
E = [1, None, 1, 0]         # judge failed on the important item
F = [0.9, 0.6, 0.2, 0.1]    # judge probabilities
SIZE = 1 + 0.2 * math.log(5) / math.log(26)  # complexity's rubric-size factor for n = 4


@pytest.mark.parametrize("met, expected", [
    (A, 1.0), (B, 8 / 11), (C, 8 / 11), (D, 0.0), (E, 8 / 8), (F, (4.5 + 1.8 + 0.2 + 1.8) / 11)])
def test_explicit(met, expected):
    assert rewards.explicit(POINTS, met) == pytest.approx(expected)


@pytest.mark.parametrize("met, expected", [
    (A, 1.0), (B, 2.1 / 2.8), (C, 1.7 / 2.8), (D, 0.0), (E, 2.1 / 2.1), (F, (0.9 + 0.42 + 0.06 + 0.72) / 2.8)])
def test_explicit_categories(met, expected):
    assert rewards.explicit_categories(POINTS, met, tags=TAGS) == pytest.approx(expected)


def test_explicit_categories_custom_weights_and_untagged_fallback():
    # essential re-weighted to 2: (2 + 0.3 + 0.8) / (2 + 0.7 + 0.3 + 0.8)
    assert rewards.explicit_categories(POINTS, B, tags=TAGS, weights={"essential": 2.0}) == pytest.approx(3.1 / 3.8)
    # no tags: desirable items weigh 0.7 (important), the pitfall 0.8
    assert rewards.explicit_categories(POINTS, B) == pytest.approx((0.7 + 0.7 + 0.8) / (3 * 0.7 + 0.8))
    with pytest.raises(DataError, match="unknown category 'vital'"):
        rewards.explicit_categories([5], [1], tags=[["category:vital"]])
    with pytest.raises(ConfigError, match="positive number"):
        rewards.explicit_categories([5], [1], weights={"essential": 0})


@pytest.mark.parametrize("met, expected", [
    (A, 9 / 9), (B, 6 / 9), (C, (8 - 2) / 9), (D, -2 / 9), (E, 6 / 6), (F, (4.5 + 1.8 + 0.2 - 0.2) / 9)])
def test_explicit_signed(met, expected):
    assert rewards.explicit_signed(POINTS, met) == pytest.approx(expected)


def test_explicit_signed_clip_and_undefined():
    assert rewards.explicit_signed(POINTS, D, clip=True) == 0.0
    assert rewards.explicit_signed([-2, -1], [1, 0]) is None      # no desirable item: undefined
    assert rewards.explicit_signed([5, -2], [None, 1]) is None    # the only desirable item ungraded


@pytest.mark.parametrize("met, expected", [
    (A, 15 * 1 + 5),
    (B, 15 * 6 / 9),
    (C, 15 * 8 / 9 - 4.5 * 2 / 2),
    (D, 0.0),                                   # max(0, 0 − 4.5)
    (E, 15 * 6 / 6 + 5),                        # perfect over the graded items
    (F, 15 * 6.5 / 9 - 4.5 * 0.2 / 2)])         # partial credit never earns the bonus
def test_hybrid(met, expected):
    assert rewards.hybrid(POINTS, met) == pytest.approx(expected)


def test_hybrid_uses_max_pmax_1_like_the_paper():
    # Pmax = 0.5 < 1: s = 0.5 / max(0.5, 1) = 0.5, still "perfect"
    assert rewards.hybrid([0.5], [1]) == pytest.approx(15 * 0.5 + 5)
    # no desirable item and no pitfall triggered: perfect by the paper's definition
    assert rewards.hybrid([-2], [0]) == pytest.approx(5.0)


@pytest.mark.parametrize("met, expected", [
    (A, 20 * 1 ** 1.2 * SIZE),
    (B, 20 * (6 / 9) ** 1.2 * SIZE),
    (C, 20 * (8 / 9 - 0.5 * 1) ** 1.2 * SIZE),
    (D, 0.0),
    (E, 20 * 1 * SIZE),                         # n stays 4: rubric size belongs to the prompt
    (F, 20 * (6.5 / 9 - 0.5 * 0.1) ** 1.2 * SIZE)])
def test_complexity(met, expected):
    assert rewards.complexity(POINTS, met) == pytest.approx(expected)


def test_complexity_caps_at_25_and_takes_n_items():
    many = [1] * 60
    assert 20 * (1 + 0.2 * math.log(61) / math.log(26)) > 25
    assert rewards.complexity(many, [1] * 60) == 25.0
    assert rewards.complexity([5], [1], n_items=25) == pytest.approx(20 * 1.2)
    with pytest.raises(ConfigError):
        rewards.complexity([5], [1], n_items=0)


def test_implicit_normalisation():
    assert rewards.implicit(POINTS, [None] * 4, rating=1) == 0.0
    assert rewards.implicit(POINTS, [None] * 4, rating=10) == 1.0
    assert rewards.implicit(POINTS, [None] * 4, rating=5.5) == pytest.approx(0.5)
    assert rewards.implicit(POINTS, [None] * 4, rating=None) is None
    with pytest.raises(DataError, match="rating"):
        rewards.implicit(POINTS, [None] * 4, rating=11)


def test_softmin_by_hand():
    # satisfactions of B: 1, 0, 1, 1 (pitfall avoided), weights 5, 3, 1, 2
    k = 2.0
    expected = -math.log((5 * math.exp(-k) + 3 * math.exp(0) + 1 * math.exp(-k) + 2 * math.exp(-k)) / 11) / k
    assert rewards.softmin(POINTS, B, k=k) == pytest.approx(expected)
    assert rewards.softmin(POINTS, A) == pytest.approx(1.0)
    assert rewards.softmin(POINTS, B) < rewards.explicit(POINTS, B)
    with pytest.raises(ConfigError, match="k must be a positive"):
        rewards.softmin(POINTS, B, k=0)


def test_rvpo_group_by_hand():
    # Two equal-weight items, three responses. Item 1: [1, 1, 0] → μ = 2/3, σ = √2/3;
    # item 2: [1, 0, 0] → μ = 1/3, σ = √2/3.
    s = math.sqrt(2) / 3
    z = [[(1 - 2 / 3) / s, (1 - 1 / 3) / s], [(1 - 2 / 3) / s, (0 - 1 / 3) / s], [(0 - 2 / 3) / s, (0 - 1 / 3) / s]]
    k = 1.0
    expected = [-math.log((math.exp(-k * a) + math.exp(-k * b)) / 2) / k for a, b in z]
    got = rewards.rvpo_group([5, 5], [[1, 1], [1, 0], [0, 0]], k=k)
    assert got == pytest.approx(expected)


def test_rvpo_group_pitfall_none_and_floor():
    # a pitfall counts as "avoided": the response that triggers it is the worst
    got = rewards.rvpo_group([-3], [[0], [1]])
    assert got[0] > got[1]
    # a row with no verdict at all gets None; None never becomes 0
    assert rewards.rvpo_group([5], [[1], [None], [0]])[1] is None
    # jitter below min_std is not blown up to unit z-scores: (0.501 − 0.5005) / 0.1
    got = rewards.rvpo_group([5], [[0.501], [0.500]])
    assert got[0] == pytest.approx(0.0005 / 0.1)


def test_all_none_gives_none_everywhere():
    none = [None] * 4
    for name in ("explicit", "explicit_categories", "explicit_signed", "hybrid", "complexity", "softmin"):
        assert rewards.get_reward(name)(POINTS, none) is None, name


@pytest.mark.parametrize("points, met, message", [
    ([5, 3], [1], "1 verdict"),
    ([5, 0], [1, 1], "non-zero"),
    ([5, float("nan")], [1, 1], "finite"),
    ([5], [1.5], r"\[0, 1\]"),
    ([5], ["yes"], r"\[0, 1\]"),
])
def test_bad_inputs_are_clear_errors(points, met, message):
    with pytest.raises(DataError, match=message):
        rewards.hybrid(points, met)


def test_docs_worked_examples_match_the_code():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "rewards.md").read_text(encoding="utf-8")
    rows = {"A perfect": A, "B misses": B, "C triggers": C, "D all wrong": D, "E judge failed on the": E,
            "F judge probabilities": F, "G judge failed on everything": [None] * 4}
    names = ["explicit", "explicit_categories", "explicit_signed", "hybrid", "complexity", "softmin"]
    for label, met in rows.items():
        line = next(ln for ln in doc.splitlines() if ln.startswith(f"| {label}"))
        cells = [c.strip().replace("−", "-") for c in line.strip("|").split("|")][2:]
        assert len(cells) == len(names), line
        for name, cell in zip(names, cells):
            got = (rewards.explicit_categories(POINTS, met, tags=TAGS) if name == "explicit_categories"
                   else rewards.get_reward(name)(POINTS, met))
            if cell == "None":
                assert got is None, (label, name)
            else:
                assert re.fullmatch(r"-?\d+\.\d{4}", cell), cell
                assert got == pytest.approx(float(cell), abs=5e-5), (label, name)
