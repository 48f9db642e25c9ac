"""``edgemed train``: run the GRPO recipe from a config, or ``edgemed train merge`` an adapter.

    edgemed train --config smollm2_heart_grpo_cpu --max-steps 2 --output runs/smoke/train
    edgemed train --config path/to/my.yaml --set grpo.learning_rate=1e-5 --set judge.backend=openai
    edgemed train merge runs/smoke/train/adapter runs/smoke/merge --dtype float32
    accelerate launch --multi_gpu --num_processes 2 -m edgemed.cli train --config smollm2_heart_grpo_cpu \
        --set grpo.per_device_train_batch_size=2      # two processes (gloo on CPU); docs/scaling.md
"""

from __future__ import annotations

import json

import click
import yaml

from edgemed.errors import ConfigError


def parse_set(items: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, values read as YAML scalars (so 1e-5, true, [a, b] get their types).

    >>> parse_set(("grpo.learning_rate=1e-5", "lora.target_modules=[q_proj, v_proj]", "judge.cache_path=off"))
    {'grpo.learning_rate': '1e-5', 'lora.target_modules': ['q_proj', 'v_proj'], 'judge.cache_path': 'off'}
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. grpo.learning_rate=1e-5")
        parsed = yaml.safe_load(value) if value.strip() else None
        # YAML 1.1 reads off/on/yes/no as booleans; only true/false mean a boolean here.
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            parsed = value.strip()
        out[key.strip()] = parsed
    return out


@click.group(name="train", invoke_without_command=True,
             help="GRPO post-training with LoRA/QLoRA and rubric rewards (see docs/training.md). On several "
                  "processes: accelerate launch --multi_gpu --num_processes N -m edgemed.cli train ... "
                  "(docs/scaling.md).")
@click.option("-c", "--config", "config", metavar="NAME|PATH",
              help="Packaged config name (e.g. smollm2_heart_grpo_cpu) or a YAML path.")
@click.option("--max-steps", type=int, help="Override grpo.max_steps.")
@click.option("-o", "--output", "output", metavar="DIR", help="Override output_dir.")
@click.option("--seed", type=int, help="Override seed.")
@click.option("--no-resume", is_flag=True, help="Ignore existing checkpoints in the output folder.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config field by dotted key (repeatable), e.g. --set lora.r=8.")
@click.option("--check", is_flag=True, help="Validate the config, data and eval-leak guard, then stop.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of lines.")
@click.pass_context
def command(ctx, config, max_steps, output, seed, no_resume, sets, check, as_json):
    if ctx.invoked_subcommand is not None:
        return
    if not config:
        from edgemed.train.config import packaged_configs

        raise click.UsageError(f"--config is required (packaged: {', '.join(packaged_configs())})")
    from edgemed.train.config import load_train_config

    overrides = parse_set(sets)
    for key, value in (("grpo.max_steps", max_steps), ("output_dir", output), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    if no_resume:
        overrides["resume"] = False
    cfg = load_train_config(config, overrides)
    if check:
        from edgemed.train.prompts import build_training_prompts

        prompts = build_training_prompts(cfg.data, cfg.seed)
        checked = {"config": "ok", "training_prompts": len(prompts.rows), "counts": prompts.counts,
                   "eval_subset": prompts.eval_subset_size, "eval_rule": prompts.eval_rule}
        click.echo(json.dumps(checked, indent=2) if as_json else
                   f"config ok: {len(prompts.rows)} training prompts {prompts.counts}, "
                   f"eval subset {prompts.eval_subset_size} prompts ({prompts.eval_rule}) not leaked")
        return
    from edgemed.train.recipe import train

    summary = train(cfg)  # trl's per-step dicts go to the stage log (edgemed.console): stdout stays ours
    from edgemed.train.processes import is_main_rank

    if not is_main_rank():  # under `accelerate launch` every process trains; one reports
        return
    result = {"steps": summary.steps, "adapter": summary.adapter_dir, "reward_first": summary.reward_first,
              "reward_last": summary.reward_last, "timing_s": summary.timing_s,
              "manifest": f"{summary.output_dir}/manifest.json"}
    click.echo(json.dumps(result, indent=2) if as_json else summary_text(result))


def summary_text(result: dict) -> str:
    """The training summary as lines (``--json`` prints ``result`` itself).

    >>> print(summary_text({"steps": 2, "adapter": "r/adapter", "reward_first": {"mean": 0.25, "n": 2},
    ...                     "reward_last": {"mean": 0.5, "n": 2}, "timing_s": {"step": 3.0},
    ...                     "manifest": "r/manifest.json"}))
    trained 2 steps: reward 0.250 -> 0.500 (mean of the first and last 2 steps), 3.0 s per step
    adapter:  r/adapter
    manifest: r/manifest.json
    """
    from edgemed.train.trainlog import trend_line

    return (trend_line(result["steps"], result["reward_first"], result["reward_last"], result["timing_s"].get("step"))
            + f"\nadapter:  {result['adapter']}\nmanifest: {result['manifest']}")


@command.command(name="merge")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32",
              show_default=True, help="dtype of the merged weights (export converts from these).")
@click.option("--base", metavar="SPEC", help="Base model spec, if the adapter's own record is stale.")
def merge(adapter, out_dir, dtype, base):
    """Merge a LoRA ADAPTER (or a train output folder) into its base model, saved at OUT_DIR."""
    from edgemed.train.merge import merge_adapter

    click.echo(str(merge_adapter(adapter, out_dir, dtype=dtype, base=base)))
