"""Judge throughput: graded criteria per second against a local llama_cpp.server.

    python benchmarks/judge_throughput.py                      # SmolLM2 judge, 4 heart records
    python benchmarks/judge_throughput.py --model judge.gguf --records 8 --concurrency 8

Passes over the same (HealthBench-heart prompt, response, criterion) jobs:
1. sequential  — one request at a time, empty cache;
2. concurrent  — ``--concurrency`` requests in flight, a fresh empty cache;
   (1 and 2 alternate ``--repeats`` times, so drift in machine load hits both alike)
3. cache re-run — the last pass again, every verdict from the sqlite cache.
Prints criteria/s and the ratios; writes benchmarks/results/judge_throughput.json.
llama_cpp.server decodes one request at a time (it has no parallel slots), so pass 2 only
overlaps HTTP, prompt formatting and grammar setup with decoding; a batching server (vLLM,
llama-server -np N) is where client concurrency pays off.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from _common import provenance  # noqa: I001  (puts the repository on sys.path)
from edgemed.data.healthbench import load_healthbench
from edgemed.data.heart import heart_subset
from edgemed.io import write_json_atomic
from edgemed.judges import build_judge, grade_batch
from edgemed.judges.local_server import LocalJudgeServer
from edgemed.models import default_gguf_path

RESULTS = Path(__file__).parent / "results" / "judge_throughput.json"
# One fixed answer for every prompt: throughput depends on lengths, not on answer quality.
RESPONSE = ("Chest pain with shortness of breath, sweating or pain spreading to the arm or jaw can be "
            "a heart attack: call emergency services now and do not drive yourself. If it is mild "
            "and brief, still see a doctor soon for an ECG and blood tests, and keep a list of your "
            "medicines and blood pressure readings to bring along.")


def build_jobs(n_records: int, items_per_record: int) -> tuple[list, list[str]]:
    """(conversation, items) jobs from the first heart-subset records, and their prompt ids."""
    heart = heart_subset(load_healthbench())
    records = heart.records[:n_records]
    jobs = [(r.prompt + [{"role": "assistant", "content": RESPONSE}], r.rubrics[:items_per_record])
            for r in records]
    return jobs, [r.prompt_id for r in records]


def timed_pass(cfg: dict, jobs: list, concurrency: int) -> dict:
    """Grade all jobs once and report seconds, criteria/s and the judge's counters."""
    n = sum(len(items) for _, items in jobs)
    with build_judge(cfg) as judge:
        started = time.perf_counter()
        verdicts = grade_batch(judge, jobs, concurrency=concurrency)
        seconds = time.perf_counter() - started
        stats = judge.stats.as_dict()
    failed = sum(v.met is None for row in verdicts for v in row)
    return {"concurrency": concurrency, "criteria": n, "seconds": round(seconds, 3),
            "criteria_per_s": round(n / seconds, 3), "failures": failed, "stats": stats,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def summarise(passes: list[dict]) -> dict:
    """Pooled criteria/s over repeated passes (total criteria / total seconds), passes kept."""
    criteria = sum(p["criteria"] for p in passes)
    seconds = sum(p["seconds"] for p in passes)
    return {"concurrency": passes[0]["concurrency"], "criteria": criteria, "seconds": round(seconds, 3),
            "criteria_per_s": round(criteria / seconds, 3), "failures": sum(p["failures"] for p in passes),
            "stats": {"cache_hits": sum(p["stats"]["cache_hits"] for p in passes)},
            "passes": passes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="judge GGUF (default: the shipped SmolLM2-135M)")
    ap.add_argument("--records", type=int, default=3, help="heart records to grade")
    ap.add_argument("--items", type=int, default=2, help="criteria per record")
    ap.add_argument("--repeats", type=int, default=2, help="sequential/concurrent pairs")
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight in pass 2")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="server decode threads")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    prov = provenance(__file__)

    model = Path(args.model) if args.model else default_gguf_path()
    jobs, prompt_ids = build_jobs(args.records, args.items)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalJudgeServer(model, n_ctx=4096, n_threads=args.threads) as server:
        base = {"backend": "openai", "base_url": server.base_url, "max_tokens": args.max_tokens,
                "max_retries": 1, "retry_backoff_s": 0.2, "timeout_s": 300}
        # Warm-up outside the timings: the first request pays for loading pages and the grammar.
        timed_pass({**base, "cache_path": "off"}, jobs[:1], 1)
        runs: dict[str, list[dict]] = {"sequential": [], "concurrent": []}
        for rep in range(args.repeats):
            runs["sequential"].append(timed_pass(
                {**base, "cache_path": f"{tmp}/seq{rep}.sqlite", "concurrency": 1}, jobs, 1))
            last_cfg = {**base, "cache_path": f"{tmp}/conc{rep}.sqlite", "concurrency": args.concurrency}
            runs["concurrent"].append(timed_pass(last_cfg, jobs, args.concurrency))
        cached = timed_pass(last_cfg, jobs, args.concurrency)
    sequential, concurrent = (summarise(runs[name]) for name in ("sequential", "concurrent"))

    result = {
        **prov,
        "benchmark": "judge_throughput",
        "judge_model": model.name,
        "server": f"llama_cpp.server {version('llama_cpp_python')} (one decode slot)",
        "server_threads": args.threads,
        "template": "edgemed", "max_tokens": args.max_tokens,
        "prompt_ids": prompt_ids,
        "sequential": sequential, "concurrent": concurrent, "cache_rerun": cached,
        "ratios": {
            "concurrent_vs_sequential": round(concurrent["criteria_per_s"] / sequential["criteria_per_s"], 3),
            "cache_rerun_vs_sequential": round(cached["criteria_per_s"] / sequential["criteria_per_s"], 1),
        },
    }
    write_json_atomic(args.output, result)
    for name in ("sequential", "concurrent", "cache_rerun"):
        row = result[name]
        print(f"{name:>12}: {row['criteria']} criteria in {row['seconds']:.2f} s = "
              f"{row['criteria_per_s']:.2f} criteria/s (concurrency {row['concurrency']}, "
              f"{row['failures']} failed, {row['stats']['cache_hits']} cache hits)")
    print(f"concurrent / sequential = {result['ratios']['concurrent_vs_sequential']:.2f}x; "
          f"cache re-run / sequential = {result['ratios']['cache_rerun_vs_sequential']:.0f}x")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
