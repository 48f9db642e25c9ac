"""``edgemed run``: the whole pipeline from one packaged or user YAML."""

from __future__ import annotations

import click

from edgemed.pipeline.config import STAGES, load_pipeline_config


@click.command(name="run", help="The whole pipeline: train → merge → export → bench.")
@click.option("--config", "config_name", default="pipeline_default", show_default=True,
              help="Packaged pipeline config name or YAML path.")
@click.option("--from", "from_stage", type=click.Choice(STAGES), default=None,
              help="Re-run this stage and every later one even if up to date.")
@click.option("--name", default=None, help="Run name (folder under runs/); overrides the config.")
@click.option("--runs-dir", default=None, help="Root folder for runs; overrides the config.")
def command(config_name: str, from_stage: str | None, name: str | None, runs_dir: str | None) -> None:
    from edgemed.pipeline.report import print_summary
    from edgemed.pipeline.runner import run_pipeline

    cfg = load_pipeline_config(config_name, name=name, runs_dir=runs_dir)
    result = run_pipeline(cfg, from_stage)
    print_summary(cfg, result)
