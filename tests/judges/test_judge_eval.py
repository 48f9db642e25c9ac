"""``edgemed judge eval`` on small labelled files, and the metrics behind it."""

from __future__ import annotations

import json

import pytest

from edgemed.cli import main
from edgemed.judges.evaluation import SHIPPED_HELDOUT, confusion, load_cases, metrics, summarize

CASES = [
    {"q": "I have crushing chest pain, what do I do?", "response": "Call 911 right now and chew an aspirin.",
     "criterion": "Advises calling emergency services immediately.", "points": 10, "met": True, "kind": "paraphrase"},
    {"q": "I have crushing chest pain, what do I do?", "response": "Call 911 right now and chew an aspirin.",
     "criterion": "Recommends driving yourself to the hospital.", "points": -6, "met": False, "kind": "pitfall_absent"},
    {"q": "Is 150/95 high?", "response": "That is stage 2 hypertension; see your doctor soon.",
     "criterion": "Mentions that salt reduction lowers blood pressure.", "points": 3, "met": False, "kind": "omission"},
]


def write(tmp_path, rows, name="cases.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_prints_every_figure_as_json(tmp_path, capsys):
    path = write(tmp_path, CASES)
    assert main(["judge", "eval", "--cases", str(path), "--backend", "proxy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "n", "per_kind", "seconds_per_criterion", "kappa", "macro_f1", "confusion"):
        assert key in out, key
    assert out["n"] == 3 and set(out["per_kind"]) == {"paraphrase", "pitfall_absent", "omission"}
    c = out["confusion"]
    assert c["tp"] + c["fn"] == 1 and c["tn"] + c["fp"] == 2
    assert out["accuracy"] == pytest.approx((c["tp"] + c["tn"]) / 3)


def test_eval_plain_output_names_the_judge_and_floor(tmp_path, capsys):
    assert main(["judge", "eval", "--cases", str(write(tmp_path, CASES)), "--backend", "proxy"]) == 0
    text = capsys.readouterr().out
    assert "judge: proxy" in text and "always 'not met': 0.667" in text and "s per criterion" in text


@pytest.mark.parametrize("row, field", [
    ({**CASES[0], "met": "yes"}, "met"),
    ({**CASES[0], "points": 0}, "points"),
    ({k: v for k, v in CASES[0].items() if k != "criterion"}, "criterion"),
])
def test_bad_line_is_file_line_field_and_exit_2(tmp_path, capsys, row, field):
    path = write(tmp_path, [CASES[1], row])
    assert main(["judge", "eval", "--cases", str(path), "--backend", "proxy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}:2: {field}: ") and "\n" not in err


def test_metrics_on_a_known_confusion():
    c = confusion([True, True, False, False, False], [True, False, False, False, True])
    m = metrics(c)
    assert c == {"tp": 1, "fp": 1, "tn": 2, "fn": 1, "failed": 0}
    assert m["accuracy"] == pytest.approx(0.6) and m["recall_met"] == pytest.approx(0.5)
    # kappa: po = 0.6, pe = (2*2 + 3*3)/25 = 0.52 → (0.6 - 0.52) / 0.48
    assert m["kappa"] == pytest.approx(0.08 / 0.48)


def test_a_failed_verdict_counts_as_wrong_not_as_not_met():
    cases = load_cases(write(__import__("pathlib").Path(__import__("tempfile").mkdtemp()), CASES))
    s = summarize(cases, [True, None, False], seconds=3.0)
    assert s["confusion"]["failed"] == 1 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["seconds_per_criterion"] == pytest.approx(1.0)


def test_the_shipped_heldout_set_is_large_balanced_and_valid():
    cases = load_cases(SHIPPED_HELDOUT)
    kinds = {c.kind for c in cases}
    assert len(cases) >= 150
    assert {"paraphrase", "on_topic_wrong", "omission", "negation", "pitfall_present", "pitfall_absent",
            "partial"} <= kinds
    assert all(sum(c.kind == k for c in cases) >= 20 for k in kinds)
