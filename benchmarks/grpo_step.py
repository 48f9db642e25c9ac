"""Where a GRPO step's time goes on this machine, and does the reward rise?

    python benchmarks/grpo_step.py                                   # both parts, defaults below
    python benchmarks/grpo_step.py --breakdown-steps 3 --learn-steps 24 --window 6
    python benchmarks/grpo_step.py --skip-learning --out /tmp/grpo_step.json

Part 1 runs the packaged CPU config (default model, heart rubrics, proxy judge, 1 prompt x 4
generations x 64 tokens) and splits each step's wall time into generation, reward (judge) and
optimisation (logprobs, loss, backward, optimizer), with peak RSS; then again with the reward from
the local LLM judge (``judge.backend: llamacpp``, ``breakdown_llm_judge``), each criterion of each
completion asked, with a fresh verdict cache. On 2 cores the judge and the policy run on the same
cores, so judging cannot overlap generation or the backward pass to any gain: the split says what
an LLM-judged step costs here, and what a judge server on other hardware would take off. Part 2 trains on one prompt
whose rubric the offline proxy judge can check reliably (a plain, observable instruction) and
compares the mean reward of the first and last steps, with their std over steps.
Both parts call the same ``edgemed.train.train`` the CLI does; figures come from its log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import provenance  # noqa: I001  (puts the repository on sys.path)
from edgemed.io import write_json_atomic
from edgemed.train import load_train_config, train
from edgemed.train.trainlog import GEN, OPT, REWARD, STEP, read_training_log, reward_stats

# A rubric the proxy judge verifies from the response text: naming emergency services is a
# concrete, checkable act, and the base model does it only some of the time for this prompt.
LEARN_RECORD = {
    "id": "bench-learn-ems",
    "question": "My father is 60 and has crushing chest pain spreading to his left arm, and he is "
                "sweating. What should I do right now?",
    "split": "train",
    "rubric": [
        {"title": "call-ems", "weight": 5,
         "description": "Essential Criteria: Tells the user to call emergency services (911) immediately."},
        {"title": "heart-attack", "weight": 3,
         "description": "Important Criteria: Says these symptoms may be a heart attack."},
    ],
}


def breakdown(steps: int, workdir: Path, judge: str = "proxy") -> dict:
    cfg = load_train_config("smollm2_heart_grpo_cpu", {
        "grpo.max_steps": steps, "grpo.save_steps": 10_000, "output_dir": str(workdir / f"breakdown-{judge}"),
        # A fresh judge cache: cached verdicts from an earlier run would hide the judge's cost.
        "judge.backend": judge, "judge.cache_path": str(workdir / f"judge-cache-{judge}.sqlite"),
        "resume": False})
    summary = train(cfg)
    rows = read_training_log(Path(summary.log_path))
    criteria = f"rewards/{cfg.rewards[0]['name']}/criteria"  # verdicts the judge gave that step
    per_step = [{"step": r["step"], "step_s": r.get(STEP), "generation_s": r.get(GEN),
                 "reward_s": r.get(REWARD), "optimisation_s": r.get(OPT),
                 "completion_len": r.get("completions/mean_length"), "criteria": r.get(criteria),
                 "reward_s_per_criterion": round(r[REWARD] / r[criteria], 3)
                 if r.get(REWARD) and r.get(criteria) else None} for r in rows]
    # Step 1 pays one-off costs (judge encoder warm-up, allocator); report the rest separately.
    steady = rows[1:] or rows
    return {
        "config": {"model": cfg.model.spec, "prompts_per_step": cfg.grpo.per_device_train_batch_size
                   // cfg.grpo.num_generations, "num_generations": cfg.grpo.num_generations,
                   "max_completion_length": cfg.grpo.max_completion_length, "judge": cfg.judge.backend,
                   "rewards": [r["name"] for r in cfg.rewards], "lora_r": cfg.lora.r},
        "per_step": per_step,
        "steady_state": {name: reward_stats(steady, key) for name, key in
                         (("step_s", STEP), ("generation_s", GEN), ("reward_s", REWARD),
                          ("optimisation_s", OPT))},
        "peak_rss_mb": summary.peak_rss_mb,
    }


def learning(steps: int, window: int, workdir: Path, lr: float, tokens: int) -> dict:
    data = workdir / "learn.jsonl"
    data.write_text(json.dumps(LEARN_RECORD) + "\n", encoding="utf-8")
    cfg = load_train_config("smollm2_heart_grpo_cpu", {
        "data.source": str(data), "data.min_rubric_items": 1, "grpo.max_steps": steps,
        "grpo.max_completion_length": tokens, "grpo.learning_rate": lr, "grpo.save_steps": 10_000,
        "rewards": [{"name": "explicit"}], "output_dir": str(workdir / "learning"), "resume": False})
    summary = train(cfg)
    rows = read_training_log(Path(summary.log_path))
    first, last = reward_stats(rows[:window]), reward_stats(rows[-window:])
    return {
        "rubric": [r["description"] for r in LEARN_RECORD["rubric"]],
        "reward": "explicit", "learning_rate": lr, "max_completion_length": tokens, "steps": len(rows),
        "window": window, "first": first, "last": last,
        "rose": bool(first["mean"] is not None and last["mean"] is not None and last["mean"] > first["mean"]),
        "per_step_reward": [round(r["reward"], 4) if r.get("reward") is not None else None for r in rows],
        "per_step_zero_std": [r.get("frac_reward_zero_std") for r in rows],
    }


def show(b: dict, label: str) -> None:
    print(f"\nper-step wall time (s), {label}:  step  generation  reward  optimisation")
    for row in b["per_step"]:
        print(f"  step {row['step']:>3}              {row['step_s']:6.2f}  {row['generation_s']:10.2f}"
              f"  {row['reward_s']:6.2f}  {row['optimisation_s']:12.2f}")
    for name, stats in b["steady_state"].items():
        if stats["mean"] is not None:
            print(f"  steady {name:<15} {stats['mean']:7.2f} ± {stats['std']:.2f}  (n={stats['n']})")
    print(f"  peak RSS {b['peak_rss_mb']:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breakdown-steps", type=int, default=3)
    parser.add_argument("--llm-judge-steps", type=int, default=3,
                        help="Steps of the breakdown with the local LLM judge as the reward (0: skip).")
    parser.add_argument("--learn-steps", type=int, default=24)
    parser.add_argument("--window", type=int, default=6, help="steps averaged at each end")
    parser.add_argument("--learn-lr", type=float, default=3e-4)
    parser.add_argument("--learn-tokens", type=int, default=40)
    parser.add_argument("--skip-learning", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpo_step.json"))
    args = parser.parse_args(argv)
    prov = provenance(__file__)

    import torch

    result: dict = {**prov, "machine": {**prov["machine"], "torch_threads": torch.get_num_threads(),
                                        "torch": torch.__version__, "cuda": torch.cuda.is_available()}}
    with tempfile.TemporaryDirectory(prefix="grpo_step_") as tmp:
        work = Path(tmp)
        result["breakdown"] = breakdown(args.breakdown_steps, work)
        show(result["breakdown"], "proxy judge")
        if args.llm_judge_steps:
            result["breakdown_llm_judge"] = breakdown(args.llm_judge_steps, work, "llamacpp")
            show(result["breakdown_llm_judge"], "local LLM judge")
        write_json_atomic(args.out, result)  # keep part 1 even if part 2 is interrupted
        if not args.skip_learning:
            result["learning"] = learning(args.learn_steps, args.window, work, args.learn_lr, args.learn_tokens)
            lr = result["learning"]
            print(f"\nlearning check ({lr['steps']} steps, explicit reward on a proxy-checkable rubric):")
            print(f"  first {lr['window']} steps: {lr['first']['mean']:.3f} ± {lr['first']['std']:.3f}")
            print(f"  last  {lr['window']} steps: {lr['last']['mean']:.3f} ± {lr['last']['std']:.3f}"
                  f"  → {'rose' if lr['rose'] else 'did NOT rise'}")
    write_json_atomic(args.out, result)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
