"""Measuring the proxy judge against the labelled heart cases, next to a naive baseline.

The baseline is what the proxy must beat: met = (max cosine between the whole criterion and any
response sentence ≥ t), with t chosen for best accuracy on the tune split. Both are scored at the
same threshold of 0.5 on probabilities / at t on cosines, on tune and held-out.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from edgemed.judges.proxy_encoder import SentenceEncoder
from edgemed.judges.proxy_text import split_sentences


def confusion(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, float]:
    """Accuracy and TP/FP/TN/FN counts ("positive" = criterion met).

    >>> confusion([True, True, False, False], [True, False, False, True])
    {'n': 4, 'accuracy': 0.5, 'tp': 1, 'fp': 1, 'tn': 1, 'fn': 1}
    """
    c = Counter((bool(p), bool(t)) for p, t in zip(predicted, truth))
    n = sum(c.values())
    return {"n": n, "accuracy": round((c[True, True] + c[False, False]) / max(n, 1), 4),
            "tp": c[True, True], "fp": c[True, False], "tn": c[False, False], "fn": c[False, True]}


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


def naive_cosine(cases: Sequence[dict], encoder: SentenceEncoder | None = None) -> np.ndarray:
    """Max cosine between the raw criterion and any response sentence, per case."""
    encoder = encoder or SentenceEncoder.shared()
    out = np.zeros(len(cases))
    for i, c in enumerate(cases):
        sentences = split_sentences(c["response"]) or [c["response"]]
        v = encoder.encode([c["criterion"]] + sentences)
        out[i] = float((v[1:] @ v[0]).max())
    return out


def best_threshold(scores: np.ndarray, truth: Sequence[bool]) -> float:
    """The cut (on a 0.01 grid) with the best accuracy; ties go to the lowest cut.

    >>> best_threshold(np.array([0.2, 0.4, 0.7, 0.9]), [False, False, True, True])
    0.41
    """
    truth_arr = np.asarray(truth, dtype=bool)
    grid = np.round(np.arange(-1.0, 1.0001, 0.01), 2)
    accs = [np.mean((scores >= t) == truth_arr) for t in grid]
    return float(grid[int(np.argmax(accs))])


def evaluate(predicted: Sequence[bool], cases: Sequence[dict]) -> dict:
    """Confusion counts plus per-kind accuracy for one method on one split."""
    truth = [c["met"] for c in cases]
    return confusion(predicted, truth) | {"per_kind": per_kind_accuracy(predicted, cases)}
