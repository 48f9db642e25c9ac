"""``edgemed bench``: parse options, call ``edgemed.bench.stage.run``, print the headline table (or ``--json``)."""

from __future__ import annotations

import json

import click

from edgemed.bench.device.cli import COMMANDS as BUNDLE_COMMANDS


@click.group(name="bench", invoke_without_command=True,
             help="HealthBench-heart quality and latency for every artifact of one or more "
             "export manifests. Example: edgemed bench --manifest runs/smol/export/manifest.json "
             "--suite smoke --out runs/smol/bench. On a device without the training stack: "
             "`pack` here, `device` there, `grade` back here (docs/bench.md).")
@click.pass_context
@click.option("--manifest", "manifests", multiple=True,
              help="manifest.json (or its folder); repeat as base=DIR --manifest trained=DIR to compare.")
@click.option("--suite", default=None, help="Suite name (edgemed/configs/suites/NAME.yaml: smoke, pipeline, default) or path.")
@click.option("--out", default=None, help="Output folder (required; resumable: re-run the same command after a kill).")
@click.option("--artifact", "artifacts", multiple=True, help="Only these artifact names (torch-fp32 = the source model).")
@click.option("--reference", "references", multiple=True,
              help="Outside GGUF to bench too ('default': the shipped SmolLM2 Q4_1).")
@click.option("--threads", type=int, default=None, help="CPU threads for every runtime (default: physical cores).")
@click.option("--n-prompts", type=int, default=None, help="First n heart prompts.")
@click.option("--max-new-tokens", type=int, default=None, help="Answer length cap.")
@click.option("--n-prompt", type=int, default=None, help="Prefill test length (pp<n>).")
@click.option("--n-gen", type=int, default=None, help="Decode test length (tg<n>).")
@click.option("--repetitions", type=int, default=None, help="Timed repetitions per test.")
@click.option("--judge-backend", type=click.Choice(["auto", "proxy", "openai", "llamacpp"]), default=None,
              help="Who grades the answers: auto (local LLM judge if installed, else proxy), proxy, openai or llamacpp.")
@click.option("--judge-url", default=None, help="openai judge backend: API root ending in /v1.")
@click.option("--judge-model", default=None, help="Judge model id (openai) or GGUF path (llamacpp).")
@click.option("--no-quality", is_flag=True, help="Latency only.")
@click.option("--latency-reference", is_flag=True,
              help="Also time each GGUF with llama-bench (same llama.cpp source) to show the harness overhead.")
@click.option("--no-latency", is_flag=True, help="Quality only.")
@click.option("--include-failed", is_flag=True, help="Also bench artifacts whose parity failed.")
@click.option("--no-verify", is_flag=True,
              help="Bench builds whose size/sha256 no longer match their manifest (warn, don't refuse): for a "
                   "build you changed on purpose. Corrupt files are still refused.")
@click.option("--no-base", is_flag=True, help="Skip the PyTorch source-model row.")
@click.option("--cpu", is_flag=True, help="Force CPU for every runtime.")
@click.option("--in-process", is_flag=True, help="Run builds in this process (faster start; RSS not per build).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of the headline and table.")
def command(ctx, manifests, suite, out, artifacts, references, threads, n_prompts, max_new_tokens, n_prompt, n_gen,
            repetitions, judge_backend, judge_url, judge_model, no_quality, latency_reference, no_latency, include_failed,
            no_verify, no_base, cpu, in_process, as_json):
    if ctx.invoked_subcommand:  # pack / device / grade: their own options
        return
    if not out:
        raise click.UsageError("Missing option '--out'.", ctx)
    from edgemed.bench.config import load_config, options_to_raw
    from edgemed.bench.report.terminal import print_summary, summary
    from edgemed.bench.stage import run

    raw, quality, latency = options_to_raw(out, suite, manifests, artifacts, references, n_prompts=n_prompts,
                                           max_new_tokens=max_new_tokens, threads=threads, n_prompt=n_prompt,
                                           n_gen=n_gen, repetitions=repetitions, no_quality=no_quality,
                                           no_latency=no_latency)
    if latency_reference:
        latency["llama_bench"] = True
    judge = {k: v for k, v in {"backend": judge_backend, "base_url": judge_url, "model": judge_model}.items() if v}
    cfg = load_config(raw, quality=quality or None, latency=latency or None,
                      include_failed=include_failed or None, include_base=False if no_base else None,
                      verify=False if no_verify else None,
                      device="cpu" if cpu else None, isolate=False if in_process else None)
    if judge:
        cfg.judge = {**cfg.judge, **judge}
    report = run(cfg)
    if as_json:
        click.echo(json.dumps(summary(report, cfg.out), indent=2))
    else:
        print_summary(report)


for _sub in BUNDLE_COMMANDS:  # pack / device / grade
    command.add_command(_sub)
