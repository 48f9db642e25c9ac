"""Reports and config without loading any model: synthetic bench results through report.md and the plots."""

from __future__ import annotations

import pytest

from edgemed.bench.config import BenchConfig, load_config, manifest_ref
from edgemed.bench.plots import write_plots
from edgemed.bench.report import compare_groups, render_markdown
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
    report["plots"] = [p.name for p in write_plots(report, tmp_path)]
    assert report["plots"] == ["quality_vs_speed.png", "size_vs_quality.png", "latency.png"]
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
