"""Time the README's main job: `edgemed run` (pipeline_default) under /usr/bin/time -v.

Writes benchmarks/results/pipeline_default.json with wall_s, peak_rss_bytes (the largest single
process of the run, as GNU time reports it), per-stage wall times, the machine and the commit.
Budget for the embedded default on 2 CPU cores: ≤ 15 min wall, ≤ 6 GiB peak RSS.

    python benchmarks/pipeline_run.py                       # a fresh run under runs/bench-pipeline
    python benchmarks/pipeline_run.py --config pipeline_default --name bench-pipeline --keep
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_WALL_S, BUDGET_RSS = 15 * 60, 6 * 2**30


def parse_time_v(text: str) -> dict:
    """Wall seconds and peak RSS bytes from GNU time -v output."""
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = sum(float(p) * 60**i for i, p in enumerate(reversed(wall.split(":"))))
    return {"wall_s": round(secs, 1), "peak_rss_bytes": rss}


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pipeline_default")
    ap.add_argument("--name", default="bench-pipeline")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--keep", action="store_true", help="Reuse an existing run folder (measures skipping).")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pipeline_default.json"))
    args = ap.parse_args()
    run_dir = Path(args.runs_dir) / args.name
    if run_dir.exists() and not args.keep:
        shutil.rmtree(run_dir)
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "edgemed.cli", "run", "--config", args.config,
           "--name", args.name, "--runs-dir", args.runs_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode
    figures = parse_time_v(proc.stderr)
    state = json.loads((run_dir / "pipeline.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {**figures, "stages_wall_s": {s: r["wall_s"] for s, r in state["stages"].items()},
              "budget": {"wall_s": BUDGET_WALL_S, "peak_rss_bytes": BUDGET_RSS},
              "within_budget": figures["wall_s"] <= BUDGET_WALL_S and figures["peak_rss_bytes"] <= BUDGET_RSS,
              "config": args.config, "machine": machine(), "commit": commit,
              "load_average_at_end": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wall {figures['wall_s']:.0f} s (budget {BUDGET_WALL_S}), peak RSS "
          f"{figures['peak_rss_bytes'] / 2**30:.2f} GiB (budget 6), stages {result['stages_wall_s']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
