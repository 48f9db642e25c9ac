"""Tooling for the proxy judge: its labelled tuning cases, grouped cross-validation, refitting.

Grading never imports this module. Everything here works on ``assets/cases.jsonl``: 540
hand-written (question, response, criterion, points, met) cases over 30 heart scenarios. **All of
them are tuning data.** An earlier "heldout" third was written by the same people, in the same
style, together with the rules it was meant to test, and rules were later fitted to its wording,
so it measured nothing held out; it was folded into tuning (every case now says
``"split": "tune"``). The proxy's accuracy on independent cases comes from ``edgemed judge eval``
(docs/judges.md), never from this file.

    python -m edgemed.judges.proxy.tuning cv     # grouped 5-fold CV on the tuning cases
    python -m edgemed.judges.proxy.tuning fit    # refit on all of them, write assets/calibration.json

Cross-validation is grouped by scenario (a question and all its answers) and a training fold
never holds a case whose response text is in the validation fold (off-topic cases reuse another
scenario's answer), so no response is seen on both sides.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from edgemed.errors import DataError
from edgemed.io import write_json_atomic
from edgemed.judges.proxy.calibration import Calibration, default_calibration_path
from edgemed.judges.proxy.encoder import SentenceEncoder
from edgemed.judges.proxy.features import FEATURES
from edgemed.judges.proxy.judge import evidence_texts, grade_evidence
from edgemed.judges.proxy.text import parse_criterion, split_sentences

KINDS = ("right", "wrong_on_topic", "omission", "pitfall_present", "pitfall_absent", "off_topic")
SPLITS = ("tune",)  # the only split: see the module docstring
_FIELDS = {"id": str, "question": str, "response": str, "criterion": str, "points": (int, float),
           "met": bool, "kind": str, "split": str}

L2 = 1.0  # mild: a handful of standardised features, 540 cases; keeps weights stable case to case
NEWTON_STEPS = 50
# The classes are weighted to count equally: the tuning cases are 2:1 "claim absent", and with
# unweighted log-loss the fit learned that prior and rarely said "met" on independent cases.
CLASS_WEIGHT = "balanced"
FOLDS = 5


# -- the labelled cases ------------------------------------------------------------------------

def default_cases_path() -> Path:
    """The labelled tuning set shipped with the package.

    >>> default_cases_path().name
    'cases.jsonl'
    """
    return Path(__file__).parent / "assets" / "cases.jsonl"


def load_cases(path: str | Path | None = None) -> list[dict]:
    """Validated cases (all of them tuning data).

    >>> cases = load_cases()
    >>> len(cases), {c["split"] for c in cases}
    (540, {'tune'})
    """
    path = Path(path) if path else default_cases_path()
    from edgemed.data.jsonl import iter_json_lines

    cases, seen = [], set()
    for n, case in iter_json_lines(path):
        if isinstance(case, DataError):
            raise case
        _check(case, str(path), n, seen)
        cases.append(case)
    return cases


def scenario(case: dict) -> str:
    """The scenario a case belongs to: its id up to the first dash.

    >>> scenario({"id": "mi_call-right-c1"})
    'mi_call'
    """
    return case["id"].split("-")[0]


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
        raise DataError(f"split must be one of {SPLITS}: the proxy's cases are all tuning data",
                        path=path, line=line, field="split")
    pitfall_kind = case["kind"].startswith("pitfall")
    if pitfall_kind != (case["points"] < 0):
        raise DataError("pitfall kinds need negative points and others positive", path=path, line=line,
                        field="points")


# -- features and fitting ----------------------------------------------------------------------

def case_features(cases: Sequence[dict], encoder: SentenceEncoder | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix and omission-phrasing flags for labelled cases.

    Cases sharing a question and response are graded together, as ``ProxyJudge.grade`` would.
    """
    encoder = encoder or SentenceEncoder.shared()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(cases):
        groups.setdefault((c["question"], c["response"]), []).append(i)
    # One length-sorted pass over every distinct text first: far fewer, fuller batches than
    # encoding response by response (the per-response calls below then hit the memo).
    texts = [evidence_texts(q, r, [cases[i]["criterion"] for i in idx])[0] for (q, r), idx in groups.items()]
    encoder.encode(list(dict.fromkeys(t for group in texts for t in group)))
    rows = np.zeros((len(cases), len(FEATURES)))
    for (question, response), idx in groups.items():
        evidence = grade_evidence(encoder, question, response, [cases[i]["criterion"] for i in idx])
        for i, ev in zip(idx, evidence):
            rows[i] = ev.values
    absent = np.array([parse_criterion(c["criterion"]).absent_is_met for c in cases], dtype=bool)
    return rows, absent


def claim_targets(cases: Sequence[dict], absent: np.ndarray) -> np.ndarray:
    """What the calibration predicts: 1 when the response makes the claim (met, or not met for
    omission-phrased criteria)."""
    met = np.array([c["met"] for c in cases], dtype=np.float64)
    return np.where(absent, 1.0 - met, met)


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights that make both classes weigh as much in total.

    >>> balanced_weights(np.array([1.0, 0.0, 0.0, 0.0])).tolist()
    [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
    """
    y = np.asarray(y) > 0.5
    n, pos = len(y), int(y.sum())
    if pos in (0, n):
        return np.ones(n)
    return np.where(y, n / (2 * pos), n / (2 * (n - pos)))


def fit_logistic(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], l2: float = L2,
                 class_weight: str | None = CLASS_WEIGHT) -> Calibration:
    """Newton's method on the (class-weighted) L2-penalised log-loss; deterministic.

    >>> x = np.array([[0.1], [0.2], [0.8], [0.9]]); y = np.array([0, 0, 1, 1])
    >>> c = fit_logistic(x, y, ("s",))
    >>> [round(float(p)) for p in c.probability(x)]
    [0, 0, 1, 1]
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    sw = balanced_weights(y) if class_weight == "balanced" else np.ones(len(y))
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    penalty = np.diag([l2] * x.shape[1] + [0.0])  # the bias is not shrunk
    w = np.zeros(z.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ (sw * (p - y)) + penalty @ w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(tuple(features), mean, scale, w[:-1], float(w[-1]))


def fit_cases(x: np.ndarray, absent: np.ndarray, cases: Sequence[dict]) -> Calibration:
    """The shipped recipe: class-balanced logistic fit of claim targets on the given cases."""
    return fit_logistic(x, claim_targets(cases, absent), FEATURES)


def met_probability(cal: Calibration, x: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """P(met) as the judge reports it: P(claim made), or 1 - it for omission phrasing."""
    p = cal.probability(x)
    return np.where(absent, 1.0 - p, p)


# -- grouped cross-validation ------------------------------------------------------------------

def grouped_folds(cases: Sequence[dict], k: int = FOLDS, salt: str = "") -> np.ndarray:
    """Fold index per case: whole scenarios per fold, dealt round-robin in sha256(salt + name) order.

    The shipped figures use the empty salt; other salts give other assignments, to see how much
    a figure moves with the split alone.

    >>> f = grouped_folds(load_cases())
    >>> sorted(Counter(f.tolist()).values())
    [108, 108, 108, 108, 108]
    """
    names = sorted({scenario(c) for c in cases}, key=lambda s: hashlib.sha256((salt + s).encode()).hexdigest())
    fold_of = {s: i % k for i, s in enumerate(names)}
    return np.array([fold_of[scenario(c)] for c in cases])


def training_mask(cases: Sequence[dict], folds: np.ndarray, fold: int) -> np.ndarray:
    """Cases to fit on when validating ``fold``: other folds, minus any case whose response text
    also appears in ``fold``."""
    held = {c["response"] for c, f in zip(cases, folds) if f == fold}
    return np.array([f != fold and c["response"] not in held for c, f in zip(cases, folds)])


def cross_validated_met(x: np.ndarray, absent: np.ndarray, cases: Sequence[dict], k: int = FOLDS,
                        salt: str = "", class_weight: str | None = CLASS_WEIGHT) -> np.ndarray:
    """Out-of-fold P(met) for every case: each predicted by a calibration that never saw its
    scenario or its response."""
    folds = grouped_folds(cases, k, salt)
    targets = claim_targets(cases, absent)
    out = np.zeros(len(cases))
    for fold in range(k):
        train, val = training_mask(cases, folds, fold), folds == fold
        cal = fit_logistic(x[train], targets[train], FEATURES, class_weight=class_weight)
        out[val] = met_probability(cal, x[val], absent[val])
    return out


# -- scoring -----------------------------------------------------------------------------------

def confusion(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, float]:
    """Accuracy, balanced accuracy, recall on met and TP/FP/TN/FN ("positive" = criterion met).

    >>> confusion([True, True, False, False], [True, False, False, True])
    {'n': 4, 'accuracy': 0.5, 'balanced_accuracy': 0.5, 'recall_met': 0.5, 'tp': 1, 'fp': 1, 'tn': 1, 'fn': 1}
    """
    c = Counter((bool(p), bool(t)) for p, t in zip(predicted, truth))
    n = sum(c.values())
    tp, fp, tn, fn = c[True, True], c[True, False], c[False, False], c[False, True]
    recall = tp / max(tp + fn, 1)
    specificity = tn / max(tn + fp, 1)
    return {"n": n, "accuracy": round((tp + tn) / max(n, 1), 4),
            "balanced_accuracy": round((recall + specificity) / 2, 4), "recall_met": round(recall, 4),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def per_kind_accuracy(predicted: Sequence[bool], cases: Sequence[dict]) -> dict[str, dict]:
    """Accuracy and n for each case kind (right, wrong_on_topic, omission, ...).

    >>> per_kind_accuracy([True, False], [{"kind": "right", "met": True}, {"kind": "right", "met": True}])
    {'right': {'n': 2, 'accuracy': 0.5}}
    """
    out: dict[str, dict] = {}
    for kind in sorted({c["kind"] for c in cases}):
        idx = [i for i, c in enumerate(cases) if c["kind"] == kind]
        hits = sum(bool(predicted[i]) == bool(cases[i]["met"]) for i in idx)
        out[kind] = {"n": len(idx), "accuracy": round(hits / len(idx), 4)}
    return out


def evaluate(predicted: Sequence[bool], cases: Sequence[dict]) -> dict:
    """Confusion figures plus per-kind accuracy for one method."""
    truth = [c["met"] for c in cases]
    return confusion(predicted, truth) | {"per_kind": per_kind_accuracy(predicted, cases)}


def naive_cosine(cases: Sequence[dict], encoder: SentenceEncoder | None = None) -> np.ndarray:
    """The baseline's score: max cosine between the raw criterion and any response sentence."""
    encoder = encoder or SentenceEncoder.shared()
    out = np.zeros(len(cases))
    for i, c in enumerate(cases):
        sentences = split_sentences(c["response"]) or [c["response"]]
        v = encoder.encode([c["criterion"]] + sentences)
        out[i] = float((v[1:] @ v[0]).max())
    return out


def best_threshold(scores: np.ndarray, truth: Sequence[bool]) -> float:
    """The cut (on a 0.01 grid) with the best balanced accuracy; ties go to the lowest cut.

    >>> best_threshold(np.array([0.2, 0.4, 0.7, 0.9]), [False, False, True, True])
    0.41
    """
    truth_arr = np.asarray(truth, dtype=bool)
    grid = np.round(np.arange(-1.0, 1.0001, 0.01), 2)
    scores_ = [confusion(scores >= t, truth_arr)["balanced_accuracy"] for t in grid]
    return float(grid[int(np.argmax(scores_))])


def cross_validated_naive(scores: np.ndarray, cases: Sequence[dict], k: int = FOLDS,
                          salt: str = "") -> np.ndarray:
    """Out-of-fold verdicts of the naive baseline: its threshold chosen on the training folds."""
    folds = grouped_folds(cases, k, salt)
    truth = np.array([c["met"] for c in cases], dtype=bool)
    out = np.zeros(len(cases), dtype=bool)
    for fold in range(k):
        train, val = training_mask(cases, folds, fold), folds == fold
        out[val] = scores[val] >= best_threshold(scores[train], truth[train])
    return out


# -- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Proxy judge tooling: cross-validate or refit the calibration "
                                             "on the labelled tuning cases.")
    ap.add_argument("command", choices=("cv", "fit"))
    ap.add_argument("--cases", default=None, help="labelled JSONL (default: the shipped tuning set)")
    ap.add_argument("--out", default=str(default_calibration_path()), help="calibration JSON (fit)")
    args = ap.parse_args(argv)
    cases = load_cases(args.cases)
    x, absent = case_features(cases)
    if args.command == "cv":
        r = confusion(cross_validated_met(x, absent, cases) >= 0.5, [c["met"] for c in cases])
        print(f"proxy, tune cases cross-validated ({FOLDS} folds grouped by scenario): {json.dumps(r)}")
        return
    cal = fit_cases(x, absent, cases)
    write_json_atomic(args.out, cal.to_dict() | {"fitted_on": {
        "cases": len(cases), "split": "tune (all cases)", "l2": L2, "class_weight": CLASS_WEIGHT}})
    r = confusion(met_probability(cal, x, absent) >= 0.5, [c["met"] for c in cases])
    print(f"proxy calibration: {len(cases)} tune cases, in-sample {json.dumps(r)} -> {args.out}")


if __name__ == "__main__":
    main()
