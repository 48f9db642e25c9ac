"""The offline proxy judge: held-out accuracy, polarity, negation, empty answers, fingerprints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgemed.data.schema import RubricItem
from edgemed.judges.proxy import ProxyJudge, case_features
from edgemed.judges.proxy_calibration import fit_logistic, load_calibration
from edgemed.judges.proxy_cases import load_cases
from edgemed.judges.proxy_eval import confusion
from edgemed.judges.proxy_features import FEATURES

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


def test_heldout_accuracy_at_least_085(judge):
    cases = load_cases(split="heldout")
    x, absent = case_features(cases, judge.encoder)
    p = judge.calibration.probability(x)
    met = np.where(absent, 1 - p, p)
    result = confusion(met >= 0.5, [c["met"] for c in cases])
    assert result["n"] >= 150
    assert result["accuracy"] >= 0.85, result


def test_shipped_calibration_is_the_fit_on_tune(judge):
    # Guards against a stale asset: features or cases changed without a refit.
    cases = load_cases(split="tune")
    x, absent = case_features(cases, judge.encoder)
    met = np.array([c["met"] for c in cases], dtype=float)
    refit = fit_logistic(x, np.where(absent, 1 - met, met), FEATURES)
    shipped = load_calibration()
    np.testing.assert_allclose(refit.weights, shipped.weights, atol=1e-3)
    assert refit.bias == pytest.approx(shipped.bias, abs=1e-3)


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
