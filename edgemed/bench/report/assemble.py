"""bench.json's content, assembled from the logs and quality summaries, and the files written from it.

bench.json holds llama-bench-compatible ``rows`` plus per-build ``targets`` (quality, latency, speed
ratios) and base-vs-trained ``comparisons``; its reader is :mod:`edgemed.bench.report.results`, which
owns ``SCHEMA_VERSION``; report.md is rendered by :mod:`edgemed.bench.report.markdown`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from edgemed.bench.config import BenchConfig
from edgemed.bench.layout import BENCH_JSON, REPORT_MD
from edgemed.bench.latency import timing
from edgemed.bench.latency.machine import roofline_fraction, roofline_tok_s
from edgemed.bench.quality import compare
from edgemed.bench.report.results import SCHEMA_VERSION, parse_bench
from edgemed.bench.targets import Target
from edgemed.io import write_json_atomic, write_text_atomic


def build_report(cfg: BenchConfig, targets: list[Target], summaries: dict[str, dict], machine: dict,
                 judge: dict | None, subset: dict | None, threads: int, out: Path) -> dict[str, Any]:
    """Assemble bench.json's content from the logs in ``out`` and the quality summaries."""
    bw = machine.get("bandwidth_bytes_s")
    rows, target_rows = [], []
    for t in targets:
        q = summaries.get(t.label) or None
        lat: dict[str, Any] = {}
        for r in timing.latency_rows(t, cfg.latency, out):
            r = dict(r)
            if r["n_gen"] and bw:
                r["bandwidth_bytes_s"] = bw
                r["weight_bytes"] = t.weight_bytes
                r["roofline_tok_s"] = roofline_tok_s(bw, t.weight_bytes)
                r["roofline_fraction"] = roofline_fraction(r["avg_ts"], bw, t.weight_bytes)
            r["quality"] = _compact_quality(q)
            rows.append(r)
            lat["pp" if r["n_prompt"] else "tg"] = {k: r.get(k) for k in (
                "test", "avg_ts", "stddev_ts", "avg_ns", "stddev_ns", "ttft_ms", "roofline_tok_s",
                "roofline_fraction", "n_threads", "device", "execution_provider")}
            lat["peak_rss_bytes"] = max(lat.get("peak_rss_bytes", 0), r["peak_rss_bytes"])
        if cfg.latency.llama_bench and t.format == "gguf":
            lat["llama_bench"] = _llama_bench_figures(t, cfg, threads, out, lat, bw)
        target_rows.append({**t.to_dict(), "backend": t.backend, "quality": q, "latency": lat})
    _add_speed_ratios(target_rows)
    return {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "suite": cfg.suite, "threads": threads, "machine": machine, "judge": judge, "heart_subset": subset,
        "settings": {"quality": cfg.to_dict()["quality"], "latency": cfg.to_dict()["latency"]},
        "rows": rows, "targets": target_rows,
        "comparisons": compare_groups(cfg, target_rows),
    }


def _llama_bench_figures(t: Target, cfg: BenchConfig, threads: int, out: Path, lat: dict,
                         bw: float | None) -> dict[str, Any]:
    """llama-bench's pp/tg for this GGUF beside the kit's: the kit's rate as a fraction of the tool's."""
    from edgemed.bench.latency import llama_bench

    figures: dict[str, Any] = {}
    for r in llama_bench.reference_rows(t, cfg.latency, threads, out):
        kind = "pp" if r.get("n_prompt") else "tg"
        figures[f"{kind}_avg_ts"], figures[f"{kind}_stddev_ts"] = r.get("avg_ts"), r.get("stddev_ts")
        figures[f"{kind}_harness_ratio"] = llama_bench.harness_ratio((lat.get(kind) or {}).get("avg_ts"),
                                                                     r.get("avg_ts"))
        if kind == "tg" and bw:
            figures["tg_roofline_fraction"] = roofline_fraction(r["avg_ts"], bw, t.weight_bytes)
    return figures


def _compact_quality(q: dict | None) -> dict | None:
    if not q:
        return None
    hb, paper, m = q["healthbench"], q["paper"], q.get("metrics") or {}
    return {"healthbench_score": hb["score"], "healthbench_std": hb["std"], "n": hb["n"],
            "unclipped_score": m.get("unclipped"), "unclipped_ci_low": m.get("unclipped_ci_low"),
            "unclipped_ci_high": m.get("unclipped_ci_high"), "hit_rate": m.get("hit_rate"),
            "pitfall_rate": m.get("pitfall_rate"), "mean_answer_tokens": m.get("mean_tokens"),
            "truncation_rate": m.get("truncation_rate"),
            "paper_accuracy": paper["accuracy"], "paper_f1": paper["f1"],
            "paper_keyword_accuracy": (q.get("paper_keyword") or {}).get("accuracy"),
            "distinct_2": m.get("distinct_2"), "repeated_sentences": m.get("repeated_sentences"),
            "train_judge_hit_rate": (q.get("train_judge") or {}).get("hit_rate"),
            "judge_failures": q["judge_failures"]}


def _add_speed_ratios(target_rows: list[dict]) -> None:
    """Decode and prefill as multiples of PyTorch fp32 (same manifest first) and of the reference GGUF."""
    def rate(t: dict, test: str) -> float | None:
        return ((t.get("latency") or {}).get(test) or {}).get("avg_ts")

    torch_rows = [t for t in target_rows if t["format"] == "hf" and rate(t, "tg")]
    refs = [t for t in target_rows if t["group"] == "reference" and rate(t, "tg")]
    for t in target_rows:
        base = next((b for b in torch_rows if b["group"] == t["group"]), torch_rows[0] if torch_rows else None)
        ratios = {}
        for test in ("pp", "tg"):
            if rate(t, test) and base and rate(base, test):
                ratios[f"{test}_x_torch_fp32"] = rate(t, test) / rate(base, test)
            if rate(t, test) and refs and rate(refs[0], test):
                ratios[f"{test}_x_reference"] = rate(t, test) / rate(refs[0], test)
        t["speed_ratios"] = ratios


def compare_groups(cfg: BenchConfig, target_rows: list[dict]) -> list[dict]:
    """Each later manifest vs the first (base vs trained), build by build, on the prompts both scored.

    Each comparison holds the clipped-mean bootstrap and McNemar test (``compare.compare_paired``) and,
    under ``metrics``, per-prompt paired differences with bootstrap CIs and sign tests on the unclipped
    score, hit rate, pitfall rate and answer tokens (``compare.compare_examples``).
    """
    groups = [m.label for m in cfg.manifests]
    if len(groups) < 2:
        return []
    by = {(t["group"], t["name"]): t for t in target_rows if t.get("quality")}
    out = []
    for other in groups[1:]:
        for (g, name), a in by.items():
            b = by.get((other, name))
            if g != groups[0] or b is None:
                continue
            ea, eb = a["quality"]["per_example"], b["quality"]["per_example"]
            keep = lambda d, f: {p: v[f] for p, v in d.items() if v[f] is not None}  # noqa: E731
            c = compare.compare_paired(keep(ea, "score"), keep(eb, "score"), keep(ea, "norm"), keep(eb, "norm"),
                                       cfg.quality.n_bootstrap, cfg.quality.seed)
            if c is not None:
                metrics = compare.compare_examples(ea, eb, cfg.quality.n_bootstrap, cfg.quality.seed)
                lc = compare.length_controlled(ea, eb, cfg.quality.n_bootstrap, cfg.quality.seed)
                if lc is not None:
                    metrics["length_controlled"] = lc
                independent = compare.independent_measures(a["quality"], b["quality"],
                                                           cfg.quality.n_bootstrap, cfg.quality.seed)
                if independent:
                    metrics["independent"], metrics["independent_all"] = independent[0], independent
                out.append({"a": a["label"], "b": b["label"], **c.to_dict(), "metrics": metrics})
    return out


def write_report(report: dict[str, Any], out: Path) -> None:
    """bench.json, report.md and the plots, each written atomically."""
    from edgemed.bench.report.markdown import render_markdown
    from edgemed.bench.report.plots import write_plots

    report["plots"] = [p.name for p in write_plots(parse_bench(report), out)]
    write_json_atomic(out / BENCH_JSON, report)
    write_text_atomic(out / REPORT_MD, render_markdown(report))
