"""``edgemed export``: options → ExportConfig → ``stage.run`` → a summary table (or ``--json``) on stdout.

    edgemed export --model default --profile cpu-x86-64 --out exports/smol
    edgemed export --model runs/grpo/merged --formats gguf:q4_k_m,onnx:int8 --out exports/grpo
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from edgemed.export.config import ExportConfig


@click.command(name="export", help="Build GGUF/ONNX artifacts with parity checks and a manifest.")
@click.option("--model", default=None,
              help="Merged model folder, hub id, or 'default' (shipped SmolLM2-135M-Instruct); with "
                   "--adapter, the base (default: the base the adapter was trained on).  [default: default]")
@click.option("--adapter", default=None,
              help="LoRA adapter folder (edgemed train's adapter/): also write it as a GGUF LoRA on top of "
                   "each base GGUF (gguf-lora-QUANT: base + adapter + Modelfile), so the device keeps one "
                   "base for many adapters; parity against the merged model.")
@click.option("--profile", default="cpu-x86-64", show_default=True,
              help="Device profile (a name under edgemed/configs/devices/ or a .toml path): the builds, "
                   "runtime hints and parity bounds for that class of device.")
@click.option("--out", required=True, help="Output folder for artifacts and manifest.json.")
@click.option("--formats", default=None,
              help="Override the profile's builds, e.g. gguf:q4_k_m,onnx-genai:int4. Formats: gguf "
                   "(f16 q8_0 q5_k_m q4_k_m q4_0 q3_k_m q2_k), onnx (optimum; any exportable model: fp32 "
                   "int8 int4), onnx-genai (onnxruntime-genai's builder, its decoder families, fastest: "
                   "fp32 int8 int4), gguf-lora (a base GGUF + --adapter as a GGUF LoRA; the gguf quants).")
@click.option("--imatrix", type=click.Choice(["none", "heart"]), default="none", show_default=True,
              help="Calibrate GGUF k-quants and low-bit types with a llama-imatrix importance matrix "
                   "from heart text (packaged rubric Q&A, never the parity prompts).")
@click.option("--allow-degraded", is_flag=True, help="Exit 0 even if an artifact fails parity.")
@click.option("--force", is_flag=True, help="Rebuild artifacts even when their inputs are unchanged.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 256),
              help="CPU threads for quantizing and parity runs.")
@click.option("--n-prompts", default=8, show_default=True, type=click.IntRange(1, 8),
              help="Heart prompts used for parity.")
@click.option("--tf-tokens", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="Teacher-forced tokens per prompt (top-1 agreement, KL).")
@click.option("--heldout-docs", default=None, type=click.IntRange(1, None),
              help="Held-out heart documents the gated fidelity statistics read (default: all, about "
                   "6,100 positions); fewer for quick checks, with wider intervals.")
@click.option("--greedy-tokens", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="Greedy tokens per prompt compared with PyTorch.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object (for scripts) instead of a table.")
def command(model, adapter, profile, out, formats, imatrix, allow_degraded, force, threads, n_prompts, tf_tokens,
            heldout_docs, greedy_tokens, as_json):
    from edgemed.export import stage

    if model is None:
        from edgemed.export.lora import adapter_base_spec

        model = adapter_base_spec(adapter) if adapter else "default"
    config = ExportConfig(model=model, adapter=adapter, out=out, profile=profile, formats=formats, imatrix=imatrix,
                          allow_degraded=allow_degraded, force=force, threads=threads,
                          n_prompts=n_prompts, tf_tokens=tf_tokens, heldout_docs=heldout_docs,
                          greedy_tokens=greedy_tokens)
    try:
        manifest = stage.run(config)
    except stage.ParityFailed as e:
        print_summary(e.manifest, as_json)
        raise
    print_summary(manifest, as_json)


def summary(manifest) -> dict:
    """The figures the table shows, as plain data: one row per artifact."""
    rows = []
    for a in manifest.artifacts:
        p = a.parity
        rows.append({"artifact": a.name, "status": a.status, "bytes": a.bytes, "path": str(a.abspath),
                     "top1_agreement": None if p is None else p.top1_agreement,
                     "kl_mean": None if p is None else p.kl_mean,
                     "greedy_match_len_mean": None if p is None else p.greedy_match_len_mean,
                     "tokenizer_equal": None if p is None else p.tokenizer_equal,
                     "heldout": None if p is None or p.heldout is None else asdict(p.heldout),
                     "gates": None if p is None else p.gates,
                     "quant_note": a.quant_note})
    return {"manifest": str(manifest.path), "architecture": manifest.source.architecture,
            "n_params": manifest.source.n_params, "artifacts": rows}


def heldout_line(p) -> str:
    """llama.cpp's summary of one build's held-out figures and its gates (not the informational
    figures recorded beside them), as one line.

    >>> from edgemed.export.fidelity import Statistics
    >>> from edgemed.export.manifest import Parity
    >>> h = Statistics(4096, 0.0061, 0.0003, 0.0021, 0.064, 0.21, 0.9, -0.0021, 0.0004, -0.05, 0.0, 0.03,
    ...                0.02, 0.962, 0.003, 0.962, 0.956, 0.968)
    >>> heldout_line(Parity(True, 0.97, 0.005, 19.0, 8, {}, True, h, {"top1_agreement": {
    ...     "statistic": "top1", "bound": 0.95, "at_least": True, "low": 0.956, "high": 0.968, "verdict": "met"}}))
    '4096 positions; KLD 0.0061 ± 0.0003 (median 0.0021, 99% 0.0640, 99.9% 0.2100); mean Δp -0.210 %; same top p 96.20 %; top-1 0.962 [0.956, 0.968]; top1 ≥ 0.95 met'
    """
    h = p.heldout
    gates = ", ".join(f"{g['statistic']} {'≥' if g['at_least'] else '≤'} {g['bound']:g} {g['verdict']}"
                      for g in p.deciding_gates.values())
    return (f"{h.n_positions} positions; KLD {h.kld_mean:.4f} ± {h.kld_mean_se:.4f} (median {h.kld_median:.4f}, "
            f"99% {h.kld_p99:.4f}, 99.9% {h.kld_p999:.4f}); mean Δp {100 * h.dp_mean:.3f} %; same top p "
            f"{100 * h.same_top_p:.2f} %; top-1 {h.top1:.3f} [{h.top1_ci_low:.3f}, {h.top1_ci_high:.3f}]"
            + (f"; {gates}" if gates else ""))


def print_summary(manifest, as_json: bool = False) -> None:
    """The summary on stdout, like every stage's (logs and errors go to stderr)."""
    if as_json:
        click.echo(json.dumps(summary(manifest), indent=2))
        return
    from rich.table import Table

    from edgemed.console import rich_console

    table = Table(title=f"{manifest.path}  ({manifest.source.architecture}, "
                        f"{manifest.source.n_params / 1e6:.1f}M params)")
    for col in ("artifact", "status", "MB", "held-out top-1 [95% CI]", "held-out KLD", "top-1", "KL",
                "greedy match", "tokenizer"):
        table.add_column(col, justify="left" if col in ("artifact", "status") else "right")
    for a in manifest.artifacts:
        p = a.parity
        h = p and p.heldout
        table.add_row(a.name, a.status, f"{a.bytes / 1e6:.1f}",
                      *(("-",) * 2 if not h else (f"{h.top1:.3f} [{h.top1_ci_low:.3f}, {h.top1_ci_high:.3f}]",
                                                  f"{h.kld_mean:.4f} ± {h.kld_mean_se:.4f}")),
                      *(("-",) * 4 if p is None else (f"{p.top1_agreement:.3f}", f"{p.kl_mean:.4f}",
                                                      f"{p.greedy_match_len_mean:.1f}",
                                                      "equal" if p.tokenizer_equal else "DIFFERS")))
    console = rich_console()
    console.print(table)
    console.print("held-out = llama.cpp's KL-divergence statistics against fp32 on held-out heart text; "
                  "top-1 / KL / greedy match = the choosing prompts",
                  markup=False, highlight=False, soft_wrap=True)
    for a in manifest.artifacts:
        if a.parity is not None and a.parity.heldout is not None:
            console.print(f"held-out: {a.name}: {heldout_line(a.parity)}", markup=False, highlight=False,
                          soft_wrap=True)
    for a in manifest.artifacts:  # what a build really holds, when its quant's name says otherwise
        if a.quant_note:
            console.print(f"note: {a.name}: {a.quant_note}", markup=False, highlight=False, soft_wrap=True)
