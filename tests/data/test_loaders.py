import json

import pytest

from edgemed.data.healthbench import load_healthbench_with_summary
from edgemed.data.heart import heart_subset, train_eval_split
from edgemed.data.rar import parse_rar
from edgemed.data.records import load_records_with_summary
from edgemed.errors import DataError

GOOD = {"prompt_id": "p1", "prompt": [{"role": "user", "content": "Is 150/95 high?"}],
        "rubrics": [{"criterion": "Says it is stage 2 hypertension", "points": 5, "tags": ["axis:accuracy"]},
                    {"criterion": "Tells the user to stop all medicines", "points": -4, "tags": []}]}


def write_lines(path, lines):
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return path


def test_offline_healthbench_matches_official_shape(healthbench_records):
    assert len(healthbench_records) == 500
    n_items = sum(len(r.rubrics) for r in healthbench_records)
    n_neg = sum(it.points < 0 for r in healthbench_records for it in r.rubrics)
    assert (n_items, n_neg) == (5965, 1859)
    assert all(r.prompt[-1]["role"] == "user" for r in healthbench_records)


def test_heart_subset_size_and_ids_are_stable(heart, healthbench_records):
    assert 40 <= len(heart.records) <= 60
    assert heart.rule == "heart-keywords-v1"
    assert heart.prompt_ids == heart_subset(list(reversed(healthbench_records))).prompt_ids[::-1]
    assert len(set(heart.prompt_ids)) == len(heart.prompt_ids)


def test_split_is_deterministic_and_disjoint(heart):
    train, ev = train_eval_split(heart.records, 0.5, seed=3)
    train2, ev2 = train_eval_split(list(reversed(heart.records)), 0.5, seed=3)
    ids = lambda rs: {r.prompt_id for r in rs}
    assert ids(train) == ids(train2) and ids(ev) == ids(ev2)
    assert not ids(train) & ids(ev) and len(train) + len(ev) == len(heart.records)


@pytest.mark.parametrize("line, field", [
    ('{"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}]', None),  # malformed JSON
    ({**GOOD, "rubrics": []}, "rubrics"),
    ({**GOOD, "rubrics": [{"criterion": "x", "points": "5"}]}, "rubrics[0].points"),
    ({**GOOD, "rubrics": [{"criterion": "x", "points": 0}]}, "rubrics[0].points"),
    ({**GOOD, "prompt": [{"role": "user", "content": "  "}]}, "prompt"),
    ({**GOOD, "prompt": [{"role": "doctor", "content": "x"}]}, "prompt[0].role"),
    ({k: v for k, v in GOOD.items() if k != "prompt_id"}, "prompt_id"),
])
def test_bad_records_name_file_line_and_field(tmp_path, line, field):
    path = write_lines(tmp_path / "bad.jsonl", [GOOD, line])
    with pytest.raises(DataError) as err:
        load_records_with_summary(path, strict=True)
    assert err.value.line == 2 and err.value.path == str(path) and err.value.field == field
    assert f"{path}:2" in str(err.value)


def test_lenient_load_counts_every_problem(tmp_path):
    path = write_lines(tmp_path / "mixed.jsonl", [GOOD, "{oops", GOOD, {**GOOD, "prompt_id": "p2"}])
    records, summary = load_records_with_summary(path, strict=False)
    assert [r.prompt_id for r in records] == ["p1", "p2"]
    assert summary.n_lines == 4 and len(summary.errors) == 1 and summary.duplicates == ["p1"]
    assert not summary.ok


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load_records_with_summary(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="not found"):
        load_healthbench_with_summary(str(tmp_path / "nope.jsonl"))


def test_rar_categories_and_wrong_sign():
    rec = parse_rar({"question": "What is a normal resting heart rate?", "rubric": [
        {"title": "Range", "description": "Essential Criteria: States 60-100 bpm", "weight": 5},
        {"title": "Harm", "description": "Pitfall Criteria: Calls 55 bpm dangerous in athletes", "weight": -2},
    ]}, "rar.jsonl", 7)
    assert [it.tags for it in rec.rubrics] == [("category:essential",), ("category:pitfall",)]
    assert rec.rubrics[0].criterion == "States 60-100 bpm" and rec.prompt_id.startswith("rar-")
    with pytest.raises(DataError, match="wrong sign") as err:
        parse_rar({"question": "q", "rubric": [{"description": "Pitfall Criteria: x", "weight": 2}]}, "r.jsonl", 3)
    assert err.value.field == "rubric[0].weight" and err.value.line == 3
