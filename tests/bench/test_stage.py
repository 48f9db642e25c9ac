"""The bench stage end to end on the default model: every runner, the reports, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgemed.bench.stage import run
from edgemed.io import read_jsonl_tolerant

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_run(export_manifest, tmp_path_factory, suite):
    out = tmp_path_factory.mktemp("bench-smoke")
    report = run(suite(out, manifests=[f"base={export_manifest}"]), progress=False)
    return out, report


def test_every_runner_produces_rows(smoke_run):
    out, report = smoke_run
    backends = {t["label"]: t["backend"] for t in report["targets"]}
    assert backends == {"base/torch-fp32": "torch", "base/onnx-fp32": "onnxruntime",
                        "reference/gguf-q4_1-shipped": "llama.cpp"}
    rows = report["rows"]
    assert sorted((r["target"], r["test"]) for r in rows) == sorted(
        (label, test) for label in backends for test in ("pp16", "tg4"))
    for r in rows:
        assert r["avg_ts"] > 0 and len(r["samples_ns"]) == 2 and r["n_threads"] == 1
        assert r["peak_rss_bytes"] > 50 * 2**20 and r["rss_isolated"] is True
        assert r["cpu_info"] and r["cores_physical"] >= 1 and "gpu_info" in r
        if r["n_gen"]:
            assert 0 < r["roofline_fraction"] and r["roofline_tok_s"] > 0
        else:
            assert r["ttft_ms"] == pytest.approx(r["avg_ns"] / 1e6)
    # A llama.cpp process never imported torch: its peak RSS is far below the torch build's.
    rss = {t["label"]: t["latency"]["peak_rss_bytes"] for t in report["targets"]}
    assert rss["reference/gguf-q4_1-shipped"] < rss["base/torch-fp32"]


def test_quality_is_graded_and_labelled(smoke_run):
    out, report = smoke_run
    ids = report["heart_subset"]["prompt_ids"]
    assert len(ids) == 2 and report["heart_subset"]["rule"] == "heart-keywords-v1"
    assert report["judge"]["name"] == "proxy judge" and report["judge"]["fingerprint"]
    for t in report["targets"]:
        q = t["quality"]
        assert q["n_graded"] == 2 and q["n_criteria"] > 0
        assert q["judge_failures"] == sum(m is None for g in read_jsonl_tolerant(out / "grades.jsonl")
                                          if g["target"] == t["label"] for m in g["met"])
        assert 0 <= q["healthbench"]["score"] <= 1 and q["healthbench"]["n"] + q["healthbench"]["n_excluded"] == 2
        assert q["paper"]["f1"] == pytest.approx(2 * q["paper"]["accuracy"] / (1 + q["paper"]["accuracy"]))
        assert set(q["per_example"]) == set(ids)
    gens = read_jsonl_tolerant(out / "generations.jsonl")
    assert len(gens) == 3 * 2 and all(g["response"] and 0 < g["n_gen"] <= 8 for g in gens)
    md = (out / "report.md").read_text()
    assert "proxy judge" in md and report["judge"]["fingerprint"] in md and "Paper's metrics" in md
    for name in ("quality_vs_speed.png", "size_vs_quality.png", "latency.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((out / "bench.json").read_text())["rows"] == json.loads(json.dumps(report["rows"]))


def test_rerun_recomputes_nothing(smoke_run, export_manifest, suite):
    out, first = smoke_run
    logs = {n: (out / n).read_bytes() for n in ("generations.jsonl", "grades.jsonl", "latency.jsonl")}
    t0 = time.perf_counter()
    again = run(suite(out, manifests=[f"base={export_manifest}"]), progress=False)
    assert {n: (out / n).read_bytes() for n in logs} == logs
    assert again["judge"]["stats"]["calls"] == 0
    assert [t["quality"]["healthbench"] for t in again["targets"]] == [t["quality"]["healthbench"] for t in first["targets"]]
    assert time.perf_counter() - t0 < 60  # no model was loaded


def test_base_vs_trained_comparison(smoke_run, export_manifest, suite):
    # The same export under two labels: identical bytes reuse the logged answers, and the paired
    # tests must find exactly no difference.
    out, _ = smoke_run
    report = run(suite(out, manifests=[f"base={export_manifest}", f"trained={export_manifest}"]),
                 progress=False)
    comps = {(c["a"], c["b"]): c for c in report["comparisons"]}
    assert set(comps) == {("base/torch-fp32", "trained/torch-fp32"), ("base/onnx-fp32", "trained/onnx-fp32")}
    for c in comps.values():
        assert c["n"] == 2 and c["diff"] == 0 and c["bootstrap_p"] == 1.0 and c["mcnemar_p"] == 1.0
    assert "Base vs trained" in (out / "report.md").read_text()


def test_kill_and_resume_loses_nothing(tmp_path, suite):
    out = tmp_path / "bench"
    cfg = suite(out, quality={"n_prompts": 4, "max_new_tokens": 48})
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    code = ("import json, sys; from edgemed.bench.stage import run; "
            "run(json.load(open(sys.argv[1])), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg_path)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gens = out / "generations.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and len(read_jsonl_tolerant(gens)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker subprocess too
    proc.wait()
    before = gens.read_bytes()
    assert 2 <= len(read_jsonl_tolerant(gens)) < 4, "the kill should land mid-generation"
    with open(gens, "ab") as f:  # what a kill during a write leaves behind
        f.write(b'{"target": "reference/gguf-q4_1-shipped", "key": "torn", "prom')

    report = run(cfg, progress=False)
    after = gens.read_bytes()
    assert after.startswith(before)  # finished answers kept byte for byte, never regenerated
    rows = read_jsonl_tolerant(gens)
    assert sorted(r["prompt_id"] for r in rows) == sorted(report["heart_subset"]["prompt_ids"])
    (t,) = report["targets"]
    assert t["quality"]["n_graded"] == 4 and {r["test"] for r in report["rows"]} == {"pp16", "tg4"}


def test_training_judge_and_packaged_test_split(tmp_path, suite):
    # The trainer's judge (here: the proxy at another rounding, so its fingerprint differs) grades
    # the same answers; the packaged test split is answered beside the HealthBench prompt.
    out = tmp_path / "bench"
    train_judge = {"backend": "proxy", "params": {"decimals": 2}, "cache_path": str(tmp_path / "train-judge.sqlite")}
    report = run(suite(out, quality={"n_prompts": 1, "packaged_split": "test"}, train_judge=train_judge),
                 progress=False)
    subset = report["heart_subset"]
    assert subset["n_healthbench"] == 1 and subset["packaged"] == {"source": "edgemed-heart", "split": "test", "n": 7}
    assert subset["n_used"] == 8 and len(subset["prompt_ids"]) == 8
    assert report["judge"]["train_judge"]["fingerprint"] != report["judge"]["fingerprint"]
    (t,) = report["targets"]
    q = t["quality"]
    assert q["n_graded"] == 8
    assert q["train_judge"]["fingerprint"] == report["judge"]["train_judge"]["fingerprint"]
    assert 0 <= q["train_judge"]["hit_rate"] <= 1 and 0 <= q["metrics"]["distinct_2"] <= 1
    assert 0 <= q["metrics"]["repeated_sentences"] <= 1
    judges = {g["judge"] for g in read_jsonl_tolerant(out / "grades.jsonl")}
    assert judges == {report["judge"]["fingerprint"], q["train_judge"]["fingerprint"]}
    md = (out / "report.md").read_text()
    assert "Reward-hacking diagnostics" in md and "plus 7 of the packaged heart rubrics' test split" in md

    # The same judge for both: nothing is graded twice and no training-judge column is filled.
    again = run(suite(tmp_path / "same", quality={"n_prompts": 1}, train_judge=suite(out)["judge"]), progress=False)
    # the same judge: named as the reward's judge, nothing graded twice
    assert again["judge"]["train_judge"]["same_as_eval"] is True
    assert "train_judge" not in again["targets"][0]["quality"]


def test_llama_bench_times_each_gguf_right_after_its_worker(tmp_path, export_manifest, suite, monkeypatch):
    """The yardstick runs beside the kit's timing of the same build, not minutes later after every
    other build: a shared machine drifts, and the harness ratio compares the two rates."""
    from edgemed.bench import stage
    from edgemed.bench.latency import llama_bench
    from edgemed.bench.report import assemble

    calls = []
    monkeypatch.setattr(stage, "run_worker", lambda cfg, target, *a, **k: calls.append(("kit", target.label)))
    monkeypatch.setattr(llama_bench, "run", lambda target, *a, **k: calls.append(("llama-bench", target.label)))
    monkeypatch.setattr(stage, "grade_and_score", lambda *a, **k: ({}, {}))
    monkeypatch.setattr(assemble, "build_report", lambda *a, **k: {"targets": []})
    monkeypatch.setattr(assemble, "write_report", lambda *a, **k: None)
    cfg = suite(tmp_path / "b", manifests=[f"base={export_manifest}"], quality={"enabled": False},
                latency={"llama_bench": True})
    stage.run(cfg, progress=False)
    labels = [label for _, label in calls if _ == "kit"]
    assert len(labels) == 3 and calls == [c for label in labels for c in (("kit", label), ("llama-bench", label))]
