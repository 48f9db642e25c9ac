"""Accuracy of the offline proxy judge on the labelled heart cases, against a naive baseline.

    python benchmarks/proxy_accuracy.py              # prints tables, writes benchmarks/results/proxy_accuracy.json

Naive baseline: met = max sentence cosine ≥ t, t tuned on the tune split. Proxy: the shipped
calibration (fitted on tune only), met = P ≥ 0.5. Held-out scenarios were fixed before tuning.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from edgemed.io import write_json_atomic
from edgemed.judges.proxy import PROXY_VERSION, ProxyJudge, case_features
from edgemed.judges.proxy_cases import SPLITS, load_cases
from edgemed.judges.proxy_eval import best_threshold, evaluate, naive_cosine

RESULTS = Path(__file__).parent / "results" / "proxy_accuracy.json"


def proxy_met(judge: ProxyJudge, cases: list[dict]) -> np.ndarray:
    x, absent = case_features(cases, judge.encoder)
    p = judge.calibration.probability(x)
    return np.where(absent, 1.0 - p, p)


def table(name: str, split: str, r: dict) -> str:
    kinds = "  ".join(f"{k}={v['accuracy']:.2f}(n={v['n']})" for k, v in r["per_kind"].items())
    return (f"{name:<10} {split:<8} n={r['n']:<4} acc={r['accuracy']:.3f}  "
            f"TP={r['tp']} FP={r['fp']} TN={r['tn']} FN={r['fn']}\n    {kinds}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    judge = ProxyJudge()
    cases = {s: load_cases(args.cases, split=s) for s in SPLITS}
    cosine = {s: naive_cosine(cases[s], judge.encoder) for s in SPLITS}
    t = best_threshold(cosine["tune"], [c["met"] for c in cases["tune"]])
    report = {"judge": "proxy (offline; a proxy, not an LLM judge)", "fingerprint": judge.fingerprint,
              "proxy_version": PROXY_VERSION, "naive_threshold": t, "results": {}}
    for split in SPLITS:
        start = time.perf_counter()
        met = proxy_met(judge, cases[split])
        seconds = time.perf_counter() - start
        report["results"][split] = {
            "naive_max_cosine": evaluate(cosine[split] >= t, cases[split]),
            "proxy": evaluate(met >= 0.5, cases[split]) | {"ms_per_criterion": round(1000 * seconds / len(met), 1)},
        }
    report["machine"] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
    for split in SPLITS:
        for name in ("naive_max_cosine", "proxy"):
            print(table(name.split("_")[0], split, report["results"][split][name]))
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
