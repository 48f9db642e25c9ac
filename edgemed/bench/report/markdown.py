"""report.md: the tables of one bench.json (quality, latency, harness overhead, base vs trained, plots).

HealthBench figures and the paper's figures are labelled apart everywhere: the first is OpenAI's
simple-evals formula, the second the pass-rate metrics of arXiv 2606.05174 (F1 there is
2·acc/(1+acc), a function of accuracy, not an agreement score). The judge is named in every table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgemed.bench.report.headline import headline_lines
from edgemed.bench.report.quality_tables import (diagnostics_section, keyword_section, paired_metrics_section,
                                                 scale_section, theme_metric_sections)
from edgemed.bench.report.results import BenchResults, PaperScore, Rate, parse_bench


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def machine_lines(report: BenchResults) -> list[str]:
    """Where the figures were measured: the one machine, or each device of ``edgemed bench grade``.

    >>> m = {"cpu_info": "Cortex-A76", "cores_physical": 4, "gpu_info": "", "memory_bytes": 8 * 2**30,
    ...      "os": "Linux-6.6-aarch64", "board": "Raspberry Pi 5", "bandwidth_bytes_s": 9.1e9}
    >>> machine_lines(parse_bench({"created": "t", "devices": {"pi5": {"machine": m, "threads": 4}}}))[1]
    '- device **pi5**: Raspberry Pi 5, Cortex-A76, 4 physical cores, 8.0 GiB RAM, Linux-6.6-aarch64, accelerator: none; 4 thread(s) per runtime; memory bandwidth 9.1 GB/s'
    """
    devices = report.devices
    if devices:
        lines = [f"- created {report.created}; {len(devices)} device(s), each run with `edgemed bench device`"]
        for name, d in devices.items():
            m = d["machine"]
            ram = f"{m['memory_bytes'] / 2**30:.1f} GiB RAM" if m.get("memory_bytes") else "RAM unknown"
            where = ", ".join(x for x in (m.get("board"), m.get("cpu_info")) if x)
            bw = m.get("bandwidth_bytes_s")
            lines.append(f"- device **{name}**: {where}, {m.get('cores_physical', '?')} physical cores, {ram}, "
                         f"{m.get('os', 'OS unknown')}, accelerator: {m.get('accelerator') or m.get('gpu_info') or 'none'}; "
                         f"{d['threads']} thread(s) per runtime; memory bandwidth {_f(bw and bw / 1e9, '.1f')} GB/s")
        return lines
    m = report.machine
    bw = m.get("bandwidth_bytes_s")
    return [f"- created {report.created}; machine: {m['cpu_info']}, {m['cores_physical']} physical cores, "
            f"GPU: {m['gpu_info'] or 'none'}; {report.threads} thread(s) per runtime",
            f"- memory bandwidth (copy, best of {(m.get('bandwidth_settings') or {}).get('repeats', '?')}): "
            f"{_f(bw and bw / 1e9, '.1f')} GB/s"]


def _flag(label: str | None, status: str | None) -> str:
    """A build's label, marked when its parity failed.

    >>> _flag("base/gguf-q4_0", "failed")
    'base/gguf-q4_0 ⚠ parity failed'
    """
    return f"{label}" + ("" if status in ("passed", "reference") else " ⚠ parity failed")


def render_markdown(report: dict[str, Any]) -> str:
    """report.md from bench.json's content, read through ``report.results`` (the quality sections
    in ``report.quality_tables``)."""
    r = parse_bench(report)
    judge, subset = r.judge, r.heart_subset
    jname = judge.name if judge else "no judge"
    lines = [f"# edgemed bench: {r.suite or 'custom'} suite", *headline_lines(r), "", *machine_lines(r)]
    if judge:
        lines.append(f"- judge: **{jname}**, fingerprint `{judge.fingerprint}`; stats {judge.stats}")
    if subset:
        packaged = subset.packaged
        n_hb = subset.n_used if subset.n_healthbench is None else subset.n_healthbench
        lines.append(f"- prompts: heart rule `{subset.rule}` (split {subset.split}), {n_hb} of "
                     f"{subset.n_subset} HealthBench heart records out of {subset.n_records}"
                     + (f", plus {packaged['n']} of the packaged heart rubrics' {packaged['split']} split"
                        if packaged else "") + "; ids in bench.json")
    flag = lambda t: _flag(t.label, t.status)  # noqa: E731

    scored = [t for t in r.targets if t.quality]
    if scored:
        lines += ["", f"## Quality ({jname})", "",
                  "HealthBench score = simple-evals formula (clipped mean, 1,000-sample bootstrap std). "
                  "Paper's metrics (arXiv 2606.05174): pass = normalised score > 0.5, accuracy = pass rate, "
                  "F1 = 2·acc/(1+acc), binomial 95% CI. Judge failures are excluded, never scored as not met.", "",
                  "| build | HealthBench score ± std | n | paper accuracy [95% CI] | paper F1 | judge failures / criteria |",
                  "|---|---|---|---|---|---|"]
        for t in scored:
            q, p = t.quality, t.quality.paper or PaperScore()
            lines.append(f"| {flag(t)} | {_f(q.score)} ± {_f(q.std)} | {q.n} | "
                         f"{_f(p.accuracy)} [{_f(p.ci_low)}, {_f(p.ci_high)}] | {_f(p.f1)} | "
                         f"{q.judge_failures} / {q.n_criteria} |")
        for key, title in (("per_axis", "Per axis (HealthBench formula over the axis's criteria)"),
                           ("per_theme", "Per theme (the example's overall score)")):
            names = sorted({k for t in scored for k in getattr(t.quality, key)})
            if not names:
                continue
            lines += ["", f"### {title}", "", "| build | " + " | ".join(n.split(":", 1)[1] for n in names) + " |",
                      "|---|" + "---|" * len(names)]
            for t in scored:
                cells = [getattr(t.quality, key).get(n) for n in names]
                lines.append(f"| {t.label} | " + " | ".join(
                    f"{_f(c.score, '.2f')} (n={c.n})" if c else "–" for c in cells) + " |")
        lines += (scale_section(scored, flag) + keyword_section(scored, flag) + theme_metric_sections(scored)
                  + diagnostics_section(scored, flag))

    timed = [t for t in r.targets if t.latency]
    if timed:
        lines += ["", "## Latency (llama-bench method: warm-up, then mean ± std over repetitions)", "",
                  "| build | backend | size MiB | prefill tok/s | decode tok/s | TTFT ms | peak RSS MiB | "
                  "roofline tok/s | % of roofline | decode × torch fp32 | decode × reference |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in timed:
            pp, tg, x = t.latency.pp or Rate(), t.latency.tg or Rate(), t.speed_ratios
            lines.append(
                f"| {_flag(t.label, t.status)} | {t.backend} | {t.bytes / 2**20:.0f} | "
                f"{_f(pp.avg_ts, '.1f')} ± {_f(pp.stddev_ts, '.1f')} | "
                f"{_f(tg.avg_ts, '.1f')} ± {_f(tg.stddev_ts, '.1f')} | {_f(pp.ttft_ms, '.0f')} | "
                f"{_f(t.latency.peak_rss_bytes / 2**20, '.0f')} | {_f(tg.roofline_tok_s, '.0f')} | "
                f"{_f(tg.roofline_fraction and 100 * tg.roofline_fraction, '.0f')} | "
                f"{_f(x.get('tg_x_torch_fp32'), '.2f')} | {_f(x.get('tg_x_reference'), '.2f')} |")
        lines += ["", "Roofline = bandwidth / weight bytes read per token; peak RSS per build from its own process."]
        yard = [t for t in timed if t.latency.llama_bench]
        if yard:
            lines += ["", "### Harness overhead: the same GGUFs timed by llama-bench in this run", "",
                      "| build | llama-bench pp tok/s | llama-bench tg tok/s | kit pp / llama-bench | "
                      "kit tg / llama-bench | llama-bench % of roofline |", "|---|---|---|---|---|---|"]
            for t in yard:
                y = t.latency.llama_bench
                lines.append(f"| {_flag(t.label, t.status)} | {_f(y.get('pp_avg_ts'), '.1f')} | "
                             f"{_f(y.get('tg_avg_ts'), '.1f')} | "
                             f"{_f(y.get('pp_harness_ratio'), '.2f')} | {_f(y.get('tg_harness_ratio'), '.2f')} | "
                             f"{_f(y.get('tg_roofline_fraction') and 100 * y['tg_roofline_fraction'], '.0f')} |")

    if r.comparisons:
        lines += ["", f"## Base vs trained ({jname}, same prompts)", "",
                  "Clipped HealthBench means (paired bootstrap) and McNemar's exact test on the paper's pass/fail.", "",
                  "| A | B | n | clipped score A | clipped score B | B − A [95% CI] | bootstrap p | "
                  "McNemar A-only / B-only passes, p |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in r.comparisons:
            lines.append(f"| {c.a} | {c.b} | {c.n} | {_f(c.score_a)} | {_f(c.score_b)} | "
                         f"{_f(c.diff, '+.3f')} [{_f(c.diff_ci_low, '+.3f')}, {_f(c.diff_ci_high, '+.3f')}] | "
                         f"{_f(c.bootstrap_p)} | {c.a_only_pass} / {c.b_only_pass}, {_f(c.mcnemar_p)} |")
        lines += paired_metrics_section(r.comparisons)
    if r.plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in r.plots]
    return "\n".join(lines) + "\n"
