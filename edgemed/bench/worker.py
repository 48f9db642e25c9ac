"""One build's share of a bench run: load it once, answer the prompts, time it, exit.

The stage runs this as ``python -m edgemed.bench.worker JOB.json`` in a fresh process per build,
so the peak RSS it logs is that build's own (a llama.cpp row never carries torch's 300 MB) and
one runtime's thread pools never compete with another's. Everything it produces goes to the
out folder's JSONL logs; the job file only says what to do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgemed.bench.config import LatencyConfig, QualityConfig
from edgemed.bench.layout import PROMPTS
from edgemed.bench.targets import Target
from edgemed.data.schema import RubricRecord
from edgemed.io import read_jsonl_tolerant


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Generate the missing answers and run the missing latency tests of ``job["target"]``."""
    from edgemed.bench.latency import timing
    from edgemed.bench.quality import grading
    from edgemed.bench.runners import open_runner

    target = Target(**job["target"])
    out = Path(job["out"])
    qcfg = QualityConfig(**job["quality"]) if job.get("quality") else None
    lcfg = LatencyConfig(**job["latency"]) if job.get("latency") else None
    progress = job.get("progress", True)
    records = [RubricRecord.from_dict(r, path=str(out / PROMPTS), line=i + 1)
               for i, r in enumerate(read_jsonl_tolerant(out / PROMPTS))] if qcfg else []
    with open_runner(target, job["threads"], job["device"], lcfg.n_gpu_layers if lcfg else -1) as runner:
        generated = grading.generate_missing(runner, target, records, qcfg, out, progress) if qcfg else 0
        reference = None
        if lcfg and lcfg.llama_bench and target.format == "gguf" and runner.info.get("device") == "cpu":
            from edgemed.bench.latency import llama_bench

            reference = llama_bench.Sampler(target, lcfg, job["threads"])  # paired with each repetition
        rows = timing.run_latency(runner, target, lcfg, out, job["machine"], job["isolated"],
                                   progress, reference) if lcfg else []
        return {"target": target.label, "generated": generated, "latency_tests": [r["test"] for r in rows],
                "info": runner.info, "load_seconds": runner.load_seconds}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m edgemed.bench.worker JOB.json", file=sys.stderr)
        return 2
    from edgemed import console
    from edgemed.errors import EdgemedError

    console.setup()  # logs to stderr (the parent's stage log); bars to the terminal it handed down
    try:
        result = run_job(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    except EdgemedError as e:  # e.g. a model file damaged after the stage checked it: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
