"""The run's report.md and terminal summary answer "did training help?" first, from a hand-made bench.json."""

from __future__ import annotations

import json
from types import SimpleNamespace

from edgemed.bench.report.markdown import render_markdown
from edgemed.pipeline.report import print_summary, write_report


def paired(diff, lo, hi, p, n=10):
    return {"n": n, "mean_a": 0.1, "mean_b": 0.1 + diff, "diff": diff, "ci_low": lo, "ci_high": hi,
            "n_up": 6, "n_down": 3, "n_tie": 1, "sign_p": p}


def build(group, unclipped, failures=0):
    return {"label": f"{group}/torch-fp32", "group": group, "name": "torch-fp32", "format": "hf", "quant": "fp32",
            "backend": "torch", "bytes": 2**28, "status": "passed", "speed_ratios": {},
            "quality": {"healthbench": {"score": 0.0, "std": 0.0, "n": 10, "n_excluded": 0},
                        "metrics": {"n": 10, "unclipped": unclipped, "unclipped_ci_low": unclipped - 0.1,
                                    "unclipped_ci_high": unclipped + 0.1, "hit_rate": 0.3, "pitfall_rate": 0.5},
                        "paper": {"accuracy": 0.1, "f1": 0.18, "ci_low": 0.0, "ci_high": 0.3},
                        "per_axis": {}, "per_theme": {}, "judge_failures": failures, "n_criteria": 100}}


def bench_json(judge=None, **comparison):
    c = {"a": "base/torch-fp32", "b": "trained/torch-fp32", "n": 10, "diff": 0.0, "diff_ci_low": 0.0,
         "diff_ci_high": 0.0, "bootstrap_p": 1.0, "score_a": 0.0, "score_b": 0.0, "a_only_pass": 0,
         "b_only_pass": 0, "mcnemar_p": 1.0, **comparison}
    return {"suite": "pipeline", "created": "now", "threads": 2,
            "machine": {"cpu_info": "cpu", "cores_physical": 2, "gpu_info": "", "bandwidth_bytes_s": 3e10},
            "judge": judge or {"name": "proxy judge", "fingerprint": "proxy/v3", "config": {"backend": "proxy"}},
            "heart_subset": {"rule": "heart-keywords-v1", "split": "eval", "n_used": 10, "n_subset": 44,
                             "n_records": 500},
            "targets": [build("base", -0.4), build("trained", -0.3, failures=2)], "comparisons": [c]}


def make_run(tmp_path, bench: dict | None, corrupt: bool = False):
    root = tmp_path / "runs" / "tiny"
    (root / "bench").mkdir(parents=True)
    if bench is not None:
        (root / "bench" / "bench.json").write_text("{oops" if corrupt else json.dumps(bench), encoding="utf-8")
        (root / "bench" / "report.md").write_text(render_markdown(bench), encoding="utf-8")
    cfg = SimpleNamespace(root=root, name="tiny", model="default", stages=["train", "bench"])
    state = SimpleNamespace(stages={"bench": {"wall_s": 12.0, "finished": "now"}})
    return cfg, state


def test_first_three_lines_answer_the_question(tmp_path):
    bench = bench_json(metrics={"unclipped_score": paired(0.041, -0.010, 0.092, 0.31)})
    cfg, state = make_run(tmp_path, bench)
    text = write_report(cfg, state).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# edgemed run `tiny`"
    assert lines[1] == ("Did training help? Trained vs base (torch-fp32) on 10 held-out heart prompts: unclipped "
                        "score +0.041 (95% CI −0.010 to +0.092, sign test p=0.31): not shown to help.")
    # a short run that cannot decide points to the recorded demo, which can
    assert lines[2].startswith("This run is too short to decide; `edgemed run --config pipeline_demo`")
    assert lines[3] == "Graded by proxy judge (fingerprint `proxy/v3`; held-out accuracy not measured)."
    assert lines[4].startswith("Warning: the proxy judge is a weak offline")
    assert "All clipped HealthBench scores are 0.000" in text
    assert "The judge failed on 2 of 200 criteria; those are skipped, not counted as not met." in text
    assert text.count("Did training help?") == 1  # the embedded bench report doesn't repeat it
    assert "## edgemed bench: pipeline suite" in text  # ... but its tables are still there


def test_a_ci_above_zero_reads_helped_and_llm_judge_accuracy(tmp_path):
    judge = {"name": "openai judge (qwen)", "fingerprint": "oa/2", "heldout_accuracy": 0.9,
             "config": {"backend": "openai"}}
    bench = bench_json(judge, metrics={"unclipped_score": paired(0.12, 0.03, 0.2, 0.004)})
    lines = write_report(*make_run(tmp_path, bench)).read_text(encoding="utf-8").splitlines()
    assert lines[1].endswith("(95% CI +0.030 to +0.200, sign test p=0.004): helped.")
    assert lines[2] == "Graded by openai judge (qwen) (fingerprint `oa/2`; held-out accuracy 0.90)."
    assert "proxy judge is a weak" not in "\n".join(lines)


def test_old_bench_json_without_new_fields(tmp_path):
    bench = bench_json(diff=0.05, diff_ci_low=-0.02, diff_ci_high=0.1, bootstrap_p=0.4)
    for t in bench["targets"]:
        del t["quality"]["metrics"]
    lines = write_report(*make_run(tmp_path, bench)).read_text(encoding="utf-8").splitlines()
    assert lines[1].endswith("clipped score +0.050 (95% CI −0.020 to +0.100, bootstrap p=0.40): not shown to help.")


def test_no_or_corrupt_bench_json_still_writes_a_report(tmp_path):
    lines = write_report(*make_run(tmp_path / "a", None)).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# edgemed run `tiny`" and not any("Did training help" in x for x in lines)
    lines = write_report(*make_run(tmp_path / "b", bench_json(), corrupt=True)).read_text(encoding="utf-8")
    assert lines.startswith("# edgemed run `tiny`")


def test_terminal_summary_says_the_same_line(tmp_path, capsys):
    bench = bench_json(metrics={"unclipped_score": paired(0.041, -0.010, 0.092, 0.31)})
    cfg, state = make_run(tmp_path, bench)
    report = write_report(cfg, state)
    print_summary(cfg, SimpleNamespace(ran=["bench"], skipped=["train"], wall_s=3.0, report=report))
    out = capsys.readouterr().out.splitlines()
    assert out[1] == report.read_text(encoding="utf-8").splitlines()[1]
    assert any("All clipped HealthBench scores are 0.000" in x for x in out)
