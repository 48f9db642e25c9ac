"""The fidelity benchmarks choose on the choosing set and report on the held-out set
(benchmarks/genai_frontier.py, benchmarks/gguf_imatrix.py): their pure helpers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from edgemed.export.fidelity import PositionFigures, paired_difference

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def _row(name, size, top1, low, held_low=0.8, held_high=0.9, bits=4):
    return {"recipe": name, "spec": {"bits": bits}, "bytes": size,
            "choosing_documents": {"top1": top1, "top1_ci_low": low},
            "heldout": {"top1": (held_low + held_high) / 2, "top1_ci_low": held_low, "top1_ci_high": held_high}}


def test_choice_reads_only_the_choosing_documents(script):
    gf = script("genai_frontier")
    # "small" has the best held-out figures but misses the floor on the choosing documents: not chosen
    rows = [_row("small", 100, 0.84, 0.83, held_low=0.95, held_high=0.97), _row("mid", 150, 0.87, 0.86),
            _row("big", 200, 0.90, 0.89), _row("int8", 50, 0.99, 0.98, bits=8)]
    choice = gf.choose(rows)
    assert choice["chosen"] == "mid" and choice["floor_met"] and choice["set"] == "choosing_documents"
    assert "choosing" in choice["rule"] and "smallest" in choice["rule"]


def test_choice_falls_back_to_the_highest_choosing_top1_and_says_so(script):
    gf = script("genai_frontier")
    choice = gf.choose([_row("a", 100, 0.70, 0.69), _row("b", 200, 0.80, 0.79), _row("c", 300, 0.75, 0.74)])
    assert choice["chosen"] == "b" and choice["floor_met"] is False and "no int4 recipe" in choice["note"]


def test_heldout_check_judges_the_wilson_interval_against_the_floor(script):
    gf = script("genai_frontier")
    verdicts = [gf.heldout_check(_row("x", 1, 0.9, 0.9, held_low=lo, held_high=hi))["verdict"]
                for lo, hi in ((0.86, 0.9), (0.80, 0.84), (0.84, 0.87))]
    assert verdicts == ["met", "missed", "undecided"]
    assert gf.heldout_check(None) is None


def test_paired_gain_is_the_mean_per_position_difference_with_a_paired_interval(script):
    gi = script("gguf_imatrix")
    rng = np.random.default_rng(0)
    n = 4000
    plain_top = rng.random(n) < 0.85
    heart_top = plain_top | (rng.random(n) < 0.05)  # gains a few positions, loses none
    plain = PositionFigures(rng.random(n) * 0.1, np.zeros(n), plain_top)
    heart = PositionFigures(plain.kld * 0.9, np.zeros(n), heart_top)
    g = gi.paired_gain(heart, plain)
    assert g["positions"] == n
    top = g["top1_gain"]
    assert top["mean"] == pytest.approx(heart_top.mean() - plain_top.mean(), abs=1e-4)
    assert 0 < top["low"] < top["mean"] < top["high"]
    assert g["kld_change"]["high"] < 0  # KLD fell at every position
    # pairing: narrower than the unpaired interval of two independent proportions
    p1, p2 = heart_top.mean(), plain_top.mean()
    unpaired = 1.96 * np.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    assert top["high"] - top["mean"] < unpaired


def test_paired_difference_of_identical_builds_is_zero():
    same = np.array([True, False, True] * 10)
    assert paired_difference(same, same) == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 30}
    with pytest.raises(ValueError):
        paired_difference(np.zeros(0), np.zeros(0))


def test_heldout_position_figures_align_each_answer_token_with_its_reference_row():
    from edgemed.export import fidelity, heldout

    rng = np.random.default_rng(1)
    ref = heldout.Reference(["a", "b"], [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6, 0]], [2, 3])
    logp = fidelity.log_softmax(rng.normal(size=(ref.n_positions, 7)))
    ref.rows = fidelity.prepare(logp, np.concatenate([i[s:] for i, s, _ in ref.spans()]))
    spans = {tuple(i): (s, rows) for i, s, rows in ref.spans()}

    class Exact:  # the reference's own rows where they predict the answer, noise elsewhere
        def logits(self, ids):
            start, rows = spans[tuple(ids)]
            out = rng.normal(size=(len(ids), 7))
            out[start - 1:len(ids) - 1] = logp[rows]
            return out

    figures = heldout.position_figures(Exact(), ref)
    assert len(figures.kld) == ref.n_positions == 6
    assert figures.same_top.all() and np.abs(figures.kld).max() < 1e-9 and np.abs(figures.dp).max() < 1e-9
    stats = heldout.measure(Exact(), ref)
    assert stats == fidelity.summarize(figures).rounded() and stats.top1 == 1.0
