"""Run a packaged pipeline for real (`edgemed run`) under /usr/bin/time -v and record what happened.

Writes benchmarks/results/<config>.json with wall_s, peak_rss_bytes (the largest single process of
the run, as GNU time reports it), per-stage wall times, training steps, the training and the
evaluation judge, and for base and trained the unclipped HealthBench score with its CI and the
paired difference with its CI and sign test (from the run's bench.json), plus machine and commit.
Budgets on 2 CPU cores: pipeline_default ≤ 15 min wall, pipeline_demo ≤ 2 h; ≤ 6 GiB peak RSS.

    python benchmarks/pipeline_run.py                          # pipeline_default, fresh run
    python benchmarks/pipeline_run.py --config pipeline_demo   # under 2 hours: did training help?
    python benchmarks/pipeline_run.py --make-run               # the README command itself, in this checkout
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)
BUDGET_WALL_S = {"pipeline_default": 15 * 60, "pipeline_demo": 120 * 60}
BUDGET_RSS = 6 * 2**30


def parse_time_v(text: str) -> dict:
    """Wall seconds and peak RSS bytes from GNU time -v output."""
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = sum(float(p) * 60**i for i, p in enumerate(reversed(wall.split(":"))))
    return {"wall_s": round(secs, 1), "peak_rss_bytes": rss}


TRAIN_KEYS = {"reward": "reward", "reward_std": "reward_std", "clipped_ratio": "completions/clipped_ratio",
              "mean_length": "completions/mean_length", "frac_reward_zero_std": "frac_reward_zero_std",
              "grad_norm": "grad_norm", "loss": "loss"}


def training_curve(run_dir: Path) -> dict:
    """Per-step reward, spread, clipping, length and gradient norm from the run's train_log.jsonl,
    plus the training judge's hit rates: the evidence for why training did or did not help."""
    log = run_dir / "train" / "train_log.jsonl"
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
    rows = [r for r in rows if "reward" in r]
    curve = {name: [r.get(key) for r in rows] for name, key in TRAIN_KEYS.items()}
    for kind in ("positive", "pitfall"):
        curve[f"train_judge_hit_rate_{kind}"] = [
            next((v for k, v in r.items() if k.endswith(f"/hit_rate/{kind}")), None) for r in rows]
    window = max(1, len(rows) // 4)

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return round(sum(xs) / len(xs), 4) if xs else None

    ends = {name: {"first": mean(v[:window]), "last": mean(v[-window:])} for name, v in curve.items()}
    return {"steps_logged": len(rows), "window": window, "first_vs_last": ends, **curve}


def record_unfinished(args, run_dir: Path) -> int:
    """Summarise a run that was stopped before its bench finished: what it did, and why it stopped."""
    state = json.loads((run_dir / "pipeline.json").read_text()) if (run_dir / "pipeline.json").is_file() else {}
    train = run_dir / "train" / "manifest.json"
    manifest = json.loads(train.read_text()) if train.is_file() else {}
    result = {**provenance(__file__), "completed": False, "reason": args.unfinished, "config": args.config,
              "stages_wall_s": {s: r["wall_s"] for s, r in (state.get("stages") or {}).items()},
              "steps": manifest.get("steps"), "reward_first": manifest.get("reward_first"),
              "reward_last": manifest.get("reward_last"), "training_curve": training_curve(run_dir),
              "load_average_now": os.getloadavg()}
    write_result(args.out or ROOT / "benchmarks" / "results" / f"{Path(args.config).stem}_unfinished.json", result)
    return 0


@contextlib.contextmanager
def judge_cache_aside(enabled: bool) -> Iterator[None]:
    """The user's verdict cache moved aside for the run and put back after it, whatever happens: the
    run starts with no cached grade and pays for every one (its own verdicts are dropped after).
    Every other cache (converted models, verification records, wheels) stays where it is, so the
    paths the run records are the user's own."""
    if not enabled:
        yield
        return
    from edgemed.io import cache_dir

    cache = cache_dir() / "judges"  # where the judges keep their verdict cache (judges.factory)
    aside = cache.with_name(f"judges.aside-{os.getpid()}")
    moved = cache.exists()
    if moved:
        cache.rename(aside)
        print(f"verdict cache moved aside to {aside} for the run (put back after it)", flush=True)
    try:
        yield
    finally:
        if cache.exists():
            shutil.rmtree(cache)
        if moved:
            aside.rename(cache)


def quality(run_dir: Path) -> dict:
    """Judges, steps, per-build unclipped scores and the base-vs-trained paired test of one run
    (bench.json through the kit's typed reader, which refuses a layout it does not know)."""
    from dataclasses import asdict

    from edgemed.bench.report.results import Metrics, read_bench

    train = json.loads((run_dir / "train" / "manifest.json").read_text()) if (run_dir / "train" / "manifest.json").is_file() else {}
    bench = read_bench(run_dir / "bench" / "bench.json")
    judge = bench.judge
    builds = {}
    for t in bench.targets:
        q = t.quality
        if q is None or q.metrics == Metrics():  # not graded, or graded before the metrics existed
            continue
        m = asdict(q.metrics)
        builds[t.label] = {**{k: m[k] for k in ("unclipped", "unclipped_ci_low", "unclipped_ci_high", "clipped",
                                                "hit_rate", "pitfall_rate", "mean_tokens", "truncation_rate",
                                                "judge_failures", "n_scored", "distinct_2", "repeated_sentences")},
                           "train_judge_hit_rate": q.train_judge and q.train_judge.hit_rate,
                           "train_judge_pitfall_rate": q.train_judge and q.train_judge.pitfall_rate,
                           # the paper's accuracy, judge-based and by its keyword heuristic (no judge)
                           "paper_accuracy": q.paper_accuracy, "paper_keyword_accuracy": q.keyword_accuracy}
    comparisons = [{"a": c.a, "b": c.b, **c.metrics} for c in bench.comparisons]
    rewards = train.get("rewards") or [{}]
    return {"steps": train.get("steps"),
            "judge_train": {"backend": ((rewards[0].get("judge") or {}).get("backend")),
                            "fingerprint": rewards[0].get("judge_fingerprint"),
                            "heldout_accuracy": rewards[0].get("judge_heldout_accuracy")},
            "judge_eval": {"name": judge and judge.name, "fingerprint": judge and judge.fingerprint,
                           "heldout_accuracy": judge and judge.heldout_accuracy,
                           "stats": judge and judge.stats},  # requested / cache_hits / calls: a cached run is no timing
            "n_prompts": bench.heart_subset and bench.heart_subset.n_used, "builds": builds,
            "comparisons": comparisons, "reward_first": train.get("reward_first"), "reward_last": train.get("reward_last")}


def llama_cpp_build(run_dir: Path) -> dict:
    """Which llama.cpp libraries the run used: the build this interpreter loads on this machine (the
    judge and the bench workers make the same choice, ``runtimes.llamacpp.select_variant``), and the
    ``runtime_build`` every timed GGUF row of the run's bench records."""
    probe = subprocess.run([sys.executable, "-c", "import json; from edgemed.runtimes.llamacpp import build_info; "
                            "print(json.dumps(build_info()))"], capture_output=True, text=True, cwd=ROOT)
    loaded = json.loads(probe.stdout) if probe.returncode == 0 and probe.stdout.strip() else None
    from edgemed.bench.layout import LATENCY, LLAMA_BENCH
    from edgemed.io import read_jsonl_tolerant

    latency = run_dir / "bench" / LATENCY
    timed = {r.get("runtime_build") for r in (read_jsonl_tolerant(latency) if latency.is_file() else [])
             if r.get("format") == "gguf" and r.get("harness") != LLAMA_BENCH}
    return {"loaded": loaded, "timed_gguf_runtime_builds": sorted(map(str, timed))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pipeline_default")
    ap.add_argument("--name", default="bench-pipeline")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--keep", action="store_true", help="Reuse an existing run folder (measures skipping).")
    ap.add_argument("--make-run", action="store_true",
                    help="Time `make run` in this checkout (the README's main job, runs/default) instead.")
    ap.add_argument("--out", default=None, help="Default: benchmarks/results/<config>.json.")
    ap.add_argument("--prior-wall-s", type=float, default=0.0,
                    help="With --keep: wall seconds an earlier, interrupted invocation of this run already spent; "
                         "added to wall_s (and listed) so a resumed run is not reported as faster than it was.")
    ap.add_argument("--prior-peak-rss-bytes", type=int, default=0,
                    help="With --keep: the peak RSS of the earlier, interrupted invocation; the record keeps the larger.")
    ap.add_argument("--judge-cache", choices=["fresh", "user"], default="fresh",
                    help="fresh: the user's verdict cache is moved aside for the run, so every grade is paid "
                         "for (a timing); user: the run may reuse cached verdicts (not a timing).")
    ap.add_argument("--note", default=None, help="What a reader of the record must know (e.g. why the run was resumed).")
    ap.add_argument("--unfinished", default=None, metavar="REASON",
                    help="Run nothing: record what the stopped run in --runs-dir/--name did (training curve, "
                         "stage times) and why it stopped, in <config>_unfinished.json, never in the full record.")
    args = ap.parse_args()
    if args.unfinished:
        return record_unfinished(args, Path(args.runs_dir) / args.name)
    args.out = args.out or str(ROOT / "benchmarks" / "results" / f"{Path(args.config).stem}.json")
    budget = BUDGET_WALL_S.get(Path(args.config).stem, BUDGET_WALL_S["pipeline_default"])
    if args.make_run:  # exactly what a newcomer types, from the repository root
        args.config, run_dir = "pipeline_default", ROOT / "runs" / "default"
        cmd = ["/usr/bin/time", "-v", "make", "run"]
        # `make run` depends on `make install`: run that first, untimed, so the figure is the run
        # after the install (an install pass, even one with nothing to do, prints pip's output).
        subprocess.run(["make", "install"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    else:
        run_dir = Path(args.runs_dir) / args.name
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "edgemed.cli", "run", "--config", args.config,
               "--name", args.name, "--runs-dir", args.runs_dir]
    if run_dir.exists() and not args.keep:
        shutil.rmtree(run_dir)
    prov = provenance(__file__)  # the load average as the run starts
    with judge_cache_aside(args.judge_cache == "fresh"):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode
    figures = parse_time_v(proc.stderr)
    printed = proc.stdout.splitlines() + proc.stderr.split("\tCommand being timed:")[0].splitlines()
    figures["terminal_lines"] = len(printed)  # what the user saw (non-TTY: no progress bars redrawn)
    (run_dir / "terminal.txt").write_text("\n".join(printed) + "\n", encoding="utf-8")
    state = json.loads((run_dir / "pipeline.json").read_text())
    if args.prior_wall_s:
        figures = {**figures, "wall_s": round(figures["wall_s"] + args.prior_wall_s, 1),
                   "invocations_wall_s": [args.prior_wall_s, figures["wall_s"]]}
    if args.prior_peak_rss_bytes:
        figures = {**figures, "peak_rss_bytes": max(figures["peak_rss_bytes"], args.prior_peak_rss_bytes),
                   "invocations_peak_rss_bytes": [args.prior_peak_rss_bytes, figures["peak_rss_bytes"]]}
    result = {**figures, "stages_wall_s": {s: r["wall_s"] for s, r in state["stages"].items()},
              "budget": {"wall_s": budget, "peak_rss_bytes": BUDGET_RSS},
              "within_budget": figures["wall_s"] <= budget and figures["peak_rss_bytes"] <= BUDGET_RSS,
              **quality(run_dir), "training_curve": training_curve(run_dir),
              "llama_cpp_build": llama_cpp_build(run_dir),
              "config": args.config, "command": " ".join(cmd[2:]), "judge_cache": args.judge_cache,
              **prov, **({"note": args.note} if args.note else {}),
              "load_average_at_end": os.getloadavg()}
    write_result(args.out, result)
    print(f"wall {figures['wall_s']:.0f} s (budget {budget}), peak RSS "
          f"{figures['peak_rss_bytes'] / 2**30:.2f} GiB (budget 6), stages {result['stages_wall_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
