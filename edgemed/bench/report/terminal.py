"""What ``edgemed bench`` and ``edgemed bench grade`` print when they finish: the headline and a table
(or, with ``--json``, the same figures as one JSON object). bench.json and report.md hold everything.
"""

from __future__ import annotations

from edgemed.bench.layout import BENCH_JSON, REPORT_MD
from edgemed.bench.report.headline import headline_lines


def summary(report: dict, out: str) -> dict:
    """The headline and each build's main figures as plain data; bench.json holds everything."""
    builds = []
    for t in report["targets"]:
        q = t.get("quality") or {}
        builds.append({"label": t["label"], "status": t.get("status"), "bytes": t.get("bytes"),
                       "healthbench": (q.get("healthbench") or {}).get("score"),
                       "metrics": q.get("metrics"),
                       "decode_tok_s": ((t.get("latency") or {}).get("tg") or {}).get("avg_ts"),
                       "speed_ratios": t.get("speed_ratios")})
    return {"bench_json": f"{out}/{BENCH_JSON}", "report": f"{out}/{REPORT_MD}", "suite": report.get("suite"),
            "judge": (report.get("judge") or {}).get("name"), "headline": headline_lines(report),
            "builds": builds}


def print_summary(report: dict) -> None:
    """The headline lines, then the figures as a rich table; the full tables are in report.md.

    tokens (cut) = mean answer tokens (share truncated at max_new_tokens); paper acc / keyword = the
    paper's accuracy with the judge / with its own keyword heuristic (no judge).
    """
    from rich.console import Console
    from rich.table import Table

    judge = (report.get("judge") or {}).get("name", "no judge")
    fmt = lambda x, f: "–" if x is None else format(x, f).replace("-", "\u2212")  # noqa: E731
    table = Table(title=f"edgemed bench ({report.get('suite') or 'custom'}; quality by {judge})")
    for col in ("build", "clipped", "unclipped [95% CI]", "hit rate", "pitfalls", "tokens (cut)",
                "paper acc / keyword", "decode tok/s", "× torch fp32", "MiB"):
        table.add_column(col, justify="left" if col == "build" else "right",
                         no_wrap=col in ("build", "unclipped [95% CI]"))
    for t in report["targets"]:
        q = t.get("quality") or {}
        hb, m = q.get("healthbench") or {}, q.get("metrics") or {}
        tg = (t.get("latency") or {}).get("tg") or {}
        unclipped = (f"{fmt(m.get('unclipped'), '.3f')} [{fmt(m.get('unclipped_ci_low'), '.3f')}, "
                     f"{fmt(m.get('unclipped_ci_high'), '.3f')}]") if m.get("unclipped") is not None else "–"
        trunc = m.get("truncation_rate")
        table.add_row(t["label"], fmt(hb.get("score"), ".3f"), unclipped, fmt(m.get("hit_rate"), ".3f"),
                      fmt(m.get("pitfall_rate"), ".3f"),
                      f"{fmt(m.get('mean_tokens'), '.0f')} ({'–' if trunc is None else f'{100 * trunc:.0f}%'})",
                      f"{fmt((q.get('paper') or {}).get('accuracy'), '.2f')} / "
                      f"{fmt((q.get('paper_keyword') or {}).get('accuracy'), '.2f')}",
                      fmt(tg.get("avg_ts"), ".1f"), fmt((t.get("speed_ratios") or {}).get("tg_x_torch_fp32"), ".2f"),
                      f"{t['bytes'] / 2**20:.0f}")
    console = Console(width=max(Console().width, 180))
    for line in headline_lines(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(table)
