"""The packaged heart training rubric set (edgemed-heart-rar): format, coverage and eval hygiene.

The file is RaR-Medicine format plus the heart fields ``heart_theme``, ``split`` and ``id``
(docs/data.md, "Heart training rubrics").
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

# The 14 cardiac themes of the heart file, spelled as in the method notes.
THEMES = (
    "cardiac medications", "cardiomyopathy", "cardiovascular disease", "cardiovascular risk factors",
    "chest pain", "congenital heart disease", "coronary artery disease", "ECG/EKG interpretation",
    "heart attack (MI)", "heart failure", "heart palpitations", "arrhythmia", "heart valve problems",
    "hypertension",
)
# RaR-Medicine category prefix -> allowed weights.
WEIGHTS = {"Essential": {5}, "Important": {3, 4}, "Optional": {1, 2}, "Pitfall": {-1, -2}}
PREFIX_RE = re.compile(r"^(Essential|Important|Optional|Pitfall) Criteria: \S")
SPLITS = {"train", "validation", "test"}
FIELDS = {"id", "question", "reference_answer", "question_source", "rubric", "rubric_list",
          "rubric_count", "heart_theme", "split"}


def asset_path() -> Path:
    return Path(str(resources.files("edgemed.data") / "assets" / "heart_rubrics.jsonl"))


@pytest.fixture(scope="module")
def records() -> list[dict]:
    lines = asset_path().read_text(encoding="utf-8").rstrip("\n").split("\n")
    out = []
    for i, line in enumerate(lines, start=1):
        assert line.strip(), f"blank line {i}"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {i} is not an object"
        out.append(obj)
    return out


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def category(description: str) -> str:
    m = PREFIX_RE.match(description)
    assert m, f"description lacks a category prefix: {description[:60]!r}"
    return m.group(1)


def test_size_fields_and_source(records):
    assert len(records) >= 60
    for r in records:
        missing = FIELDS - r.keys()
        assert not missing, (r.get("id"), missing)
        assert r["question_source"] == "edgemed-heart-v1"
        assert isinstance(r["question"], str) and len(r["question"].split()) >= 5, r["id"]
        n_words = len(r["reference_answer"].split())
        assert 80 <= n_words <= 200, (r["id"], n_words)


def test_every_theme_is_covered(records):
    counts = Counter(r["heart_theme"] for r in records)
    assert set(counts) == set(THEMES), set(counts) ^ set(THEMES)
    assert min(counts.values()) >= 4, counts
    train_themes = {r["heart_theme"] for r in records if r["split"] == "train"}
    assert train_themes == set(THEMES), set(THEMES) - train_themes


def test_rubric_shape_and_prefix_weight_agreement(records):
    for r in records:
        rubric = r["rubric"]
        assert 5 <= len(rubric) <= 12, (r["id"], len(rubric))
        assert r["rubric_count"] == len(rubric), r["id"]
        assert r["rubric_list"] == [it["description"] for it in rubric], r["id"]
        cats = []
        for it in rubric:
            assert set(it) == {"title", "description", "weight"}, (r["id"], it)
            assert it["title"].strip() and len(it["title"]) <= 60, (r["id"], it["title"])
            cat = category(it["description"])
            assert it["weight"] in WEIGHTS[cat], (r["id"], cat, it["weight"])
            cats.append(cat)
        assert cats.count("Pitfall") >= 1, r["id"]
        assert cats.count("Essential") >= 2, r["id"]
        descs = [norm(d) for d in r["rubric_list"]]
        assert len(set(descs)) == len(descs), f"{r['id']} repeats a criterion"


def test_ids_and_questions_are_unique(records):
    ids = [r["id"] for r in records]
    assert all(re.fullmatch(r"ehr-\d{3}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    questions = [norm(r["question"]) for r in records]
    assert len(set(questions)) == len(questions)


def test_splits_present_and_roughly_80_10_10(records):
    counts = Counter(r["split"] for r in records)
    assert set(counts) == SPLITS, counts
    n = len(records)
    assert 0.7 <= counts["train"] / n <= 0.9, counts
    assert counts["validation"] >= 0.05 * n and counts["test"] >= 0.05 * n, counts


def test_no_exact_overlap_with_healthbench_prompts(records):
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("eval_framework is not installed, so the HealthBench eval file is unavailable")
    root = Path(list(spec.submodule_search_locations)[0])
    hb_file = root / "tasks" / "healthbench" / "data" / "healthbench_eval.jsonl"
    if not hb_file.is_file():
        pytest.skip(f"HealthBench eval file not shipped in this eval_framework build: {hb_file}")
    user_turns = set()
    for line in hb_file.read_text(encoding="utf-8").split("\n"):  # not splitlines: U+2028 occurs
        if line.strip():
            for m in json.loads(line).get("prompt", []):
                if m.get("role") == "user" and isinstance(m.get("content"), str):
                    user_turns.add(norm(m["content"]))
    assert user_turns, "HealthBench eval file has no user turns"
    clashes = [r["id"] for r in records if norm(r["question"]) in user_turns]
    assert not clashes, clashes


def test_loads_through_rar_loader_without_errors(records):
    from edgemed.data.rar import load_rar_medicine, load_rar_medicine_with_summary

    loaded, summary = load_rar_medicine_with_summary("edgemed-heart", strict=False)
    assert summary.ok, summary.describe()
    assert summary.n_kept == len(records) == len(loaded)
    by_id = {r.prompt_id: r for r in loaded}
    for raw in records:
        rec = by_id[raw["id"]]
        assert rec.user_text == raw["question"]
        assert rec.split == raw["split"]
        assert f"theme:{raw['heart_theme']}" in rec.example_tags
        assert rec.points == [float(it["weight"]) for it in raw["rubric"]]
        assert len(rec.rubrics) > 3  # the paper's GRPO filter keeps prompts with more than 3 criteria
        assert all(len(it.tags) == 1 and it.tags[0].startswith("category:") for it in rec.rubrics)
        assert not any(it.criterion.split(":")[0].endswith("Criteria") for it in rec.rubrics)
    train = load_rar_medicine("edgemed-heart", split="train")
    assert len(train) == sum(r["split"] == "train" for r in records)
