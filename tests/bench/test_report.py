"""Reports and config without loading any model: synthetic bench results through report.md and the plots."""

from __future__ import annotations

import pytest

from edgemed.bench.config import BenchConfig, load_config, manifest_ref
from edgemed.bench.report.assemble import compare_groups
from edgemed.bench.report.markdown import render_markdown
from edgemed.bench.report.plots import write_plots
from edgemed.bench.report.results import parse_bench
from edgemed.errors import ConfigError


def target(group, name, fmt, score, tg, per_example):
    return {
        "label": f"{group}/{name}", "group": group, "name": name, "format": fmt, "quant": "q8_0",
        "backend": {"gguf": "llama.cpp", "hf": "torch"}[fmt], "bytes": 2**27, "status": "passed",
        "quality": {"healthbench": {"score": score, "std": 0.02, "n": len(per_example), "n_excluded": 0},
                    "paper": {"accuracy": 0.5, "f1": 2 / 3, "ci_low": 0.1, "ci_high": 0.9},
                    "per_axis": {"axis:accuracy": {"score": score, "n": 3}}, "per_theme": {},
                    "judge_failures": 1, "n_criteria": 30, "per_example": per_example},
        "latency": {"pp": {"test": "pp512", "avg_ts": 10 * tg, "stddev_ts": 1.0, "ttft_ms": 50.0},
                    "tg": {"test": "tg128", "avg_ts": tg, "stddev_ts": 0.5, "roofline_tok_s": 200.0,
                           "roofline_fraction": tg / 200}, "peak_rss_bytes": 2**28},
        "speed_ratios": {"tg_x_torch_fp32": tg / 10},
    }


@pytest.fixture
def report():
    ex_a = {f"p{i}": {"score": 0.2, "norm": 0.4} for i in range(6)}
    ex_b = {f"p{i}": {"score": 0.6, "norm": 0.8} for i in range(6)}
    targets = [target("base", "torch-fp32", "hf", 0.2, 10.0, ex_a), target("base", "gguf-q8_0", "gguf", 0.21, 60.0, ex_a),
               target("trained", "gguf-q8_0", "gguf", 0.6, 59.0, ex_b)]
    cfg = BenchConfig(manifests=[manifest_ref("base=a"), manifest_ref("trained=b")])
    return {"suite": "smoke", "created": "now", "threads": 2, "targets": targets,
            "machine": {"cpu_info": "cpu", "cores_physical": 2, "gpu_info": "", "bandwidth_bytes_s": 3e10},
            "judge": {"name": "proxy judge", "fingerprint": "proxy/v1", "stats": {}},
            "heart_subset": {"rule": "heart-keywords-v1", "split": "all", "n_used": 6, "n_subset": 44,
                             "n_records": 500},
            "comparisons": compare_groups(cfg, targets)}


def test_comparison_pairs_builds_by_name(report):
    (c,) = report["comparisons"]
    assert (c["a"], c["b"], c["n"]) == ("base/gguf-q8_0", "trained/gguf-q8_0", 6)
    assert c["diff"] == pytest.approx(0.4) and c["b_only_pass"] == 6 and c["mcnemar_p"] == pytest.approx(2 / 64)


def test_markdown_and_plots(report, tmp_path):
    report["plots"] = [p.name for p in write_plots(parse_bench(report), tmp_path)]
    assert report["plots"] == ["quality_vs_speed.png", "size_vs_quality.png", "fidelity_speed_size.png", "latency.png"]
    md = render_markdown(report)
    assert "## Quality (proxy judge)" in md and "Paper's metrics" in md and "proxy/v1" in md
    assert "| base/gguf-q8_0 | 0.210 ± 0.020 | 6 |" in md
    assert "Base vs trained" in md and "+0.400" in md
    assert "![latency](latency.png)" in md


def test_suites_load_and_bad_keys_are_named():
    for name, n_prompt in (("smoke", 64), ("pipeline", 128), ("default", 512)):
        assert load_config({"suite": name}).latency.n_prompt == n_prompt
    assert load_config({"suite": "smoke", "latency": {"n_gen": 8}}).latency.repetitions == 2  # suite kept
    with pytest.raises(ConfigError, match="latency.repetitions"):
        load_config({"latency": {"repetitions": 0}})
    with pytest.raises(ConfigError, match="labels must be unique"):
        load_config({"manifests": ["a=x/m.json", "a=y/m.json"]})


# --- "did training help?": headline lines, new metrics, old bench.json ---------------------------

from edgemed.bench.quality import metrics as qm  # noqa: E402
from edgemed.bench.report.terminal import print_summary  # noqa: E402


def quality_from(rows: dict[str, dict], failures: int = 0) -> dict:
    """A target's quality block as quality_summary writes it, from example_metrics rows."""
    m = qm.summarise(list(rows.values()))
    return {"healthbench": {"score": m["clipped"], "std": m["clipped_std"], "n": m["n_scored"], "n_excluded": 0},
            "metrics": {**m, "judge_failures": failures}, "max_new_tokens": 80,
            "paper": {"accuracy": 0.0, "f1": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": len(rows)},
            "paper_keyword": {"accuracy": 0.25, "f1": 0.4, "n": len(rows)},
            "per_axis": {}, "per_theme": {"theme:emergency_referrals": {"score": 0.0, "std": 0.0, "n": 2}},
            "per_theme_metrics": {"theme:emergency_referrals": m},
            "judge_failures": failures, "n_criteria": 10 * len(rows),
            "per_example": {p: {"norm": 0.2, **{k: e[k] for k in ("score", "hit_rate", "pitfall_rate", "tokens",
                                                                    "words", "truncated")}}
                            for p, e in rows.items()}}


def new_report(shift: float, failures: int = 0, judge: dict | None = None) -> dict:
    """Base and trained torch builds, every clipped score 0, the trained one ``shift`` higher in raw points."""
    base = {f"p{i}": qm.example_metrics([5, 5, -10], [i % 2, 0, 1], "word " * 40, 80, 80) for i in range(12)}
    hits = [1 if shift > 0 else i % 2 for i in range(12)]
    trained = {f"p{i}": qm.example_metrics([5, 5, -10], [hits[i], 0, 1], "word " * 30, 60, 80) for i in range(12)}
    targets = []
    for group, rows in (("base", base), ("trained", trained)):
        t = target(group, "torch-fp32", "hf", 0.0, 10.0, {})
        t["quality"] = quality_from(rows, failures if group == "trained" else 0)
        targets.append(t)
    cfg = BenchConfig(manifests=[manifest_ref("base=a"), manifest_ref("trained=b")])
    return {"suite": "pipeline", "created": "now", "threads": 2, "targets": targets,
            "machine": {"cpu_info": "cpu", "cores_physical": 2, "gpu_info": "", "bandwidth_bytes_s": 3e10},
            "judge": judge or {"name": "proxy judge", "fingerprint": "proxy/v9", "config": {"backend": "proxy"}},
            "heart_subset": {"rule": "heart-keywords-v1", "split": "eval", "n_used": 12, "n_subset": 44,
                             "n_records": 500},
            "comparisons": compare_groups(cfg, targets)}


def test_first_three_lines_answer_did_training_help():
    md = render_markdown(new_report(shift=1)).splitlines()
    assert md[0].startswith("# edgemed bench")
    assert md[1].startswith("Did training help? Trained vs base (torch-fp32) on 12 held-out heart prompts: "
                            "unclipped score +0.250 (95% CI +")
    assert md[1].endswith("sign test p=0.03): helped.")  # 6 of 12 prompts up, none down: 2 / 2^6
    # beside it: the gain at equal length (all of it here: lengths differ by a constant), length, pitfalls
    assert md[2].startswith("At equal answer length: +0.250 (95% CI +0.125 to +0.375); answers −20.0 tokens; "
                            "pitfall rate +0.000")
    assert md[3] == "Graded by proxy judge (fingerprint `proxy/v9`; held-out accuracy not measured)."
    assert md[4].startswith("Warning: the proxy judge is a weak offline")


def test_no_change_reads_not_shown_to_help():
    md = render_markdown(new_report(shift=0)).splitlines()
    assert md[1].endswith("(95% CI +0.000 to +0.000, sign test p=1.00): not shown to help.")


def test_all_zero_and_judge_failed_lines():
    md = render_markdown(new_report(shift=1, failures=3))
    head = md.split("\n\n", 1)[0]
    assert "All clipped HealthBench scores are 0.000: compare the unclipped scores and hit rates below." in head
    assert "The judge failed on 3 of 240 criteria; those are skipped, not counted as not met." in head


def test_llm_judge_accuracy_and_no_proxy_warning():
    judge = {"name": "openai judge (qwen)", "fingerprint": "oa/1", "heldout_accuracy": 0.875,
             "config": {"backend": "openai"}}
    md = render_markdown(new_report(shift=1, judge=judge)).splitlines()
    assert md[3] == "Graded by openai judge (qwen) (fingerprint `oa/1`; held-out accuracy 0.88)."
    assert not any("proxy judge is a weak" in line for line in md)


def test_new_metric_tables_in_report_and_bench_json():
    report = new_report(shift=1)
    (c,) = report["comparisons"]
    assert set(c["metrics"]) == {"unclipped_score", "hit_rate", "pitfall_rate", "answer_tokens", "truncation",
                                 "length_controlled"}
    assert c["metrics"]["length_controlled"]["method"].startswith("intercept of the per-prompt score difference")
    assert c["metrics"]["answer_tokens"]["diff"] == -20 and c["metrics"]["pitfall_rate"]["diff"] == 0
    assert c["metrics"]["truncation"]["diff"] == -1  # every base answer hit the 80-token cap, no trained one
    md = render_markdown(report)
    assert "### Metrics that move at every scale" in md and "paper's keyword heuristic (no judge)" in md
    assert "0.362 → 0.502" in md and "### Per theme: hit rate of positive criteria" in md
    assert "| base/torch-fp32 | trained/torch-fp32 | hit rate (positive criteria) | 12 |" in md
    assert "| truncation rate (answer hit the cap) | 12 | 1.000 | 0.000 |" in md and "cut off less often" in md
    assert "| base/torch-fp32 | −0.750 [" in md  # the unclipped mean, below 0, with its CI


def test_old_bench_json_still_renders(report):
    # The fixture is an older bench.json: no metrics, no paper_keyword, comparisons without "metrics".
    for c in report["comparisons"]:
        c.pop("metrics", None)
    md = render_markdown(report).splitlines()
    assert md[1].startswith("Did training help? Trained vs base (gguf-q8_0) on 6 heart prompts: clipped score +0.400")
    assert "Metrics that move at every scale" not in "\n".join(md)


def test_cli_summary_says_the_same_lines(capsys):
    print_summary(new_report(shift=1, failures=3))
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("Did training help? Trained vs base (torch-fp32)")
    assert "All clipped HealthBench scores are 0.000" in out and "The judge failed on 3 of 240 criteria" in out


def test_kld_vs_size_plot_needs_held_out_fidelity(report, tmp_path):
    report["targets"][1]["parity"] = {"top1_agreement": 0.96, "heldout": {"kld_mean": 0.0063, "kld_mean_se": 0.0003}}
    names = [p.name for p in write_plots(parse_bench(report), tmp_path)]
    assert "kld_vs_size.png" in names and (tmp_path / "kld_vs_size.png").stat().st_size > 0
