"""The proxy judge's labelled heart cases: loading and validation.

``assets/proxy_cases.jsonl`` holds hand-written (question, response, criterion, points, met) cases
over the 14 cardiac themes. The split is by scenario (a question and all its answers), fixed by a
hash of the scenario id before any tuning: ``heldout`` when sha256(id) % 3 == 0. The proxy's
calibration is fitted on ``tune`` only; ``heldout`` measures it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgemed.errors import DataError

KINDS = ("right", "wrong_on_topic", "omission", "pitfall_present", "pitfall_absent", "off_topic")
SPLITS = ("tune", "heldout")
_FIELDS = {"id": str, "question": str, "response": str, "criterion": str, "points": (int, float),
           "met": bool, "kind": str, "split": str}


def default_cases_path() -> Path:
    """The labelled set shipped with the package.

    >>> default_cases_path().name
    'proxy_cases.jsonl'
    """
    return Path(__file__).parent / "assets" / "proxy_cases.jsonl"


def load_cases(path: str | Path | None = None, split: str | None = None) -> list[dict]:
    """Validated cases, optionally one split only.

    >>> cases = load_cases(split="heldout")
    >>> len(cases) > 100, {c["split"] for c in cases}
    (True, {'heldout'})
    """
    path = Path(path) if path else default_cases_path()
    cases, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e.msg}", path=str(path), line=n) from None
        _check(case, str(path), n, seen)
        if split is None or case["split"] == split:
            cases.append(case)
    return cases


def _check(case: dict, path: str, line: int, seen: set[str]) -> None:
    for name, kind in _FIELDS.items():
        if not isinstance(case.get(name), kind) or (kind is not bool and isinstance(case.get(name), bool)):
            raise DataError(f"missing or wrong type (want {kind})", path=path, line=line, field=name)
    if case["id"] in seen:
        raise DataError(f"duplicate id {case['id']!r}", path=path, line=line, field="id")
    seen.add(case["id"])
    if case["kind"] not in KINDS:
        raise DataError(f"kind must be one of {KINDS}", path=path, line=line, field="kind")
    if case["split"] not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}", path=path, line=line, field="split")
    pitfall_kind = case["kind"].startswith("pitfall")
    if pitfall_kind != (case["points"] < 0):
        raise DataError("pitfall kinds need negative points and others positive", path=path, line=line,
                        field="points")
