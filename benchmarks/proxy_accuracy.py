"""Accuracy of the offline proxy judge on its own labelled cases — tune, cross-validated.

    python benchmarks/proxy_accuracy.py      # prints a table, writes benchmarks/results/proxy_accuracy.json

All 540 cases in edgemed/judges/proxy/assets/cases.jsonl are tuning data: the rules and features
were designed while reading them, so no figure here is held out. They are 5-fold cross-validated,
grouped by scenario (a training fold never holds a validation scenario or a validation response),
with the shipped recipe refitted on each training fold: they measure the calibration's
generalisation across scenarios written by the same authors, not the proxy on independent cases.
For that, see ``edgemed judge eval`` (docs/judges.md).

Rows: the proxy (shipped recipe: class-balanced logistic fit); the same features with an
unweighted fit (the v1 recipe, for the effect of class weighting); and a naive baseline,
met = max sentence cosine of the raw criterion ≥ t, t chosen on the training folds for the best
balanced accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _common import provenance, write_result  # noqa: I001  (puts the repository on sys.path)
from edgemed.data.schema import RubricItem
from edgemed.judges.proxy import PROXY_VERSION, ProxyJudge
from edgemed.judges.proxy.tuning import (FOLDS, case_features, confusion, cross_validated_met,
                                         cross_validated_naive, evaluate, load_cases, naive_cosine)

RESULTS = Path(__file__).parent / "results" / "proxy_accuracy.json"
EVALUATION = f"tune, cross-validated ({FOLDS} folds grouped by scenario)"
OTHER_SALTS = tuple(str(i) for i in range(1, 10))  # nine more fold assignments, for the spread


def spread(scores: list[dict]) -> dict:
    out = {}
    for key in ("accuracy", "balanced_accuracy", "recall_met"):
        v = np.array([s[key] for s in scores])
        out[key] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                    "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    return out


def grading_speed(judge: ProxyJudge, cases: list[dict]) -> float:
    """ms per criterion for ``judge.grade``, one call per response, starting from an empty memo."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cases:
        groups.setdefault((c["question"], c["response"]), []).append(c)
    judge.encoder._memo.clear()
    start = time.perf_counter()
    for (question, response), group in groups.items():
        judge.grade([{"role": "user", "content": question}, {"role": "assistant", "content": response}],
                    [RubricItem(c["criterion"], c["points"]) for c in group])
    return round(1000 * (time.perf_counter() - start) / len(cases), 1)


def table(name: str, r: dict) -> str:
    kinds = "  ".join(f"{k}={v['accuracy']:.2f}(n={v['n']})" for k, v in r["per_kind"].items())
    return (f"{name:<18} n={r['n']:<4} acc={r['accuracy']:.3f} bal_acc={r['balanced_accuracy']:.3f} "
            f"recall_met={r['recall_met']:.3f}  TP={r['tp']} FP={r['fp']} TN={r['tn']} FN={r['fn']}\n    {kinds}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=None, help="labelled JSONL (default: the proxy's tuning cases)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    prov = provenance(__file__)
    judge = ProxyJudge()
    cases = load_cases(args.cases)
    truth = [c["met"] for c in cases]
    start = time.perf_counter()
    x, absent = case_features(cases, judge.encoder)
    seconds = time.perf_counter() - start
    cosine = naive_cosine(cases, judge.encoder)
    grading_ms = grading_speed(judge, cases)

    proxy = cross_validated_met(x, absent, cases)
    unweighted = cross_validated_met(x, absent, cases, class_weight=None)
    results = {
        "proxy": evaluate(proxy >= 0.5, cases),
        "proxy_unweighted_fit": evaluate(unweighted >= 0.5, cases),
        "naive_max_cosine": evaluate(cross_validated_naive(cosine, cases), cases),
    }
    other = {
        "proxy": [confusion(cross_validated_met(x, absent, cases, salt=s) >= 0.5, truth) for s in OTHER_SALTS],
        "naive_max_cosine": [confusion(cross_validated_naive(cosine, cases, salt=s), truth) for s in OTHER_SALTS],
    }
    report = {
        "judge": "proxy (offline; a proxy, not an LLM judge)",
        "evaluation": EVALUATION,
        "note": ("All cases are tuning data (the former 'heldout' split was folded in): these figures are "
                 "not held out. Accuracy on independent cases: `edgemed judge eval` (docs/judges.md)."),
        "fingerprint": judge.fingerprint,
        "proxy_version": PROXY_VERSION,
        "cases": {"n": len(cases), "met": int(sum(truth)), "scenarios": len({c['id'].split('-')[0] for c in cases}),
                  "always_not_met_accuracy": round(1 - sum(truth) / len(cases), 4)},
        "results": results,
        # the same measurement over ten fold assignments (the one above and nine others): how much
        # a figure moves with the split alone
        "spread_over_10_fold_assignments": {
            name: spread([{k: results[name][k] for k in ("accuracy", "balanced_accuracy", "recall_met")}]
                         + other[name]) for name in other},
        # features of all cases in one length-sorted encoder pass (tooling), and ProxyJudge.grade
        # response by response as a trainer calls it; both from a cold memo
        "ms_per_criterion_features": round(1000 * seconds / len(cases), 1),
        "ms_per_criterion_grading": grading_ms,
        **prov,
    }
    print(f"{EVALUATION}; {len(cases)} cases, {report['cases']['met']} met")
    for name in results:
        print(table(name, results[name]))
    write_result(args.out, report)
    return report


if __name__ == "__main__":
    main()
