"""``edgemed bench``: parse options, call ``edgemed.bench.stage.run``, print the headline table (or ``--json``)."""

from __future__ import annotations

import json

import click

from edgemed.bench.device.cli import COMMANDS as BUNDLE_COMMANDS
from edgemed.bench.options import config_from_options, shared_options


@click.group(name="bench", invoke_without_command=True,
             help="HealthBench-heart quality and latency for every artifact of one or more "
             "export manifests. Example: edgemed bench --manifest runs/smol/export/manifest.json "
             "--suite smoke --out runs/smol/bench. On a device without the training stack: "
             "`pack` here, `device` there, `grade` back here (docs/bench.md).")
@click.pass_context
@shared_options
@click.option("--out", default=None, help="Output folder (required; resumable: re-run the same command after a kill).")
@click.option("--judge-backend", type=click.Choice(["auto", "proxy", "openai", "llamacpp"]), default=None,
              help="Who grades the answers: auto (local LLM judge if installed, else proxy), proxy, openai or llamacpp.")
@click.option("--judge-url", default=None, help="openai judge backend: API root ending in /v1.")
@click.option("--judge-model", default=None, help="Judge model id (openai) or GGUF path (llamacpp).")
@click.option("--latency-reference", is_flag=True,
              help="Also time each GGUF with llama-bench (same llama.cpp source) to show the harness overhead.")
@click.option("--no-verify", is_flag=True,
              help="Bench builds whose size/sha256 no longer match their manifest (warn, don't refuse): for a "
                   "build you changed on purpose. Corrupt files are still refused.")
@click.option("--no-base", is_flag=True, help="Skip the PyTorch source-model row.")
@click.option("--cpu", is_flag=True, help="Force CPU for every runtime.")
@click.option("--in-process", is_flag=True, help="Run builds in this process (faster start; RSS not per build).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of the headline and table.")
def command(ctx, out, judge_backend, judge_url, judge_model, latency_reference, no_verify, no_base, cpu, in_process,
            as_json, **options):
    if ctx.invoked_subcommand:  # pack / device / grade: their own options
        return
    if not out:
        raise click.UsageError("Missing option '--out'.", ctx)
    from edgemed.bench.report.terminal import print_summary, summary
    from edgemed.bench.stage import run

    cfg = config_from_options(out, options, include_base=False if no_base else None,
                              verify=False if no_verify else None, device="cpu" if cpu else None,
                              isolate=False if in_process else None)
    if latency_reference:
        cfg.latency.llama_bench = True
    judge = {k: v for k, v in {"backend": judge_backend, "base_url": judge_url, "model": judge_model}.items() if v}
    if judge:
        cfg.judge = {**cfg.judge, **judge}
    report = run(cfg)
    if as_json:
        click.echo(json.dumps(summary(report, cfg.out), indent=2))
    else:
        print_summary(report)


for _sub in BUNDLE_COMMANDS:  # pack / device / grade
    command.add_command(_sub)
