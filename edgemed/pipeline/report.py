"""The run's closing report: training trend, export parity, bench tables and plots, one screen.

Everything is read back from the stages' own files (train/manifest.json, export manifests,
bench/bench.json), so the report can be rebuilt at any time and never disagrees with them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgemed.io import write_text_atomic
from edgemed.pipeline.config import PipelineConfig
from edgemed.pipeline.state import PipelineState


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def fmt(x: float | None, spec: str = ".3f") -> str:
    """``–`` for missing numbers.

    >>> fmt(None), fmt(0.12345), fmt(3.0, ".1f")
    ('–', '0.123', '3.0')
    """
    return "–" if x is None else format(x, spec)


def training_section(root: Path) -> list[str]:
    t = read_json(root / "train" / "manifest.json")
    if not t:
        return []
    first, last = t.get("reward_first") or {}, t.get("reward_last") or {}
    lines = ["## Training (GRPO + LoRA)", "",
             f"- base `{t['base_model']['spec']}`, {t['steps']} steps, rewards: "
             + ", ".join(f"{r.get('name')} (×{r.get('weight', 1)})" for r in t.get("rewards", [])),
             f"- reward, first steps: {fmt(first.get('mean'))} ± {fmt(first.get('std'))} "
             f"(n={first.get('n', '–')}); last steps: {fmt(last.get('mean'))} ± {fmt(last.get('std'))} "
             f"(n={last.get('n', '–')})",
             f"- wall {fmt(t.get('wall_s'), '.0f')} s, peak RSS {fmt(t.get('peak_rss_mb'), '.0f')} MiB"]
    plot = root / "train" / Path(t.get("plot_path") or "training.png").name
    if plot.is_file():
        lines += ["", f"![training]({plot.relative_to(root).as_posix()})"]
    return lines + [""]


def export_section(root: Path) -> list[str]:
    rows = []
    for label in ("base", "trained"):
        m = read_json(root / "export" / label / "manifest.json")
        for a in (m or {}).get("artifacts", []):
            p = a.get("parity") or {}
            rows.append(f"| {label} | {a['name']} | {a['bytes'] / 2**20:.0f} | {fmt(p.get('top1_agreement'))} | "
                        f"{fmt(p.get('kl_mean'), '.4f')} | {fmt(p.get('greedy_match_len_mean'), '.1f')} | {a['status']} |")
    if not rows:
        return []
    return ["## Export (parity against the PyTorch model it was built from)", "",
            "| model | build | MiB | top-1 agreement | KL mean | greedy match (tokens) | status |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def bench_section(root: Path) -> list[str]:
    bench_md = root / "bench" / "report.md"
    if not bench_md.is_file():
        return []
    text = bench_md.read_text(encoding="utf-8")
    # The headline lines under the bench heading are already at the top of this report: drop them.
    head, _, rest = text.partition("\n")
    if head.startswith("# ") and rest and not rest.startswith("\n"):
        rest = rest.partition("\n\n")[2]
        text = head + "\n\n" + rest
    # Demote the bench report's headings one level and point its images into bench/.
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
    text = re.sub(r"!\[([^\]]*)\]\(([^/)]+\.png)\)", r"![\1](bench/\2)", text)
    return [text]


def headline(root: Path) -> list[str]:
    """The bench's plain-words lines (did training help, the judge, warnings), or none before a bench.

    >>> import tempfile
    >>> headline(Path(tempfile.mkdtemp()))
    []
    """
    from edgemed.bench.headline import headline_lines

    bench = read_json(root / "bench" / "bench.json")
    return headline_lines(bench) if isinstance(bench, dict) else []


def write_report(cfg: PipelineConfig, state: PipelineState) -> Path:
    """runs/<name>/report.md; its first three lines answer "did training help?" and name the judge."""
    root = cfg.root
    stage_rows = [f"| {s} | {fmt(rec.get('wall_s'), '.0f')} | {rec.get('finished', '–')} |"
                  for s, rec in state.stages.items()]
    lines = [f"# edgemed run `{cfg.name}`", *headline(root), "",
             f"Base model `{cfg.model}`; stages {', '.join(cfg.stages)}. Quality is graded by the judge named "
             "above (bench `judge: auto`: the local LLM judge when installed, else the offline proxy; "
             "see docs/judges.md).", "",
             "| stage | wall s (last run) | finished |", "|---|---|---|", *stage_rows, ""]
    lines += training_section(root) + export_section(root) + bench_section(root)
    return write_text_atomic(root / "report.md", "\n".join(lines).rstrip() + "\n")


def print_summary(cfg: PipelineConfig, result) -> None:
    """One screen: what ran, then quality/speed/size per build from bench.json."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]edgemed run {cfg.name}[/bold]: ran {', '.join(result.ran) or 'nothing'}"
                  f"{'; up to date: ' + ', '.join(result.skipped) if result.skipped else ''} "
                  f"({result.wall_s:.0f} s)")
    bench = read_json(cfg.root / "bench" / "bench.json")
    if isinstance(bench, dict):
        from edgemed.bench.headline import headline_lines

        for line in headline_lines(bench):  # the same first lines as report.md
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        judge = (bench.get("judge") or {}).get("name", "judge")
        table = Table(title=f"builds ({judge})")
        for col in ("build", "HealthBench ± std", "unclipped [95% CI]", "hit rate", "pitfall rate", "paper acc",
                    "decode tok/s", "MiB", "parity"):
            table.add_column(col)
        for t in bench.get("targets", []):
            q = (t.get("quality") or {}).get("healthbench") or {}
            m = (t.get("quality") or {}).get("metrics") or {}
            acc = ((t.get("quality") or {}).get("paper") or {}).get("accuracy")
            tg = ((t.get("latency") or {}).get("tg") or {}).get("avg_ts")
            unclipped = (f"{fmt(m.get('unclipped'))} [{fmt(m.get('unclipped_ci_low'))}, "
                         f"{fmt(m.get('unclipped_ci_high'))}]") if m.get("unclipped") is not None else "–"
            table.add_row(t.get("label", "?"), f"{fmt(q.get('score'))} ± {fmt(q.get('std'))}", unclipped,
                          fmt(m.get("hit_rate")), fmt(m.get("pitfall_rate")), fmt(acc), fmt(tg, ".1f"),
                          f"{(t.get('bytes') or 0) / 2**20:.0f}", t.get("status", "–"))
        console.print(table)
        for c in (bench.get("comparisons") or [])[:4]:
            u = (c.get("metrics") or {}).get("unclipped_score")
            if u:
                console.print(f"{c['b']} vs {c['a']}: unclipped {fmt(u['diff'], '+.3f')} "
                              f"[{fmt(u['ci_low'], '+.3f')}, {fmt(u['ci_high'], '+.3f')}], "
                              f"sign test p={fmt(u['sign_p'], '.2f')}")
            else:
                console.print(f"{c['b']} vs {c['a']}: clipped {fmt(c.get('diff'), '+.3f')} "
                              f"[{fmt(c.get('diff_ci_low'), '+.3f')}, {fmt(c.get('diff_ci_high'), '+.3f')}]")
    if result.report:
        console.print(f"report: {result.report}")
