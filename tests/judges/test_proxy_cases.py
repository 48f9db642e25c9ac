"""The labelled set and the pure text rules the proxy relies on (no encoder needed)."""

from __future__ import annotations

import json

import pytest

from edgemed.errors import ConfigError, DataError
from edgemed.judges.proxy_calibration import load_calibration
from edgemed.judges.proxy_cases import KINDS, load_cases
from edgemed.judges.proxy_text import parse_criterion, stem_polarity


def test_labelled_set_size_kinds_and_clean_split():
    cases = load_cases()
    assert len(cases) >= 200
    for split in ("tune", "heldout"):
        assert {c["kind"] for c in cases if c["split"] == split} == set(KINDS)
    scenario_split = {}
    for c in cases:
        scenario = c["id"].split("-")[0]
        assert scenario_split.setdefault(scenario, c["split"]) == c["split"], scenario
    assert all((c["points"] < 0) == c["kind"].startswith("pitfall") for c in cases)


def test_bad_case_names_line_and_field(tmp_path):
    good = load_cases()[0]
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good | {"id": "x", "met": "yes"}) + "\n")
    with pytest.raises(DataError, match=r"cases.jsonl:2: met"):
        load_cases(path)


def test_calibration_must_match_features(tmp_path):
    cal = load_calibration().to_dict()
    cal["features"] = cal["features"][:-1]
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(cal))
    with pytest.raises(ConfigError, match="refit"):
        load_calibration(path)


@pytest.mark.parametrize("criterion, claim, absent", [
    ("Essential Criteria: Recommends daily weighing.", "daily weighing.", False),
    ("Pitfall Criteria: Does not mention the need for an ECG.", "the need for an ECG.", True),
    ("Fails to recommend any medical evaluation.", "any medical evaluation.", True),
    ("States that aspirin is an adequate substitute.", "aspirin is an adequate substitute.", False),
])
def test_parse_criterion(criterion, claim, absent):
    parsed = parse_criterion(criterion)
    assert (parsed.text, parsed.absent_is_met) == (claim, absent)


@pytest.mark.parametrize("sentence, word, negative", [
    ("Calling 911 isn't needed for this.", "call", True),
    ("Call 911 now.", "call", False),
    ("Never combine it with sildenafil.", "sildenafil", True),
    ("There's no need to avoid exercise.", "exercise", False),
    ("Physical activity should be avoided.", "activity", True),
])
def test_stem_polarity(sentence, word, negative):
    assert stem_polarity(sentence)[word] is negative


def test_negation_scope_stops_at_sentence_end():
    polarity = stem_polarity("Don't smoke. Limit salt.")
    assert polarity["smoke"] is True and polarity["salt"] is False
