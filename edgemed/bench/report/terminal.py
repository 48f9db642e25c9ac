"""What ``edgemed bench`` and ``edgemed bench grade`` print when they finish: the headline and a table
(or, with ``--json``, the same figures as one JSON object). bench.json and report.md hold everything.
"""

from __future__ import annotations

from edgemed.bench.layout import BENCH_JSON, REPORT_MD
from edgemed.bench.report.headline import headline_lines
from edgemed.bench.report.results import Quality, Rate, parse_bench


def summary(report: dict, out: str) -> dict:
    """The headline and each build's main figures as plain data; bench.json holds everything.

    >>> s = summary({"suite": "smoke", "targets": [{"label": "b/x", "bytes": 8, "latency": {"tg": {"avg_ts": 9.5}}}]}, "o")
    >>> s["bench_json"], s["builds"][0]["decode_tok_s"], s["builds"][0]["healthbench"], s["builds"][0]["metrics"]
    ('o/bench.json', 9.5, None, None)
    """
    r = parse_bench(report)
    builds = []
    for t, raw in zip(r.targets, report.get("targets") or []):
        q, tg = t.quality, t.latency and t.latency.tg
        builds.append({"label": t.label, "status": t.status, "bytes": raw.get("bytes"),
                       "healthbench": q and q.score,
                       "metrics": (raw.get("quality") or {}).get("metrics"),  # every metric, as bench.json has it
                       "decode_tok_s": tg and tg.avg_ts, "speed_ratios": raw.get("speed_ratios")})
    return {"bench_json": f"{out}/{BENCH_JSON}", "report": f"{out}/{REPORT_MD}", "suite": r.suite,
            "judge": r.judge and r.judge.name, "headline": headline_lines(r), "builds": builds}


def print_summary(report: dict) -> None:
    """The headline lines, then the figures as a rich table; the full tables are in report.md.

    tokens (cut) = mean answer tokens (share truncated at max_new_tokens); paper acc / keyword = the
    paper's accuracy with the judge / with its own keyword heuristic (no judge).
    """
    from rich.table import Table

    from edgemed.console import rich_console

    r = parse_bench(report)
    judge = (r.judge and r.judge.name) or "no judge"
    fmt = lambda x, f: "–" if x is None else format(x, f).replace("-", "\u2212")  # noqa: E731
    table = Table(title=f"edgemed bench ({r.suite or 'custom'}; quality by {judge})")
    for col in ("build", "clipped", "unclipped [95% CI]", "hit rate", "pitfalls", "tokens (cut)",
                "paper acc / keyword", "decode tok/s", "× torch fp32", "MiB"):
        table.add_column(col, justify="left" if col == "build" else "right",
                         no_wrap=col in ("build", "unclipped [95% CI]"))
    for t in r.targets:
        q = t.quality or Quality()
        m = q.metrics
        tg = (t.latency and t.latency.tg) or Rate()
        unclipped = (f"{fmt(m.unclipped, '.3f')} [{fmt(m.unclipped_ci_low, '.3f')}, "
                     f"{fmt(m.unclipped_ci_high, '.3f')}]") if m.unclipped is not None else "–"
        trunc = m.truncation_rate
        table.add_row(t.label, fmt(q.score, ".3f"), unclipped, fmt(m.hit_rate, ".3f"), fmt(m.pitfall_rate, ".3f"),
                      f"{fmt(m.mean_tokens, '.0f')} ({'–' if trunc is None else f'{100 * trunc:.0f}%'})",
                      f"{fmt(q.paper_accuracy, '.2f')} / {fmt(q.keyword_accuracy, '.2f')}",
                      fmt(tg.avg_ts, ".1f"), fmt(t.speed_ratios.get("tg_x_torch_fp32"), ".2f"),
                      f"{t.bytes / 2**20:.0f}")
    console = rich_console(min_width=180)
    for line in headline_lines(r):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(table)
