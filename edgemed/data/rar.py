"""RaR-Medicine loader (Rubrics as Rewards, arXiv 2507.17746) onto the edgemed schema.

Record: ``question``, ``reference_answer``, ``rubric: [{title, description, weight}]``. The
description prefix gives the category ("Essential Criteria:" weight 5, "Important" 3–4,
"Optional" 1–2, "Pitfall" −1/−2); it becomes the tag ``category:<name>`` and the prefix is
dropped from the criterion text. A weight whose sign contradicts its category is an error.
Sources: a JSONL or parquet path, a ``datasets`` hub id, or ``edgemed-heart`` — the packaged,
project-written heart rubric set in the same format.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from edgemed.data.jsonl import LoadSummary, load_jsonl_records
from edgemed.data.schema import RubricItem, RubricRecord, require_points, require_text
from edgemed.errors import DataError

PACKAGED = {"edgemed-heart": "heart_rubrics.jsonl"}
HUB_ID = "anisha2102/RaR-Medicine-20k"
CATEGORY_RE = re.compile(r"^\s*(Essential|Important|Optional|Pitfall)\s+Criteri(?:a|on)\s*:\s*", re.I)


def split_category(description: str) -> tuple[str | None, str]:
    """``("essential", "text")`` from ``"Essential Criteria: text"``; ``(None, text)`` without prefix.

    >>> split_category("Pitfall Criteria: Recommends driving to the ER")
    ('pitfall', 'Recommends driving to the ER')
    """
    m = CATEGORY_RE.match(description)
    if not m:
        return None, description.strip()
    return m.group(1).lower(), description[m.end():].strip()


def rar_item(raw: Any, where: str, fail) -> RubricItem:
    if not isinstance(raw, dict):
        raise fail("rubric item must be an object", where)
    desc = require_text(raw, "description", where, fail)
    w = require_points(raw, "weight", where, fail)
    category, text = split_category(desc)
    if category == "pitfall" and w > 0 or category not in (None, "pitfall") and w < 0:
        raise fail(f"weight {w} has the wrong sign for a {category} criterion", f"{where}.weight")
    if not text:
        raise fail("criterion text is empty after its category prefix", f"{where}.description")
    tags = (f"category:{category}",) if category else ()
    return RubricItem(text, w, tags, raw.get("title"))


def parse_rar(obj: Any, path: str, line: int | None) -> RubricRecord:
    """Map one RaR-Medicine record onto a RubricRecord (validated, errors name the field)."""

    def fail(msg, fld=None):
        return DataError(msg, path=path, line=line, field=fld)

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        raise fail("missing or empty question", "question")
    rubric = obj.get("rubric")
    if isinstance(rubric, str):  # some parquet exports store the list as a JSON string
        try:
            rubric = json.loads(rubric)
        except json.JSONDecodeError:
            raise fail("rubric is a string but not JSON", "rubric") from None
    if not isinstance(rubric, list) or not rubric:
        raise fail("missing or empty rubric list", "rubric")
    items = [rar_item(it, f"rubric[{i}]", fail) for i, it in enumerate(rubric)]
    pid = obj.get("id") or obj.get("prompt_id") or "rar-" + hashlib.sha256(q.encode()).hexdigest()[:12]
    tags = [f"theme:{obj['heart_theme']}"] if obj.get("heart_theme") else []
    return RubricRecord(
        prompt_id=str(pid), prompt=[{"role": "user", "content": q.strip()}], rubrics=items,
        example_tags=tags, split=obj.get("split"), source="rar-medicine",
        reference_answer=obj.get("reference_answer"),
        meta={k: obj[k] for k in ("question_source", "heart_theme") if obj.get(k)},
    )


def packaged_path(name: str) -> Path:
    """Path of a packaged rubric set.

    >>> packaged_path("edgemed-heart").name
    'heart_rubrics.jsonl'
    """
    return Path(str(resources.files("edgemed.data") / "assets" / PACKAGED[name]))


def load_rar_medicine_with_summary(source: str = "edgemed-heart", split: str | None = None,
                                   strict: bool = True) -> tuple[list[RubricRecord], LoadSummary]:
    if source in PACKAGED:
        records, summary = load_jsonl_records(packaged_path(source), parse_rar, strict=strict)
    elif source.endswith((".jsonl", ".json")) or Path(source).is_file():
        records, summary = load_jsonl_records(Path(source), parse_rar, strict=strict)
    elif source.endswith(".parquet"):
        records, summary = load_table(Path(source), split, strict)
    else:
        records, summary = load_hub(source, split, strict)
    if split is not None:
        records = [r for r in records if r.split in (None, split)]
    return records, summary


def load_rar_medicine(source: str = "edgemed-heart", split: str | None = None,
                      strict: bool = True) -> list[RubricRecord]:
    """Load RaR-Medicine-format records; ``split`` keeps one split (records without one are kept).

    >>> recs = load_rar_medicine("edgemed-heart", split="train")  # doctest: +SKIP
    >>> recs[0].rubrics[0].tags  # doctest: +SKIP
    ('category:essential',)
    """
    return load_rar_medicine_with_summary(source, split, strict)[0]


def from_rows(rows, path: str, strict: bool) -> tuple[list[RubricRecord], LoadSummary]:
    summary = LoadSummary(path=path)
    records = []
    for i, row in enumerate(rows, start=1):
        summary.n_lines += 1
        try:
            records.append(parse_rar(dict(row), path, i))
        except DataError as e:
            if strict:
                raise
            summary.errors.append(e)
    summary.n_kept = len(records)
    return records, summary


def load_table(path: Path, split: str | None, strict: bool):
    import datasets

    if not path.is_file():
        raise DataError("file not found", path=str(path))
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    return from_rows(ds, str(path), strict)


def load_hub(repo_id: str, split: str | None, strict: bool):
    import datasets

    try:
        ds = datasets.load_dataset(repo_id, split=split or "train")
    except Exception as e:  # datasets raises many types for "not reachable / not found"
        raise DataError(f"cannot load dataset '{repo_id}' ({type(e).__name__}: {e})"[:300]) from e
    return from_rows(ds, repo_id, strict)
