"""``edgemed export``: options → ExportConfig → ``stage.run`` → a summary table.

    edgemed export --model default --target cpu-x86-64 --out exports/smol
    edgemed export --model runs/grpo/merged --formats gguf:q4_k_m,onnx:int8 --out exports/grpo
"""

from __future__ import annotations

import click

from edgemed.export.config import ExportConfig


@click.command(name="export", help="Build GGUF/ONNX artifacts with parity checks and a manifest.")
@click.option("--model", default="default", show_default=True,
              help="Merged model folder, hub id, or 'default' (shipped SmolLM2-135M-Instruct).")
@click.option("--target", default="cpu-x86-64", show_default=True,
              help="Target profile: a name under edgemed/configs/targets/ or a .toml path.")
@click.option("--out", required=True, help="Output folder for artifacts and manifest.json.")
@click.option("--formats", default=None, help="Override the profile's builds, e.g. gguf:q4_k_m,onnx:int8.")
@click.option("--allow-degraded", is_flag=True, help="Exit 0 even if an artifact fails parity.")
@click.option("--force", is_flag=True, help="Rebuild artifacts even when their inputs are unchanged.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 256),
              help="CPU threads for quantizing and parity runs.")
@click.option("--n-prompts", default=8, show_default=True, type=click.IntRange(1, 8),
              help="Heart prompts used for parity.")
@click.option("--tf-tokens", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="Teacher-forced tokens per prompt (top-1 agreement, KL).")
@click.option("--greedy-tokens", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="Greedy tokens per prompt compared with PyTorch.")
def command(model, target, out, formats, allow_degraded, force, threads, n_prompts, tf_tokens,
            greedy_tokens):
    from edgemed.export import stage

    config = ExportConfig(model=model, out=out, target=target, formats=formats,
                          allow_degraded=allow_degraded, force=force, threads=threads,
                          n_prompts=n_prompts, tf_tokens=tf_tokens, greedy_tokens=greedy_tokens)
    try:
        manifest = stage.run(config)
    except stage.ParityFailed as e:
        _print_summary(e.manifest)
        raise
    _print_summary(manifest)


def _print_summary(manifest) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{manifest.path}  ({manifest.source.architecture}, "
                        f"{manifest.source.n_params / 1e6:.1f}M params)")
    for col in ("artifact", "status", "MB", "top-1", "KL", "greedy match", "tokenizer"):
        table.add_column(col, justify="left" if col in ("artifact", "status") else "right")
    for a in manifest.artifacts:
        p = a.parity
        table.add_row(a.name, a.status, f"{a.bytes / 1e6:.1f}",
                      *(("-",) * 4 if p is None else (f"{p.top1_agreement:.3f}", f"{p.kl_mean:.4f}",
                                                      f"{p.greedy_match_len_mean:.1f}",
                                                      "equal" if p.tokenizer_equal else "DIFFERS")))
    Console(stderr=True).print(table)
