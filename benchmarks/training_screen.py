"""Screen a GRPO recipe cheaply before a recorded run, and keep every recipe tried.

One screen = `edgemed train` for a few steps with the recipe's overrides, then base vs trained
(greedy, the brief system prompt, torch + the LoRA adapter) on a **screening set** that neither the
training prompts nor the demo's evaluation contain, graded by the local LLM judge: the packaged
heart `validation` split plus the LAST `--screen-hb` records of the same seeded shuffle of
non-heart HealthBench records whose FIRST records `data.healthbench_mix` trains on (the script
refuses an overlap). Recipes are chosen on this set; the recorded demo reports on the held-out heart
set (HealthBench heart subset + packaged `test` split), which no screen reads.

Appends one row per screen to benchmarks/results/training_screens.json (benchmarks/training_frontier.py
folds them into the frontier table): overrides, steps, wall seconds (train, eval), reward first/last,
and on the screening set the paired unclipped-score difference with its CI, the length-controlled
difference, the pitfall-rate and length changes. A screen stopped early is recorded with
`--stopped REASON` (its training curve, no evaluation): a recipe that could not be afforded is a result.

    python benchmarks/training_screen.py --name llm-explicit --steps 12 \\
        --set judge.backend=llamacpp --set rewards='[{"name": "explicit_signed"}]'
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)

OUT = ROOT / "benchmarks" / "results" / "training_screens.json"
MAX_NEW_TOKENS = 128


def screening_records(seed: int, n_hb: int, mix: int):
    """The packaged validation split + the last ``n_hb`` non-heart HealthBench records of the mix's shuffle."""
    from edgemed.data.rar import load_rar_medicine
    from edgemed.train.config import DataSection
    from edgemed.train.prompts import eval_subset, healthbench_outside

    data = DataSection()
    records = [r for r in load_rar_medicine(data.source) if r.split == "validation"]
    outside = healthbench_outside(*eval_subset(data), seed)  # the order whose head the training mix takes
    taken = len(outside) if mix == -1 else mix
    if taken + n_hb > len(outside):
        raise SystemExit(f"screening set overlaps the training mix: {taken} + {n_hb} > {len(outside)} records")
    return records + outside[len(outside) - n_hb:]


def answers(adapter: Path | None, records, system: str | None) -> dict[str, dict]:
    import torch
    from edgemed.models import load_model
    from edgemed.models.chat import generate_answer, resolve_system_prompt, with_system

    torch.manual_seed(0)
    model, tok = load_model("default")
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    out = {}
    for r in records:
        msgs = with_system(r.prompt, resolve_system_prompt(system))
        text = generate_answer(model, tok, msgs, MAX_NEW_TOKENS)
        out[r.prompt_id] = {"response": text, "tokens": len(tok(text)["input_ids"])}
    return out


def grade(records, answered: dict[str, dict]) -> dict[str, dict]:
    from edgemed.bench.quality import healthbench, metrics as quality_metrics
    from edgemed.judges import build_judge

    judge = build_judge({"backend": "llamacpp"})
    try:
        out = {}
        for r in records:
            conv = r.prompt + [{"role": "assistant", "content": answered[r.prompt_id]["response"]}]
            met = [v.met for v in judge.grade(conv, r.rubrics)]
            e = quality_metrics.example_metrics(r.points, met, answered[r.prompt_id]["response"],
                                                answered[r.prompt_id]["tokens"], MAX_NEW_TOKENS)
            out[r.prompt_id] = {"score": healthbench.example_score(r.points, met), "tokens": e["tokens"],
                                "pitfall_rate": e["pitfall_rate"], "hit_rate": e["hit_rate"]}
        return out, judge.fingerprint
    finally:
        judge.close()


def stopped_row(args, train_dir: Path) -> dict:
    """A screen stopped before its evaluation: what its steps cost and did, from the training log."""
    log = train_dir / "train_log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    rows = [r for r in rows if "reward" in r]
    keys = {"reward": "reward", "mean_length": "completions/mean_length", "clipped_ratio": "completions/clipped_ratio",
            "generation_s": "timing/generation_s", "reward_s": "timing/reward_s", "step_s": "step_time"}
    return {"name": args.name, "config": args.config, "overrides": args.sets, "steps": len(rows), "stopped": args.stopped,
            "training_curve": {name: [r.get(key) for r in rows] for name, key in keys.items()}, **provenance(__file__)}


def record(row: dict) -> int:
    rows = json.loads(OUT.read_text())["screens"] if OUT.is_file() else []
    rows = [r for r in rows if r["name"] != row["name"]] + [row]
    write_result(OUT, {"script": "benchmarks/training_screen.py", "screens": rows})
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="Recipe name, the row's key in training_frontier.json.")
    ap.add_argument("--config", default="smollm2_heart_grpo_cpu", help="Training config the overrides apply to.")
    ap.add_argument("--steps", type=int, default=12, help="GRPO steps of the screen (the full run takes more).")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="Training override, as `edgemed train --set`.")
    ap.add_argument("--screen-hb", type=int, default=20, help="Non-heart HealthBench records in the screening set.")
    ap.add_argument("--mix", type=int, default=200, help="data.healthbench_mix the recipe trains with (overlap guard).")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "screen"), help="Where screens train and cache answers.")
    ap.add_argument("--stopped", metavar="REASON", default=None,
                    help="Run nothing: record the screen in --runs/--name that was stopped, with its training curve.")
    args = ap.parse_args()
    from edgemed.bench.quality.compare import length_controlled
    from edgemed.bench.quality.stats import paired_difference

    runs = Path(args.runs)
    if args.stopped:
        return record(stopped_row(args, runs / args.name / "train"))
    records = screening_records(42, args.screen_hb, args.mix)
    system = "brief"
    t0 = time.perf_counter()
    train_dir = runs / args.name / "train"
    cmd = [sys.executable, "-m", "edgemed.cli", "train", "--config", args.config, "--max-steps", str(args.steps),
           "--output", str(train_dir), "--set", f"data.system_prompt={system}"]
    for s in args.sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, cwd=ROOT)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    base_file = runs / "base_answers.json"
    base = json.loads(base_file.read_text()) if base_file.is_file() else None
    if base is None or set(base) != {r.prompt_id for r in records}:
        base = answers(None, records, system)
        base_file.parent.mkdir(parents=True, exist_ok=True)
        base_file.write_text(json.dumps(base))
    trained = answers(train_dir / "adapter", records, system)
    ga, fingerprint = grade(records, base)
    gb, _ = grade(records, trained)
    eval_s = time.perf_counter() - t1
    ids = [r.prompt_id for r in records]
    manifest = json.loads((train_dir / "manifest.json").read_text())
    pit = [p for p in ids if ga[p]["pitfall_rate"] is not None and gb[p]["pitfall_rate"] is not None]
    row = {"name": args.name, "config": args.config, "overrides": args.sets, "steps": args.steps, "train_s": round(train_s, 1),
           "eval_s": round(eval_s, 1), "reward_first": manifest.get("reward_first"),
           "reward_last": manifest.get("reward_last"),
           "screening_set": f"packaged validation split + last {args.screen_hb} of the seed-42 shuffle of "
                            f"non-heart HealthBench (mix takes the first {args.mix})",
           "n": len(ids), "judge": fingerprint,
           "score": paired_difference([ga[p]["score"] for p in ids], [gb[p]["score"] for p in ids]),
           "length_controlled": length_controlled(ga, gb),
           "pitfall_rate": paired_difference([ga[p]["pitfall_rate"] for p in pit], [gb[p]["pitfall_rate"] for p in pit])
           if pit else None,
           "answer_tokens": paired_difference([ga[p]["tokens"] for p in ids], [gb[p]["tokens"] for p in ids]),
           **provenance(__file__)}
    record(row)
    s, lc = row["score"], row["length_controlled"]
    print(f"{args.name}: score {s['diff']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}], at equal length "
          f"{lc['diff']:+.3f} [{lc['ci_low']:+.3f}, {lc['ci_high']:+.3f}], tokens {row['answer_tokens']['diff']:+.1f}, "
          f"train {train_s:.0f} s, eval {eval_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
