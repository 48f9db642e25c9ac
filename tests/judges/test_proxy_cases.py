"""The labelled set and the pure text rules the proxy relies on (no encoder needed)."""

from __future__ import annotations

import json
import re

import pytest

from edgemed.errors import ConfigError, DataError
from edgemed.judges.proxy import text
from edgemed.judges.proxy.calibration import load_calibration
from edgemed.judges.proxy.text import parse_criterion, stem_polarity
from edgemed.judges.proxy.tuning import KINDS, load_cases

# Words once in the text rules that came from the wording of particular labelled cases, not from
# English: they must not come back (see the comment above text.NEGATION_CUES).
CASE_SPECIFIC = ("outdated",)


def test_labelled_set_is_all_tuning_data():
    cases = load_cases()
    assert len(cases) == 540
    assert {c["split"] for c in cases} == {"tune"}
    assert {c["kind"] for c in cases} == set(KINDS)
    assert all((c["points"] < 0) == c["kind"].startswith("pitfall") for c in cases)


def test_a_heldout_label_is_refused(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(load_cases()[0] | {"split": "heldout"}) + "\n")
    with pytest.raises(DataError, match="all tuning data"):
        load_cases(path)


def _cue_lists():
    """Every word list and regex at module level in the text rules."""
    for name, value in vars(text).items():
        if isinstance(value, (tuple, frozenset, set)) and all(isinstance(v, str) for v in value):
            yield name, " ".join(value).lower()
        elif isinstance(value, re.Pattern):
            yield name, value.pattern.lower()


def test_no_cue_list_holds_case_specific_words():
    lists = dict(_cue_lists())
    assert {"NEGATION_CUES", "DENYING_WORDS", "PREDICATES", "_NEGATION", "_VERB"} <= set(lists)
    for name, words in lists.items():
        for word in CASE_SPECIFIC:
            assert not re.search(rf"\b{word}\b", words), f"{word!r} in text.{name}"


def test_case_specific_words_no_longer_deny():
    assert stem_polarity("Amoxicillin before the dentist is an outdated regimen.")["amoxicillin"] is False
    assert stem_polarity("Amoxicillin before the dentist is unnecessary.")["amoxicillin"] is True


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
