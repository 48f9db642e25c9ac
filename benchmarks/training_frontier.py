"""Every GRPO recipe tried on the embedded default, with its effect, length change and time, in one table.

Rebuilds benchmarks/results/training_frontier.json from what was recorded, never by hand:
- every committed version of benchmarks/results/pipeline_demo.json (the recorded demo runs; the
  recipe is the pipeline_demo.yaml of the commit the run was made at, read from git), and the
  working copy when it is newer than the last commit of it;
- the screens in benchmarks/results/training_screens.json (benchmarks/training_screen.py), including
  the ones stopped early, with the reason.
A recipe that did not help is a result: every row stays.

    python benchmarks/training_frontier.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)

RESULTS = ROOT / "benchmarks" / "results"
DEMO = "benchmarks/results/pipeline_demo.json"
CONFIG = "edgemed/configs/pipeline_demo.yaml"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def demo_versions() -> list[tuple[str, dict]]:
    """(commit that recorded it, record) for every committed version of the demo record, oldest first."""
    out = []
    for commit in reversed(git("log", "--format=%H", "--", DEMO).split()):
        try:
            out.append((commit, json.loads(git("show", f"{commit}:{DEMO}"))))
        except (subprocess.CalledProcessError, ValueError):
            continue
    working = RESULTS / "pipeline_demo.json"
    if working.is_file():
        record = json.loads(working.read_text())
        if not out or record != out[-1][1]:
            out.append(("working copy", record))
    return out


def recipe_of(run_commit: str) -> dict:
    """The demo config's training overrides at the commit the run was made at."""
    try:
        cfg = yaml.safe_load(git("show", f"{run_commit}:{CONFIG}"))
    except subprocess.CalledProcessError:
        return {}
    return {"train_config": cfg.get("train_config"), **(cfg.get("train") or {})}


def demo_row(recorded_at: str, r: dict) -> dict:
    c = (r.get("comparisons") or [{}])[0]
    u, tok, pit = c.get("unclipped_score") or {}, c.get("answer_tokens") or {}, c.get("pitfall_rate") or {}
    lc, ind = c.get("length_controlled") or {}, c.get("independent") or {}
    run_commit = r.get("commit") or ""
    return {"name": f"demo@{run_commit[:7]}", "kind": "recorded run (benchmarks/pipeline_run.py)",
            "recorded_at": recorded_at, "run_commit": run_commit, "recipe": recipe_of(run_commit) if run_commit else {},
            "reward_judge": (r.get("judge_train") or {}).get("fingerprint"), "steps": r.get("steps"),
            "wall_s": r.get("wall_s"), "train_s": (r.get("stages_wall_s") or {}).get("train"),
            "eval_set": f"{u.get('n')} held-out heart prompts", "eval_judge": (r.get("judge_eval") or {}).get("fingerprint"),
            "score": {k: u.get(k) for k in ("diff", "ci_low", "ci_high")},
            "length_controlled": {k: lc.get(k) for k in ("diff", "ci_low", "ci_high")} if lc else None,
            "pitfall_rate": {k: pit.get(k) for k in ("diff", "ci_low", "ci_high")} if pit else None,
            "answer_tokens": tok.get("diff"), "independent": ind or None,
            "reward_first_last": [(r.get("reward_first") or {}).get("mean"), (r.get("reward_last") or {}).get("mean")],
            "machine": r.get("machine")}


def screen_row(s: dict) -> dict:
    def part(x):
        return {k: x.get(k) for k in ("diff", "ci_low", "ci_high")} if x else None

    return {"name": s["name"], "kind": "screen (benchmarks/training_screen.py)" + (" — stopped" if s.get("stopped") else ""),
            "recorded_at": s.get("commit"), "recipe": {"train_config": s.get("config"), "overrides": s.get("overrides")},
            "steps": s.get("steps"), "wall_s": (s.get("train_s") or 0) + (s.get("eval_s") or 0), "train_s": s.get("train_s"),
            "eval_set": s.get("screening_set"), "score": part(s.get("score")),
            "length_controlled": part(s.get("length_controlled")), "pitfall_rate": part(s.get("pitfall_rate")),
            "answer_tokens": (s.get("answer_tokens") or {}).get("diff"), "stopped": s.get("stopped"),
            "training_curve": s.get("training_curve"), "machine": s.get("machine")}


def main() -> int:
    rows = [demo_row(commit, r) for commit, r in demo_versions()]
    screens = RESULTS / "training_screens.json"
    if screens.is_file():
        rows += [screen_row(s) for s in json.loads(screens.read_text())["screens"]]
    out = RESULTS / "training_frontier.json"
    prov = provenance(__file__)
    for row in rows:
        s = row["score"] or {}
        print(f"{row['name']:<28} steps {row['steps']!s:>4}  score {s.get('diff')!s:.6} "
              f"[{s.get('ci_low')!s:.6}, {s.get('ci_high')!s:.6}]  tokens {row['answer_tokens']!s:.5}")
    write_result(out, {**prov, "recipes": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
