"""The GRPO training recipe, top to bottom: config → checks (rewards, judges, prompts) → model +
LoRA → GRPOTrainer → train (resuming) → adapter, log, plot, manifest.

    edgemed train --config smollm2_heart_grpo_cpu --max-steps 2 --output runs/smoke/train

Everything that can be wrong in a config (reward names, judge URL, eval leaks, unknown keys) is
checked before the model loads. Checkpoints are trl/transformers' own, so a killed run resumes
from its last ``checkpoint-*`` with optimizer, scheduler and RNG state.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed import console
from edgemed.io import write_json_atomic
from edgemed.locks import folder_lock
from edgemed.train.config import TrainConfig

log = logging.getLogger(__name__)

ADAPTER_DIR, LOG_FILE, PLOT_FILE, MANIFEST = "adapter", "train_log.jsonl", "train_log.png", "manifest.json"
ADAPTER_SOURCE = "edgemed_adapter.json"  # beside the adapter: which base it was trained on
TREND_WINDOW = 5  # steps averaged at each end of the run for the manifest's reward trend


@dataclass
class TrainSummary:
    """What a training run produced; also written as ``manifest.json``."""

    output_dir: str
    adapter_dir: str
    steps: int
    resumed_from: str | None
    base_model: dict[str, str]
    quantization: dict[str, Any]
    data: dict[str, Any]
    rewards: list[dict[str, Any]]
    reward_first: dict[str, Any]
    reward_last: dict[str, Any]
    timing_s: dict[str, float | None]
    peak_rss_mb: float | None
    wall_s: float
    log_path: str
    plot_path: str
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Any] = field(default_factory=dict)  # how many processes trained, on which backend

    def to_dict(self) -> dict[str, Any]:
        return {"stage": "train", **asdict(self)}


def train(config: TrainConfig) -> TrainSummary:
    """Run GRPO for ``config`` and return (and write) its summary.

    >>> from edgemed.train.config import load_train_config
    >>> cfg = load_train_config("smollm2_heart_grpo_cpu", {"grpo.max_steps": 2})
    >>> summary = train(cfg)  # doctest: +SKIP
    >>> Path(summary.adapter_dir, "adapter_config.json").is_file()  # doctest: +SKIP
    True
    """
    from edgemed.train.library_configs import plan_quantization
    from edgemed.train.trainlog import trend_line

    # A setting the machine cannot honour (model.require_4bit without bitsandbytes) fails before
    # the output folder, its lock or its log exist.
    quant = plan_quantization(config)
    # One writer per output folder (a second `edgemed train` there stops at once, exit 2). Under
    # `accelerate launch` every rank shares output_dir, so only the main rank holds the lock.
    lock = folder_lock(config.output_dir, hint="pick another --output") if console.is_main_rank() else nullcontext()
    with lock, console.stage("train", Path(config.output_dir) / console.LOGS_DIR) as stage:
        summary = _train(config, stage, quant)
        stage.done(f"{trend_line(summary.steps, summary.reward_first, summary.reward_last, summary.timing_s['step'])}"
                   f"; adapter {summary.adapter_dir}")
    return summary


def _train(config: TrainConfig, stage: console.Stage, quant) -> TrainSummary:
    from edgemed.models import load_tokenizer, model_fingerprint, resolve_model
    from edgemed.rewards import rubric_reward_func
    from edgemed.train.config import build_reward_configs
    from edgemed.train.prompts import build_training_prompts
    from edgemed.train.trainlog import StepProgress, TimedGRPOTrainer, TrainingLog, read_training_log
    from edgemed.train.library_configs import grpo_args, lora_config
    from edgemed.train.processes import allow_indexed_cpu_loads, process_record, replicas_in_sync

    started = time.perf_counter()
    out = Path(config.output_dir)

    # 1. Everything that needs no policy model: rewards (each builds its judge at once, so a bad
    #    judge setting fails here), prompts + eval-leak guard.
    reward_configs = build_reward_configs(config)
    prompts = build_training_prompts(config.data, config.seed)
    reward_funcs = [rubric_reward_func(rc) for rc in reward_configs]
    stage.start(f"GRPO on {config.model.spec}, {config.grpo.max_steps} steps over {len(prompts.rows)} prompts, "
                f"{'QLoRA (4-bit)' if quant.load_in_4bit else 'LoRA'} r={config.lora.r}, "
                f"rewards {', '.join(rc.label for rc in reward_configs)}")

    # 2. Model, tokenizer, LoRA and trl arguments. trl loads the model from the folder so that
    #    4-bit loading, device placement and peft wrapping follow its tested path.
    model_path = resolve_model(config.model.spec)
    base = {"spec": str(config.model.spec), "path": str(model_path),
            "fingerprint": model_fingerprint(model_path)}
    tokenizer = load_tokenizer(model_path)
    tokenizer.padding_side = "left"  # decoder-only generation pads on the left
    args = grpo_args(config, quant)
    args.reward_weights = [float(rc.weight) for rc in reward_configs]
    trainer_kwargs: dict[str, Any] = {}
    if quant.load_in_4bit:
        from edgemed.train.library_configs import bnb_config

        trainer_kwargs["quantization_config"] = bnb_config(config, quant.backend or "cuda")

    # 3. Trainer, resuming from the last checkpoint when one exists.
    training_log = TrainingLog(out / LOG_FILE)
    trainer = TimedGRPOTrainer(
        model=str(model_path), reward_funcs=reward_funcs, args=args, train_dataset=prompts.to_dataset(),
        processing_class=tokenizer, peft_config=lora_config(config), callbacks=[training_log, StepProgress()],
        **trainer_kwargs)
    layout = process_record(trainer.accelerator)
    if trainer.accelerator.is_main_process:
        log.info("training on %d process(es), backend %s", layout["processes"], layout["backend"])
    checkpoint = last_checkpoint(out) if config.resume else None
    if checkpoint:
        from edgemed.integrity import check_model_folder

        check_model_folder(checkpoint)  # damaged weights: one line naming the file, not a Trainer traceback
        allow_indexed_cpu_loads()  # multi-process CPU runs resume their optimizer onto "cpu:0"
        log.info("resuming from %s", checkpoint)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        for func in reward_funcs:
            func.close()

    # 4. Artifacts: adapter (+ tokenizer, so merge needs nothing else), plot, manifest.
    #    Under `accelerate launch` every process runs this recipe; only the main one writes files.
    layout["replicas_in_sync"] = replicas_in_sync(trainer.accelerator, trainer.model)
    adapter_dir = save_adapter(trainer, tokenizer, out / ADAPTER_DIR, base, quant.load_in_4bit)
    rows = read_training_log(out / LOG_FILE)
    plot_path = out / PLOT_FILE
    is_main = trainer.accelerator.is_main_process
    if rows and is_main:
        from edgemed.train.plots import plot_training_log

        plot_training_log(rows, plot_path, title=f"GRPO on {config.model.spec} ({out.name})")
    summary = summarise(config, out, adapter_dir, trainer.state.global_step, checkpoint, base, quant,
                        prompts, reward_configs, rows, time.perf_counter() - started, reward_funcs)
    summary.quantization["linear4bit_layers"] = count_4bit_layers(trainer.model)
    summary.processes = layout
    if is_main:
        write_json_atomic(out / MANIFEST, summary.to_dict())
    return summary


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder, or None.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "checkpoint-2").mkdir(); (d / "checkpoint-10").mkdir()
    >>> _ = (d / "checkpoint-10" / "trainer_state.json").write_text("{}")
    >>> _ = (d / "checkpoint-2" / "trainer_state.json").write_text("{}")
    >>> Path(last_checkpoint(d)).name
    'checkpoint-10'
    """
    if not output_dir.is_dir():
        return None
    # A folder without trainer_state.json was cut off mid-save: skip it rather than crash on resume.
    done = [p for p in output_dir.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def save_adapter(trainer, tokenizer, target: Path, base: dict[str, str], quantized: bool) -> Path:
    """Save the LoRA adapter + tokenizer to a temp folder, then swap it in (no half-written adapter).

    Every process calls ``save_model`` (ZeRO-3 gathers the weights collectively); the main one writes.
    """
    accelerator = trainer.accelerator
    tmp = target.with_name(f".{target.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    if not accelerator.is_main_process:
        return target
    tokenizer.save_pretrained(str(tmp))
    write_json_atomic(tmp / ADAPTER_SOURCE, {"base_model": base, "trained_in_4bit": quantized})
    if target.exists():
        old = target.with_name(f".{target.name}.old{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def count_4bit_layers(model) -> int:
    """How many bitsandbytes ``Linear4bit`` layers the trained model holds: the proof that QLoRA
    really ran 4-bit (0 for plain LoRA)."""
    import sys

    bnb_nn = sys.modules.get("bitsandbytes.nn")  # never imported: nothing can be 4-bit
    linear4bit = getattr(bnb_nn, "Linear4bit", None)
    return 0 if linear4bit is None else sum(isinstance(m, linear4bit) for m in model.modules())


def summarise(config, out, adapter_dir, steps, checkpoint, base, quant, prompts, reward_configs,
              rows, wall_s, reward_funcs=()) -> TrainSummary:
    from edgemed.train.trainlog import GEN, OPT, REWARD, STEP, reward_stats

    def mean_of(key: str) -> float | None:
        return reward_stats(rows, key)["mean"]

    return TrainSummary(
        output_dir=str(out), adapter_dir=str(adapter_dir), steps=steps, resumed_from=checkpoint,
        base_model=base, quantization={"load_in_4bit": quant.load_in_4bit, "reason": quant.reason,
                      "backend": quant.backend},
        data={"source": config.data.source, "split": config.data.split, "counts": prompts.counts,
              "eval_rule": prompts.eval_rule, "eval_subset_size": prompts.eval_subset_size,
              "prompt_ids": prompts.prompt_ids},
        rewards=[{**rc.to_dict(), **judge_record(fn)} for rc, fn in zip(reward_configs, reward_funcs)]
        if reward_funcs else [rc.to_dict() for rc in reward_configs],
        reward_first=reward_stats(rows[:TREND_WINDOW]), reward_last=reward_stats(rows[-TREND_WINDOW:]),
        timing_s={"step": mean_of(STEP), "generation": mean_of(GEN), "reward": mean_of(REWARD),
                  "optimisation": mean_of(OPT)},
        peak_rss_mb=max((r.get("memory/peak_rss_mb") or 0.0 for r in rows), default=None),
        wall_s=round(wall_s, 2), log_path=str(out / LOG_FILE), plot_path=str(out / PLOT_FILE),
        config=config.to_dict(), versions=_versions(),
    )


def judge_record(reward_func) -> dict:
    """Which judge produced this reward, and its measured held-out accuracy (None: never measured)."""
    from edgemed.judges.evaluation import recorded_accuracy

    fingerprint = getattr(getattr(reward_func, "judge", None), "fingerprint", None)
    return {"judge_fingerprint": fingerprint,
            "judge_heldout_accuracy": recorded_accuracy(fingerprint) if fingerprint else None}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    return {name: md.version(name) for name in ("torch", "transformers", "trl", "peft", "accelerate")}
