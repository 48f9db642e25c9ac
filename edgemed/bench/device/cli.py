"""``edgemed bench pack | device | grade``: benchmark on the device itself, without the training stack.

``pack`` (host, full kit) writes a bundle folder; ``device`` (on the device, ``pip install
'edgemed[device]'``) answers and times it; ``grade`` (host) grades the answers and writes the usual
reports, every device side by side. Only click and the shared options (``bench.options``, from
BenchConfig's fields) are imported here; each command imports its stage.
"""

from __future__ import annotations

import json

import click

from edgemed.bench.options import config_from_options, shared_options


@click.command(name="pack", help="Write a bench bundle for a device: the builds of export manifests (and "
               "references), their sha256, the prompts and the bench settings. Copy the folder to the device "
               "and run `edgemed bench device` there. Example: edgemed bench pack --manifest "
               "runs/smol/export --suite default --reference default --out bundle/")
@shared_options
@click.option("--out", required=True, help="Bundle folder to write (re-running keeps builds already copied).")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle's bundle.json (for scripts) instead of the summary.")
def pack_command(out, as_json, **options):
    # The bench settings travel in the bundle: the device runs with them (`bench device --threads`
    # can still override the threads there).
    from edgemed.bench.device.pack import pack

    cfg = config_from_options(out, options)
    data = pack(cfg)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"bundle {data['bundle_id']}: {len(data['builds'])} build(s), {data['prompts']['n']} prompt(s), "
               f"{data['bytes'] / 1e6:.1f} MB in {cfg.out}")
    for b in data["builds"]:
        click.echo(f"  {b['label']}  {b['format']} {b['quant']}  {b['bytes'] / 1e6:.1f} MB  sha256 {b['sha256']}")
    click.echo(f"copy it to the device, then: edgemed bench device {cfg.out} --out RESULTS/")


@click.command(name="device", help="On the device: check every sha256 of a bundle, then answer its prompts and "
               "run its latency tests for each build, with this machine's facts (CPU, cores, RAM, OS, "
               "accelerator). Resumable: re-run the same command after a kill. Needs only "
               "`pip install 'edgemed[device]'`. Example: edgemed bench device bundle/ --out results-pi5/")
@click.argument("bundle")
@click.option("--out", required=True, help="Results folder (bring it back to the host for `edgemed bench grade`).")
@click.option("--name", default=None, help="This device's name in reports (default: the host name); tells "
              "devices apart when several are graded together.")
@click.option("--threads", type=int, default=None, help="CPU threads per runtime (default: the bundle's setting, "
              "else this device's physical cores).")
@click.option("--build", "builds", multiple=True, help="Only these builds (labels as `pack` lists them), e.g. "
              "the GGUF ones on a device without onnxruntime.")
@click.option("--cpu", is_flag=True, help="Force CPU even where llama.cpp or onnxruntime could use a GPU.")
@click.option("--json", "as_json", is_flag=True, help="Print device.json (for scripts) instead of the summary.")
def device_command(bundle, out, name, threads, builds, cpu, as_json):
    from edgemed.bench.device.run import run_device

    info = run_device(bundle, out, name=name, threads=threads, only=list(builds) or None, cpu=cpu)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    m = info["machine"]
    click.echo(f"device {info['name']}: {m.get('board') or m['cpu_info']}, {m['cores_physical']} cores, "
               f"{info['threads']} thread(s); accelerator: {m.get('accelerator') or 'none'}")
    for label, b in info["builds"].items():
        rates = "  ".join(f"{k.removesuffix('_tok_s')} {b[k]:.1f} tok/s" for k in ("pp_tok_s", "tg_tok_s") if k in b)
        state = "" if b["done"] else "  (unfinished)"
        click.echo(f"  {label}: {b['answers']}/{b['answers_wanted']} answers  {rates}{state}")
    click.echo(f"bring {out} back to the host, then: edgemed bench grade {out} --out BENCH/")


@click.command(name="grade", help="On the host: grade the answers of one or more `edgemed bench device` results "
               "folders (one bundle, any number of devices) with the configured judge, and write bench.json, "
               "report.md and plots with every device side by side. Example: edgemed bench grade results-pi5/ "
               "results-orin/ --out runs/smol/bench-devices")
@click.argument("results", nargs=-1, required=True)
@click.option("--out", required=True, help="Report folder (resumable: grades already made are kept).")
@click.option("--judge-backend", type=click.Choice(["auto", "proxy", "openai", "llamacpp"]), default=None,
              help="Who grades (default: the bundle's suite setting): auto, proxy, openai or llamacpp.")
@click.option("--judge-url", default=None, help="openai judge backend: API root ending in /v1.")
@click.option("--judge-model", default=None, help="Judge model id (openai) or GGUF path (llamacpp).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of the headline and table.")
def grade_command(results, out, judge_backend, judge_url, judge_model, as_json):
    from edgemed.bench.device.grade import run_grade
    from edgemed.bench.report.terminal import print_summary, summary
    from edgemed.io import absolute

    judge = {k: v for k, v in {"backend": judge_backend, "base_url": judge_url, "model": judge_model}.items() if v}
    report = run_grade(list(results), out, judge=judge or None)
    if as_json:
        click.echo(json.dumps(summary(report, absolute(out)), indent=2))
    else:
        print_summary(report)


COMMANDS = (pack_command, device_command, grade_command)
