"""Does the slim device install time builds as the full kit does? Both, interleaved, in one run.

    .venv/bin/python benchmarks/device_latency.py --manifest EXPORT_DIR [--rounds 3]

Packs a latency-only bundle (``edgemed bench pack``: the manifest's builds that passed parity and
the shipped Q4_1 GGUF), builds a fresh slim venv (tests/slim_venv.py: ``edgemed[device]`` only,
no torch), then alternates, ``--rounds`` times and in ABBA order so that a drifting machine load
hits both sides alike:

- full kit: ``.venv/bin/edgemed bench --manifest … --reference default --no-base --no-quality``;
- slim: ``<slim venv>/bin/edgemed bench device BUNDLE``.

Both run the same tests (pp/tg with the same threads and repetitions; the rows share their resume
key), each into a fresh folder. Per build and test: the median over rounds of each side's mean
tok/s, and slim / full (goal: within 5 %). Writes benchmarks/results/device_latency.json with every
run's rows, the machine's load average around each run, commit and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)

from tests import slim_venv  # noqa: E402

FULL_EDGEMED = Path(sys.executable).parent / "edgemed"


def run(cmd: list[str], env: dict[str, str]) -> float:
    """Run one bench command; returns its wall seconds (a failure stops the benchmark with its stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def rows(folder: Path) -> dict[tuple[str, str], dict]:
    """(resume key, test) → the latency row of a bench or device out folder."""
    from edgemed.bench.layout import LATENCY

    out = {}
    for line in (folder / LATENCY).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out[(r["key"], r["test"])] = r
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", action="append", default=[], help="Export manifest (or folder) whose builds "
                        "to time; repeatable. The shipped Q4_1 GGUF is always timed too.")
    parser.add_argument("--rounds", type=int, default=3, help="ABBA rounds; each runs both sides once.")
    parser.add_argument("--threads", type=int, default=1, help="Threads per runtime (1: least disturbed by a "
                        "neighbour on a shared machine).")
    parser.add_argument("--n-prompt", type=int, default=128, help="Prefill test length (pp<n>).")
    parser.add_argument("--n-gen", type=int, default=32, help="Decode test length (tg<n>).")
    parser.add_argument("--repetitions", type=int, default=5, help="Timed repetitions per test and run.")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "device_latency.json"),
                        help="Results JSON to write.")
    args = parser.parse_args()
    prov = provenance(__file__)

    settings = ["--suite", "smoke", "--threads", str(args.threads), "--n-prompt", str(args.n_prompt),
                "--n-gen", str(args.n_gen), "--repetitions", str(args.repetitions), "--no-quality"]
    manifests = [x for m in args.manifest for x in ("--manifest", str(Path(m).resolve()))]
    with tempfile.TemporaryDirectory(prefix="edgemed-device-latency-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "EDGEMED_HOME": os.environ.get("EDGEMED_HOME", str(tmp / "home")), "HF_HUB_OFFLINE": "1"}
        bundle = tmp / "bundle"
        run([str(FULL_EDGEMED), "bench", "pack", *manifests, *settings, "--out", str(bundle)], env)
        slim_py = slim_venv.create(tmp / "slim", tmp / "wheel")
        assert not slim_venv.importable(slim_py), "the slim venv must not hold the training stack"
        slim_edgemed = slim_py.parent / "edgemed"
        runs, parsed = [], []  # parsed[i]: (key, test) → row of runs[i]
        for i in range(args.rounds):
            order = ("full", "slim") if i % 2 == 0 else ("slim", "full")
            for side in order:
                out = tmp / f"{side}-{i}"
                cmd = ([str(FULL_EDGEMED), "bench", *manifests, "--reference", "default", "--no-base", *settings,
                        "--out", str(out)] if side == "full"
                       else [str(slim_edgemed), "bench", "device", str(bundle), "--out", str(out), "--name", "slim"])
                load_before = os.getloadavg()[0]
                seconds = run(cmd, env)
                parsed.append(rows(out))
                runs.append({"round": i, "side": side, "seconds": round(seconds, 1),
                             "loadavg_1min_before": load_before, "loadavg_1min_after": os.getloadavg()[0],
                             "rows": list(parsed[-1].values())})
                print(f"round {i} {side}: {seconds:.0f} s, load {load_before:.1f} → {os.getloadavg()[0]:.1f}")

    cases = []
    for key in sorted(parsed[0]):
        sides = {side: [p[key]["avg_ts"] for r, p in zip(runs, parsed) if r["side"] == side and key in p]
                 for side in ("full", "slim")}
        row = parsed[0][key]
        full, slim = statistics.median(sides["full"]), statistics.median(sides["slim"])
        per_round = [s / f for s, f in zip(sides["slim"], sides["full"])]
        cases.append({"build": row["target"], "test": key[1], "key": key[0], "full_tok_s": sides["full"],
                      "slim_tok_s": sides["slim"], "full_median": full, "slim_median": slim,
                      "ratio_slim_over_full": slim / full, "ratio_per_round": per_round,
                      "within_5_percent": abs(slim / full - 1) <= 0.05})
    result = {**prov,
              "settings": {"threads": args.threads, "n_prompt": args.n_prompt, "n_gen": args.n_gen,
                           "repetitions": args.repetitions, "rounds": args.rounds, "manifests": args.manifest},
              "goal": "slim / full within 5 % for every build and test",
              "goal_met": all(c["within_5_percent"] for c in cases),
              "max_abs_deviation": max(abs(c["ratio_slim_over_full"] - 1) for c in cases),
              "cases": cases, "runs": runs}
    write_result(args.out, result)
    for c in cases:
        print(f"{c['build']:<40} {c['test']:<6} full {c['full_median']:8.1f}  slim {c['slim_median']:8.1f} tok/s  "
              f"slim/full {c['ratio_slim_over_full']:.3f}")
    print(f"goal (within 5 %): {'met' if result['goal_met'] else 'NOT met'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
