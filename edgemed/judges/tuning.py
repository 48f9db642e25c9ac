"""Fitting the local LLM judge on tune cases, and the two package assets that fitting and measuring write.

- ``fit_per_sign``: from the judge's raw P(yes) and the proxy's out-of-fold P(met) on the tune cases,
  one threshold and one LLM+proxy blend for positive criteria and one for pitfalls (their P(yes)
  behave differently: "is the mistake present?" gets a hesitant yes), with grouped 5-fold CV figures
  for the single and the per-sign fit. Pure: numbers in, numbers out.
- ``write_calibration``: ``assets/judge_calibration.json``, which ``yesno.load_calibration`` reads.
- ``recorded_accuracies`` / ``write_recorded``: ``assets/judge_accuracy.json``, which reports print as
  a judge's held-out accuracy: per fingerprint, its newest measurement on a set it was not fitted on.

The measuring (grading cases with the real judge) lives in ``benchmarks/judge_eval.py``; the
proxy's own fitting in ``judges/proxy/tuning.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgemed.io import write_json_atomic
from edgemed.judges import evaluation as ev
from edgemed.judges.yesno import CALIBRATION, logit


def raw_blend(cal) -> dict[str, float]:
    """A fitted logistic blend back in raw logit space: z = bias + w_llm·logit P(yes) + w_proxy·logit P_proxy.

    >>> from types import SimpleNamespace as N
    >>> raw_blend(N(weights=np.array([2.0, 1.0]), scale=np.array([2.0, 1.0]), mean=np.array([1.0, 0.0]), bias=0.5))
    {'bias': -0.5, 'w_llm': 1.0, 'w_proxy': 1.0}
    """
    w = cal.weights / cal.scale
    return {"bias": float(cal.bias - (cal.weights * cal.mean / cal.scale).sum()), "w_llm": float(w[0]),
            "w_proxy": float(w[1])}


def per_kind(cases: Sequence[ev.Case], pred: Sequence[bool]) -> dict[str, float]:
    """Accuracy per case kind.

    >>> from types import SimpleNamespace as N
    >>> per_kind([N(kind="a", met=True), N(kind="a", met=False), N(kind="b", met=True)], [True, True, True])
    {'a': 0.5, 'b': 1.0}
    """
    out: dict[str, float] = {}
    for k in sorted({c.kind for c in cases}):
        ix = [i for i, c in enumerate(cases) if c.kind == k]
        out[k] = float(np.mean([pred[i] == cases[i].met for i in ix]))
    return out


def fit_per_sign(p_llm: np.ndarray, p_proxy: np.ndarray, cases: Sequence[ev.Case],
                 raw_cases: list[dict], sources: Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(calibration entries, tune figures) for the judge's P(yes) ``p_llm`` and the proxy's P(met)
    ``p_proxy`` (out-of-fold, or from a proxy never fitted on the case) on the tune cases
    (``raw_cases``: dicts with the ``id`` whose part before the first dash names the scenario, and
    the ``response``, for scenario-grouped folds). The calibration is fitted on every tune case; the
    figures are each fit's accuracy on folds it did not see, pooled and, with ``sources`` (one name
    per case: the file it came from), per source."""
    from edgemed.judges.proxy import tuning

    labels = np.array([c.met for c in cases])
    pitfall = np.array([c.points < 0 for c in cases])
    folds = tuning.grouped_folds(raw_cases)
    feats = np.c_[[logit(float(p)) for p in p_llm], [logit(float(p)) for p in p_proxy]]
    signs = {"positive": ~pitfall, "pitfall": pitfall}

    def blend(mask):
        return tuning.fit_logistic(feats[mask], labels[mask], ("llm", "proxy"), class_weight=None)

    def threshold(mask):
        return ev.best_threshold(p_llm[mask].tolist(), labels[mask].tolist())[0]

    oof_llm, oof_blend = np.zeros(len(cases), bool), np.zeros(len(cases))
    oof_llm_sign, oof_blend_sign = np.zeros(len(cases), bool), np.zeros(len(cases))
    for fold in range(folds.max() + 1):
        train, val = tuning.training_mask(raw_cases, folds, fold), folds == fold
        oof_llm[val] = p_llm[val] >= threshold(train)
        oof_blend[val] = blend(train).probability(feats[val])
        for mask in signs.values():
            tr, va = train & mask, val & mask
            oof_llm_sign[va] = p_llm[va] >= threshold(tr)
            oof_blend_sign[va] = blend(tr).probability(feats[va])
    thresholds = {name: threshold(m) for name, m in signs.items()}
    blends = {name: raw_blend(blend(m)) for name, m in signs.items()}

    def acc(pred):
        return float((np.asarray(pred) == labels).mean())

    figures = {
        "n": len(cases), "n_pitfall": int(pitfall.sum()), "always_not_met": float((~labels).mean()),
        "llm_at_0.5": acc(p_llm >= 0.5), "llm_cv_threshold": acc(oof_llm), "llm_cv_threshold_per_sign": acc(oof_llm_sign),
        "proxy_cv": acc(p_proxy >= 0.5), "blend_cv": acc(oof_blend >= 0.5), "blend_cv_per_sign": acc(oof_blend_sign >= 0.5),
        "per_kind_blend_cv": per_kind(cases, oof_blend >= 0.5),
        "per_kind_blend_cv_per_sign": per_kind(cases, oof_blend_sign >= 0.5),
        "per_kind_llm_cv_per_sign": per_kind(cases, oof_llm_sign),
    }
    if sources is not None:
        src = np.asarray(sources)
        figures["by_source"] = {name: {
            "n": int((src == name).sum()),
            "llm_cv_threshold_per_sign": float((oof_llm_sign == labels)[src == name].mean()),
            "blend_cv_per_sign": float(((oof_blend_sign >= 0.5) == labels)[src == name].mean()),
            "pitfall_present_blend_cv_per_sign": float(((oof_blend_sign >= 0.5) == labels)[
                (src == name) & pitfall & labels].mean()) if ((src == name) & pitfall & labels).any() else None,
        } for name in dict.fromkeys(sources)}
    calibration = {"threshold": thresholds["positive"], "blend": blends["positive"],
                   "threshold_pitfall": thresholds["pitfall"], "blend_pitfall": blends["pitfall"]}
    return calibration, figures


def write_calibration(record: dict[str, Any]) -> None:
    """The frozen calibration the judge loads (``yesno.load_calibration``): thresholds, blends, provenance."""
    write_json_atomic(CALIBRATION, record)


def recorded_accuracies(runs: Sequence[tuple[str, dict]]) -> dict[str, Any]:
    """judge_accuracy.json's content from held-out results files ``(name, content)``: per judge
    fingerprint, its newest measurement.

    >>> a = {"date": "1", "cases": "x", "n": 9, "judges": [{"fingerprint": "f", "accuracy": 0.7}]}
    >>> b = {"date": "2", "cases": "y", "n": 5, "judges": [{"fingerprint": "f", "accuracy": 0.8}, {"fingerprint": None}]}
    >>> [(j["accuracy"], j["source"]) for j in recorded_accuracies([("a.json", a), ("b.json", b)])["judges"]]
    [(0.8, 'benchmarks/results/b.json')]
    """
    best: dict[str, dict] = {}
    for name, run in runs:
        for row in run.get("judges", []):
            fp = row.get("fingerprint")
            if fp and (fp not in best or run["date"] > best[fp]["date"]):
                best[fp] = {"fingerprint": fp, "accuracy": row["accuracy"], "cases": run["cases"], "n": run["n"],
                            "date": run["date"], "source": f"benchmarks/results/{name}"}
    return {"source": "benchmarks/judge_eval.py record", "judges": list(best.values())}


def write_recorded(payload: dict[str, Any]) -> None:
    """The accuracies reports print beside a judge (``evaluation.recorded_accuracy`` reads them)."""
    write_json_atomic(ev.RECORDED, payload)
