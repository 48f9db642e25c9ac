"""``edgemed run``: the whole pipeline from one packaged or user YAML; a summary (or ``--json``) on stdout."""

from __future__ import annotations

import json

import click

from edgemed.pipeline.config import STAGES, load_pipeline_config


@click.command(name="run", help="The whole pipeline: train → merge → export → bench.")
@click.option("--config", "config_name", default="pipeline_default", show_default=True,
              help="Packaged pipeline config name or YAML path.")
@click.option("--from", "from_stage", type=click.Choice(STAGES), default=None,
              help="Re-run this stage and every later one even if up to date.")
@click.option("--name", default=None, help="Run name (folder under runs/); overrides the config.")
@click.option("--runs-dir", default=None, help="Root folder for runs; overrides the config.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of the tables.")
def command(config_name: str, from_stage: str | None, name: str | None, runs_dir: str | None,
            as_json: bool) -> None:
    from edgemed.pipeline.report import print_summary, raise_if_broken
    from edgemed.pipeline.runner import run_pipeline

    cfg = load_pipeline_config(config_name, name=name, runs_dir=runs_dir)
    result = run_pipeline(cfg, from_stage)
    if as_json:
        click.echo(json.dumps(summary(cfg, result), indent=2))
    else:
        print_summary(cfg, result)
    raise_if_broken(cfg, result)  # a stage file that cannot be read: named in the report and the exit code


def summary(cfg, result) -> dict:
    """What the run did and where its outputs are, as plain data."""
    from edgemed.pipeline.report import broken_inputs

    outputs = {"train": "train/manifest.json", "merge": "merge", "export": "export", "bench": "bench/bench.json"}
    return {"name": cfg.name, "config": cfg.source, "root": str(result.root), "ran": result.ran,
            "skipped": result.skipped, "wall_s": round(result.wall_s, 1),
            "report": None if result.report is None else str(result.report),
            "broken_inputs": broken_inputs(result.root),
            "outputs": {s: str(result.root / outputs[s]) for s in cfg.stages}}
