"""The offline proxy judge: cross-validated figures on its tuning cases, polarity, negation, empty answers,
fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgemed.data.schema import RubricItem
from edgemed.judges.proxy import PROXY_VERSION, ProxyJudge
from edgemed.judges.proxy.calibration import load_calibration
from edgemed.judges.proxy.features import FEATURES
from edgemed.judges.proxy.tuning import (case_features, confusion, cross_validated_met, fit_cases,
                                         grouped_folds, load_cases, training_mask)

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "proxy_accuracy.json"

CHEST_PAIN = "I've had crushing chest pain for 20 minutes and I'm sweating. What should I do?"
CALL_911 = RubricItem("Advises calling emergency services (911) immediately.", 10)
WAIT = RubricItem("Suggests waiting to see if the pain goes away before seeking care.", -8)
FAILS_911 = RubricItem("Fails to advise calling emergency services immediately.", -8)
RIGHT = "This may be a heart attack. Call 911 right now and chew an aspirin while you wait for the ambulance."
WRONG = ("Chest pain like this is usually heartburn. Calling 911 is not necessary; rest, take an antacid "
         "and wait a few hours to see whether the pain goes away before seeing anyone.")


def conv(response: str, question: str = CHEST_PAIN) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": response}]


@pytest.fixture(scope="module")
def judge() -> ProxyJudge:
    return ProxyJudge()


@pytest.fixture(scope="module")
def tune(judge):
    """All 540 labelled cases (every one is tuning data) and their features, computed once."""
    cases = load_cases()
    x, absent = case_features(cases, judge.encoder)
    return cases, x, absent


def test_cross_validated_figures_on_tune(tune):
    # Floors a little under the figures in benchmarks/results/proxy_accuracy.json: these are
    # tune-set figures (cross-validated by scenario), not held-out ones.
    cases, x, absent = tune
    r = confusion(cross_validated_met(x, absent, cases) >= 0.5, [c["met"] for c in cases])
    assert r["n"] == 540
    assert r["balanced_accuracy"] >= 0.83, r
    assert r["recall_met"] >= 0.82, r  # the v1 recipe, unweighted, recalled 0.71 here


def test_folds_never_share_a_scenario_or_a_response():
    cases = load_cases()
    folds = grouped_folds(cases)
    for fold in range(folds.max() + 1):
        train = training_mask(cases, folds, fold)
        val = [c for c, f in zip(cases, folds) if f == fold]
        trained = [c for c, t in zip(cases, train) if t]
        assert {c["id"].split("-")[0] for c in val}.isdisjoint(c["id"].split("-")[0] for c in trained)
        assert {c["response"] for c in val}.isdisjoint(c["response"] for c in trained)
        assert len(trained) > 0.7 * (len(cases) - len(val))


def test_shipped_calibration_is_the_fit_on_all_tune_cases(tune):
    # Guards against a stale asset: features or cases changed without a refit.
    cases, x, absent = tune
    refit = fit_cases(x, absent, cases)
    shipped = load_calibration()
    np.testing.assert_allclose(refit.weights, shipped.weights, atol=1e-3)
    assert refit.bias == pytest.approx(shipped.bias, abs=1e-3)


def test_benchmark_results_are_for_this_version():
    report = json.loads(RESULTS.read_text())
    assert report["proxy_version"] == PROXY_VERSION, "rerun python benchmarks/proxy_accuracy.py"
    assert report["evaluation"].startswith("tune, cross-validated")
    assert "held" not in json.dumps(report["results"]).lower()


def test_right_answer_meets_positive_and_avoids_pitfall(judge):
    call, wait = judge.grade(conv(RIGHT), [CALL_911, WAIT])
    assert call.met > 0.5 and wait.met < 0.5
    assert 0.0 <= call.met <= 1.0 and "proxy" in call.explanation
    assert set(json.loads(call.raw)) >= set(FEATURES) | {"p_claim"}


def test_negated_claim_is_not_met_but_pitfall_is(judge):
    call, wait = judge.grade(conv(WRONG), [CALL_911, WAIT])
    assert call.met < 0.5, call
    assert wait.met > 0.5, wait


def test_negation_on_the_criterion_side(judge):
    avoid = RubricItem("Advises avoiding ibuprofen because it increases bleeding risk with warfarin.", 7)
    q = "I take warfarin. Can I take ibuprofen for back pain?"
    (yes,) = judge.grade(conv("Avoid ibuprofen: with warfarin it raises your bleeding risk.", q), [avoid])
    (safe,) = judge.grade(conv("Ibuprofen is safe to take with warfarin.", q), [avoid])
    (no_need,) = judge.grade(conv("You do not need to avoid ibuprofen; it is safe with warfarin.", q), [avoid])
    assert yes.met > 0.5 > max(safe.met, no_need.met)


def test_omission_phrased_pitfall_is_met_when_claim_absent(judge):
    present, = judge.grade(conv("Rest and take an antacid; it is probably heartburn."), [FAILS_911])
    absent, = judge.grade(conv(RIGHT), [FAILS_911])
    assert present.met > 0.5 > absent.met


@pytest.mark.parametrize("response", ["", "   \n"])
def test_empty_response_meets_nothing(judge, response):
    out = judge.grade(conv(response), [CALL_911, WAIT, FAILS_911])
    assert [j.met for j in out] == [0.0, 0.0, 0.0]


def test_deterministic_and_independent_of_item_order(judge):
    items = [CALL_911, WAIT, FAILS_911]
    first = [j.met for j in judge.grade(conv(WRONG), items)]
    again = [j.met for j in ProxyJudge().grade(conv(WRONG), items)]
    reversed_ = [j.met for j in judge.grade(conv(WRONG), items[::-1])][::-1]
    assert first == again == reversed_


def test_encoder_failure_is_none_not_unmet(judge, monkeypatch):
    def broken(texts):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(judge.encoder, "encode", broken)
    out = judge.grade(conv("A new answer the memo has not seen."), [CALL_911, WAIT])
    assert [j.met for j in out] == [None, None] and all(j.failed for j in out)


def test_fingerprint_tracks_version_and_params(judge, tmp_path):
    assert judge.fingerprint.startswith("proxy/v") and "all-MiniLM-L6-v2" in judge.fingerprint
    assert ProxyJudge(decimals=3).fingerprint != judge.fingerprint
    cal = load_calibration().to_dict()
    cal["bias"] += 0.1
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(cal))
    assert ProxyJudge(calibration=str(path)).fingerprint != judge.fingerprint
    assert ProxyJudge().fingerprint == judge.fingerprint
