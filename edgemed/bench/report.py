"""bench.json (llama-bench-compatible rows plus quality) and report.md (tables), from the logs.

HealthBench figures and the paper's figures are labelled apart everywhere: the first is OpenAI's
simple-evals formula, the second the pass-rate metrics of arXiv 2606.05174 (F1 there is
2·acc/(1+acc), a function of accuracy, not an agreement score). The judge is named in every table.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from edgemed.bench import latency, quality_metrics, scoring
from edgemed.bench.config import BenchConfig
from edgemed.bench.headline import MINUS, headline_lines, p_text, signed
from edgemed.bench.machine import roofline_fraction, roofline_tok_s
from edgemed.bench.targets import Target
from edgemed.io import write_json_atomic, write_text_atomic

SCHEMA_VERSION = 1


def build_report(cfg: BenchConfig, targets: list[Target], summaries: dict[str, dict], machine: dict,
                 judge: dict | None, subset: dict | None, threads: int, out: Path) -> dict[str, Any]:
    """Assemble bench.json's content from the logs in ``out`` and the quality summaries."""
    bw = machine.get("bandwidth_bytes_s")
    rows, target_rows = [], []
    for t in targets:
        q = summaries.get(t.label) or None
        lat: dict[str, Any] = {}
        for r in latency.latency_rows(t, cfg.latency, out):
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

    Each comparison holds the clipped-mean bootstrap and McNemar test (``scoring.compare_paired``) and,
    under ``metrics``, per-prompt paired differences with bootstrap CIs and sign tests on the unclipped
    score, hit rate, pitfall rate and answer tokens (``quality_metrics.compare_examples``).
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
            c = scoring.compare_paired(keep(ea, "score"), keep(eb, "score"), keep(ea, "norm"), keep(eb, "norm"),
                                       cfg.quality.n_bootstrap, cfg.quality.seed)
            if c is not None:
                metrics = quality_metrics.compare_examples(ea, eb, cfg.quality.n_bootstrap, cfg.quality.seed)
                out.append({"a": a["label"], "b": b["label"], **c.to_dict(), "metrics": metrics})
    return out


# --- report.md ---------------------------------------------------------------------------------

def _f(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def render_markdown(report: dict[str, Any]) -> str:
    m, judge, subset = report["machine"], report.get("judge"), report.get("heart_subset")
    jname = judge["name"] if judge else "no judge"
    bw = m.get("bandwidth_bytes_s")
    lines = [f"# edgemed bench: {report.get('suite') or 'custom'} suite", *headline_lines(report), "",
             f"- created {report['created']}; machine: {m['cpu_info']}, {m['cores_physical']} physical cores, "
             f"GPU: {m['gpu_info'] or 'none'}; {report['threads']} thread(s) per runtime",
             f"- memory bandwidth (copy, best of {(m.get('bandwidth_settings') or {}).get('repeats', '?')}): "
             f"{_f(bw and bw / 1e9, '.1f')} GB/s"]
    if judge:
        lines.append(f"- judge: **{jname}**, fingerprint `{judge['fingerprint']}`; stats {judge.get('stats')}")
    if subset:
        lines.append(f"- prompts: heart rule `{subset['rule']}` (split {subset['split']}), {subset['n_used']} of "
                     f"{subset['n_subset']} heart records out of {subset['n_records']}; ids in bench.json")
    targets = report["targets"]
    flag = lambda t: t["label"] + ("" if t["status"] in ("passed", "reference") else " ⚠ parity failed")  # noqa: E731

    scored = [t for t in targets if t.get("quality")]
    if scored:
        lines += ["", f"## Quality ({jname})", "",
                  "HealthBench score = simple-evals formula (clipped mean, 1,000-sample bootstrap std). "
                  "Paper's metrics (arXiv 2606.05174): pass = normalised score > 0.5, accuracy = pass rate, "
                  "F1 = 2·acc/(1+acc), binomial 95% CI. Judge failures are excluded, never scored as not met.", "",
                  "| build | HealthBench score ± std | n | paper accuracy [95% CI] | paper F1 | judge failures / criteria |",
                  "|---|---|---|---|---|---|"]
        for t in scored:
            q, p = t["quality"], t["quality"]["paper"]
            hb = q["healthbench"]
            lines.append(f"| {flag(t)} | {_f(hb['score'])} ± {_f(hb['std'])} | {hb['n']} | "
                         f"{_f(p['accuracy'])} [{_f(p['ci_low'])}, {_f(p['ci_high'])}] | {_f(p['f1'])} | "
                         f"{q['judge_failures']} / {q['n_criteria']} |")
        for key, title in (("per_axis", "Per axis (HealthBench formula over the axis's criteria)"),
                           ("per_theme", "Per theme (the example's overall score)")):
            names = sorted({k for t in scored for k in t["quality"][key]})
            if not names:
                continue
            lines += ["", f"### {title}", "", "| build | " + " | ".join(n.split(":", 1)[1] for n in names) + " |",
                      "|---|" + "---|" * len(names)]
            for t in scored:
                cells = [t["quality"][key].get(n) for n in names]
                lines.append(f"| {t['label']} | " + " | ".join(
                    f"{_f(c['score'], '.2f')} (n={c['n']})" if c else "–" for c in cells) + " |")
        lines += scale_section(scored, flag) + keyword_section(scored, flag) + theme_metric_sections(scored)

    timed = [t for t in targets if t.get("latency")]
    if timed:
        lines += ["", "## Latency (llama-bench method: warm-up, then mean ± std over repetitions)", "",
                  "| build | backend | size MiB | prefill tok/s | decode tok/s | TTFT ms | peak RSS MiB | "
                  "roofline tok/s | % of roofline | decode × torch fp32 | decode × reference |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in timed:
            pp, tg, r = t["latency"].get("pp") or {}, t["latency"].get("tg") or {}, t["speed_ratios"]
            lines.append(
                f"| {flag(t)} | {t['backend']} | {t['bytes'] / 2**20:.0f} | "
                f"{_f(pp.get('avg_ts'), '.1f')} ± {_f(pp.get('stddev_ts'), '.1f')} | "
                f"{_f(tg.get('avg_ts'), '.1f')} ± {_f(tg.get('stddev_ts'), '.1f')} | {_f(pp.get('ttft_ms'), '.0f')} | "
                f"{_f(t['latency'].get('peak_rss_bytes', 0) / 2**20, '.0f')} | {_f(tg.get('roofline_tok_s'), '.0f')} | "
                f"{_f(tg.get('roofline_fraction') and 100 * tg['roofline_fraction'], '.0f')} | "
                f"{_f(r.get('tg_x_torch_fp32'), '.2f')} | {_f(r.get('tg_x_reference'), '.2f')} |")
        lines += ["", "Roofline = bandwidth / weight bytes read per token; peak RSS per build from its own process."]

    if report.get("comparisons"):
        lines += ["", f"## Base vs trained ({jname}, same prompts)", "",
                  "Clipped HealthBench means (paired bootstrap) and McNemar's exact test on the paper's pass/fail.", "",
                  "| A | B | n | clipped score A | clipped score B | B − A [95% CI] | bootstrap p | "
                  "McNemar A-only / B-only passes, p |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in report["comparisons"]:
            lines.append(f"| {c['a']} | {c['b']} | {c['n']} | {_f(c['score_a'])} | {_f(c['score_b'])} | "
                         f"{_f(c['diff'], '+.3f')} [{_f(c['diff_ci_low'], '+.3f')}, {_f(c['diff_ci_high'], '+.3f')}] | "
                         f"{_f(c['bootstrap_p'])} | {c['a_only_pass']} / {c['b_only_pass']}, {_f(c['mcnemar_p'])} |")
        lines += paired_metrics_section(report["comparisons"])
    if report.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in report["plots"]]
    return "\n".join(lines) + "\n"


METRIC_LABELS = {"unclipped_score": "unclipped score", "hit_rate": "hit rate (positive criteria)",
                 "pitfall_rate": "pitfall rate", "answer_tokens": "answer tokens"}


def _m(x: float | None, spec: str = ".3f") -> str:
    return _f(x, spec).replace("-", MINUS)


def _ci(x: float | None, lo: float | None, hi: float | None, spec: str = ".3f") -> str:
    return f"{_m(x, spec)} [{_m(lo, spec)}, {_m(hi, spec)}]"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def scale_section(scored: list[dict], flag=lambda t: t["label"]) -> list[str]:
    """Per-build metrics that move even when every clipped score is 0 (absent in old bench.json: no table).

    >>> t = {"label": "b/x", "quality": {"max_new_tokens": 80, "metrics": {"unclipped": -0.2, "unclipped_ci_low": -0.3,
    ...      "unclipped_ci_high": -0.1, "clipped": 0.0, "clipped_std": 0.0, "hit_rate": 0.25, "pos_met": 5,
    ...      "pos_judged": 20, "pitfall_rate": 0.5, "neg_met": 2, "neg_judged": 4, "mean_tokens": 80.0,
    ...      "mean_words": 60.0, "truncation_rate": 1.0, "n_truncated": 3, "n": 3, "judge_failures": 0}}}
    >>> scale_section([t])[-1]
    '| b/x | −0.200 [−0.300, −0.100] | 0.000 ± 0.000 | 0.250 (5/20) | 0.500 (2/4) | 80 / 60 | 100% (3/3) | 0 |'
    """
    rows = [t for t in scored if (t["quality"].get("metrics") or {}).get("n") is not None]
    if not rows:
        return []
    cap = rows[0]["quality"].get("max_new_tokens")
    lines = ["", "### Metrics that move at every scale", "",
             "Unclipped = mean of per-example HealthBench scores without clipping (pitfalls can take it below 0), "
             "95% bootstrap CI. Hit rate = met / judged positive criteria; pitfall rate = met / judged negative "
             "criteria (lower is better). Truncated = the answer used the whole "
             f"{cap or 'max_new_tokens'}-token budget. Criteria the judge failed on are skipped and counted.", "",
             "| build | unclipped score [95% CI] | clipped ± std | hit rate (met/judged) | "
             "pitfall rate (met/judged) | "
             "mean answer tokens / words | truncated | judge failures |", "|---|---|---|---|---|---|---|---|"]
    for t in rows:
        m = t["quality"]["metrics"]
        g = lambda k: m.get(k, "–")  # noqa: E731
        count = lambda x: x if not isinstance(x, float) else _f(x, ".0f" if x.is_integer() else ".1f")  # noqa: E731
        lines.append(
            f"| {flag(t)} | {_ci(m.get('unclipped'), m.get('unclipped_ci_low'), m.get('unclipped_ci_high'))} | "
            f"{_f(m.get('clipped'))} ± {_f(m.get('clipped_std'))} | "
            f"{_f(m.get('hit_rate'))} ({count(g('pos_met'))}/{g('pos_judged')}) | "
            f"{_f(m.get('pitfall_rate'))} ({count(g('neg_met'))}/{g('neg_judged')}) | "
            f"{_f(m.get('mean_tokens'), '.0f')} / {_f(m.get('mean_words'), '.0f')} | "
            f"{_pct(m.get('truncation_rate'))} ({g('n_truncated')}/{g('n')}) | {g('judge_failures')} |")
    return lines


def keyword_section(scored: list[dict], flag=lambda t: t["label"]) -> list[str]:
    """The paper's own no-judge evaluation beside the judge-based paper metrics, clearly labelled.

    >>> t = {"label": "b/x", "quality": {"paper": {"accuracy": 0.5, "f1": 2 / 3, "n": 4},
    ...      "paper_keyword": {"accuracy": 0.25, "f1": 0.4, "n": 4}}}
    >>> keyword_section([t])[-1]
    '| b/x | 0.500 / 0.667 (n=4) | 0.250 / 0.400 (n=4) |'
    """
    rows = [t for t in scored if t["quality"].get("paper_keyword")]
    if not rows:
        return []
    lines = ["", "### Paper's metrics: judge-based vs the paper's keyword heuristic (no judge)", "",
             "The paper's released code (`evaluate_completion`) scores with no judge at all: of the first 5 rubric "
             "items, a positive one earns half its points when the answer is over 100 characters and contains "
             "should/recommend/important/seek/care, a negative one counts when the answer contains "
             "\"unsafe\"/\"harmful\"; pass = normalised score > 0.5. Its published accuracy, 0.362 → 0.502 (base → "
             "trained), was measured this way; compare with the keyword column, not the judge-based one.", "",
             "| build | judge-based paper accuracy / F1 | paper's keyword heuristic (no judge) accuracy / F1 |",
             "|---|---|---|"]
    for t in rows:
        p, k = t["quality"].get("paper") or {}, t["quality"]["paper_keyword"]
        lines.append(f"| {flag(t)} | {_f(p.get('accuracy'))} / {_f(p.get('f1'))} (n={p.get('n', '–')}) | "
                     f"{_f(k.get('accuracy'))} / {_f(k.get('f1'))} (n={k.get('n', '–')}) |")
    return lines


def theme_metric_sections(scored: list[dict]) -> list[str]:
    """Per theme (HealthBench ``theme:*`` tags): unclipped score, hit rate and pitfall rate of each build.

    >>> t = {"label": "b/x", "quality": {"per_theme_metrics": {"theme:hedging": {"n": 2, "unclipped": -0.1,
    ...      "hit_rate": 0.3, "pitfall_rate": None}}}}
    >>> theme_metric_sections([t])[5]
    '| b/x | −0.10 (n=2) |'
    """
    names = sorted({k for t in scored for k in t["quality"].get("per_theme_metrics") or {}})
    if not names:
        return []
    lines = []
    for key, title in (("unclipped", "unclipped score"), ("hit_rate", "hit rate of positive criteria"),
                       ("pitfall_rate", "rate of pitfalls present")):
        lines += ["", f"### Per theme: {title}", "", "| build | " + " | ".join(n.split(":", 1)[1] for n in names)
                  + " |", "|---|" + "---|" * len(names)]
        for t in scored:
            cells = [(t["quality"].get("per_theme_metrics") or {}).get(n) for n in names]
            lines.append(f"| {t['label']} | " + " | ".join(
                f"{_m(c.get(key), '.2f')} (n={c['n']})" if c else "–" for c in cells) + " |")
    return lines


def paired_metrics_section(comparisons: list[dict]) -> list[str]:
    """Per-prompt paired differences B − A with bootstrap 95% CIs and sign tests, metric by metric.

    >>> c = {"a": "base/x", "b": "trained/x", "metrics": {"hit_rate": {"n": 10, "mean_a": 0.2, "mean_b": 0.3,
    ...      "diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "n_up": 8, "n_down": 1, "n_tie": 1, "sign_p": 0.039}}}
    >>> paired_metrics_section([c])[-1]
    '| base/x | trained/x | hit rate (positive criteria) | 10 | 0.200 | 0.300 | +0.100 [+0.050, +0.150] | 8 / 1 / 1, p=0.04 | helped |'
    """
    rows = []
    for c in comparisons:
        for name, label in METRIC_LABELS.items():
            m = (c.get("metrics") or {}).get(name)
            if not m:
                continue
            spec = ".1f" if name == "answer_tokens" else ".3f"
            if name == "answer_tokens":
                word = "longer" if m["ci_low"] > 0 else "shorter" if m["ci_high"] < 0 else "no clear change"
            else:
                word = quality_metrics.verdict(m["ci_low"], m["ci_high"], higher_is_better=name != "pitfall_rate")
            rows.append(f"| {c['a']} | {c['b']} | {label} | {m['n']} | {_m(m['mean_a'], spec)} | "
                        f"{_m(m['mean_b'], spec)} | {signed(m['diff'], spec)} [{signed(m['ci_low'], spec)}, "
                        f"{signed(m['ci_high'], spec)}] | {m['n_up']} / {m['n_down']} / {m['n_tie']}, "
                        f"{p_text(m['sign_p'])} | {word} |")
    if not rows:
        return []
    return ["", "### Base vs trained, per prompt (paired bootstrap 95% CI, exact sign test)", "",
            "Per-prompt means over the prompts where both builds have the metric; B − A = mean per-prompt "
            "difference; up / down / tie = prompts where B is higher / lower / equal.", "",
            "| A | B | metric | n | A | B | B − A [95% CI] | up / down / tie, sign test | reading |",
            "|---|---|---|---|---|---|---|---|---|", *rows]


def write_report(report: dict[str, Any], out: Path) -> None:
    """bench.json, report.md and the plots, each written atomically."""
    from edgemed.bench.plots import write_plots

    report["plots"] = [p.name for p in write_plots(report, out)]
    write_json_atomic(out / "bench.json", report)
    write_text_atomic(out / "report.md", render_markdown(report))
