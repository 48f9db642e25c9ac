"""How good is a judge? Score it on labelled cases: accuracy, confusion, Cohen's kappa, macro-F1,
accuracy per kind, seconds per criterion. ``edgemed judge eval`` and the benchmark script use this.

A case is one JSON line: ``q`` (the user's question), ``response``, ``criterion``, ``points``
(signed: < 0 is a pitfall, where "met" means the bad behaviour is present), ``met`` (the human
label) and optional ``kind``/``id``. Cases sharing a question and response are graded together,
as a judge sees the criteria of one answer, so a judge that reuses its prompt prefix can.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgemed.data.schema import RubricItem
from edgemed.errors import DataError

SHIPPED_HELDOUT = Path(__file__).parent / "assets" / "judge_cases_heldout.jsonl"


@dataclass(frozen=True)
class Case:
    q: str
    response: str
    criterion: str
    points: float
    met: bool
    kind: str = ""
    id: str = ""


def load_cases(path: str | Path) -> list[Case]:
    """Labelled cases from JSONL; a bad line is ``file:line: field: message``.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.jsonl")
    >>> _ = open(p, "w").write('{"q": "bp?", "response": "x", "criterion": "y", "points": 3, "met": "yes"}\\n')
    >>> load_cases(p)
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: ...c.jsonl:1: met: must be true or false, got 'yes'
    """
    from edgemed.data.jsonl import iter_json_lines

    path = Path(path)
    cases = []
    for n, row in iter_json_lines(path):
        if isinstance(row, DataError):
            raise row
        if not isinstance(row, dict):
            raise DataError("expected a JSON object", path=str(path), line=n)
        if "q" not in row and "question" in row:  # the older case files say "question"
            row["q"] = row["question"]
        for key in ("q", "response", "criterion"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError("missing or not a non-empty string", path=str(path), line=n, field=key)
        points = row.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points == 0:
            raise DataError(f"must be a non-zero number, got {points!r}", path=str(path), line=n, field="points")
        if not isinstance(row.get("met"), bool):
            raise DataError(f"must be true or false, got {row.get('met')!r}", path=str(path), line=n, field="met")
        cases.append(Case(row["q"], row["response"], row["criterion"], float(points), row["met"],
                          str(row.get("kind") or ""), str(row.get("id") or f"line{n}")))
    if not cases:
        raise DataError("no cases", path=str(path))
    return cases


def confusion(labels: Sequence[bool], preds: Sequence[bool | None]) -> dict[str, int]:
    """tp/fp/tn/fn (positive = met) plus ``failed`` (no verdict; scored as wrong).

    >>> confusion([True, True, False, False], [True, False, False, None])
    {'tp': 1, 'fp': 0, 'tn': 1, 'fn': 1, 'failed': 1}
    """
    c = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "failed": 0}
    for y, p in zip(labels, preds):
        if p is None:
            c["failed"] += 1
        else:
            c[("t" if p == y else "f") + ("p" if p else "n")] += 1
    return c


def metrics(c: dict[str, int]) -> dict[str, float | None]:
    """Accuracy (failures count as wrong), Cohen's kappa, macro-F1, recall on met and on not met.

    >>> m = metrics({"tp": 40, "fp": 10, "tn": 40, "fn": 10, "failed": 0})
    >>> round(m["accuracy"], 3), round(m["kappa"], 3), round(m["macro_f1"], 3)
    (0.8, 0.6, 0.8)
    """
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    n = tp + fp + tn + fn + c["failed"]
    judged = tp + fp + tn + fn
    acc = (tp + tn) / n if n else None
    po = (tp + tn) / judged if judged else None
    pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / judged ** 2 if judged else None
    kappa = (po - pe) / (1 - pe) if judged and pe < 1 else None
    f1_pos = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    f1_neg = 2 * tn / (2 * tn + fn + fp) if (2 * tn + fn + fp) else 0.0
    return {"accuracy": acc, "kappa": kappa, "macro_f1": (f1_pos + f1_neg) / 2,
            "recall_met": tp / (tp + fn) if tp + fn else None,
            "recall_not_met": tn / (tn + fp) if tn + fp else None}


def summarize(cases: Sequence[Case], preds: Sequence[bool | None], seconds: float) -> dict[str, Any]:
    """The figures ``judge eval`` prints: overall, per kind, per sign of points, timing."""
    labels = [c.met for c in cases]
    conf = confusion(labels, preds)
    out: dict[str, Any] = {"n": len(cases), **metrics(conf), "confusion": conf,
                           "seconds_per_criterion": seconds / len(cases) if cases else None}
    out["always_not_met"] = sum(not y for y in labels) / len(labels)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[c.kind or "unspecified"].append(i)
    out["per_kind"] = {k: {"n": len(ix), "accuracy": sum(preds[i] == labels[i] for i in ix) / len(ix)}
                       for k, ix in sorted(groups.items())}
    for name, keep in (("positive_items", lambda c: c.points > 0), ("pitfall_items", lambda c: c.points < 0)):
        ix = [i for i, c in enumerate(cases) if keep(c)]
        out[name] = {"n": len(ix), "accuracy": sum(preds[i] == labels[i] for i in ix) / len(ix) if ix else None}
    return out


def judge_cases(judge, cases: Sequence[Case], threshold: float = 0.5, progress: bool = False
                ) -> tuple[list[bool | None], list[float | None], float]:
    """Grade every case with ``judge`` (criteria of one response together); → (verdicts, met values, seconds)."""
    by_response: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        by_response[(c.q, c.response)].append(i)
    values: list[float | None] = [None] * len(cases)
    started = time.perf_counter()
    for done, ((q, response), ix) in enumerate(by_response.items(), 1):
        conversation = [{"role": "user", "content": q}, {"role": "assistant", "content": response}]
        items = [RubricItem(cases[i].criterion, cases[i].points) for i in ix]
        for i, verdict in zip(ix, judge.grade(conversation, items)):
            values[i] = verdict.met
        if progress and done % 10 == 0:
            print(f"  {done}/{len(by_response)} responses graded", flush=True)
    seconds = time.perf_counter() - started
    return [None if v is None else v >= threshold for v in values], values, seconds


def best_threshold(probs: Sequence[float | None], labels: Sequence[bool]) -> tuple[float, float]:
    """The P(met) cut that maximises accuracy on tune cases; ties go to the cut nearest 0.5.

    Fit on tune cases only, then frozen: a threshold chosen on held-out cases makes their figure a
    training figure.

    >>> best_threshold([0.1, 0.4, 0.6, 0.9], [False, False, True, True])
    (0.5, 1.0)
    """
    pairs = [(p, y) for p, y in zip(probs, labels) if p is not None]
    cuts = sorted({0.5, *((a + b) / 2 for a, b in zip(sorted(p for p, _ in pairs), sorted(p for p, _ in pairs)[1:]))})
    best = (-1.0, 0.0, 0.5)
    for t in cuts:
        acc = sum((p >= t) == y for p, y in pairs) / len(pairs)
        key = (acc, -abs(t - 0.5))
        if key > (best[0], -abs(best[2] - 0.5)):
            best = (acc, 0.0, t)
    return round(best[2], 4), best[0]


RECORDED = Path(__file__).parent / "assets" / "judge_accuracy.json"


def recorded_accuracy(fingerprint: str, path: Path = RECORDED) -> float | None:
    """This exact judge's accuracy on held-out cases it was not fitted on (the shipped set or one written
    fresh for it, newest first), as `benchmarks/judge_eval.py record` wrote it; None when this judge
    (same backend, model, prompt, thresholds, schedule) was never measured.

    >>> recorded_accuracy("no-such-judge") is None
    True
    """
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["judges"]
    except (OSError, ValueError, KeyError):
        return None
    for row in rows:
        if row.get("fingerprint") == fingerprint:
            return row.get("accuracy")
    return None
