"""The typed bench.json reader: files of this schema version and older ones read; an unknown version,
a wrong shape or a broken file is one line naming the file."""

from __future__ import annotations

import json

import pytest

from edgemed.bench.report import assemble, results
from edgemed.bench.report.headline import headline_lines
from edgemed.bench.report.results import SCHEMA_VERSION, parse_bench, read_bench
from edgemed.errors import DataError


def old_bench_json() -> dict:
    """A bench.json as early versions wrote it: no schema_version, no per-build metrics, no paired
    per-prompt tests in the comparison, no held-out accuracy, no packaged prompts."""
    build = lambda group, score: {  # noqa: E731
        "label": f"{group}/gguf-q8_0", "group": group, "name": "gguf-q8_0", "format": "gguf", "quant": "q8_0",
        "backend": "llama.cpp", "bytes": 2**27, "status": "passed", "speed_ratios": {},
        "quality": {"healthbench": {"score": score, "std": 0.02, "n": 6, "n_excluded": 0},
                    "paper": {"accuracy": 0.5, "f1": 2 / 3, "ci_low": 0.1, "ci_high": 0.9},
                    "per_axis": {}, "per_theme": {}, "judge_failures": 0, "n_criteria": 30},
        "latency": {"tg": {"test": "tg128", "avg_ts": 40.0, "stddev_ts": 0.5}, "peak_rss_bytes": 2**28}}
    return {"created": "2026-11-22T00:10:00+00:00", "suite": "smoke", "threads": 2,
            "machine": {"cpu_info": "cpu", "cores_physical": 2, "gpu_info": ""},
            "judge": {"name": "proxy judge", "fingerprint": "proxy/v1", "stats": {}},
            "heart_subset": {"rule": "heart-keywords-v1", "split": "all", "n_used": 6, "n_subset": 44,
                             "n_records": 500},
            "targets": [build("base", 0.2), build("trained", 0.6)],
            "comparisons": [{"a": "base/gguf-q8_0", "b": "trained/gguf-q8_0", "n": 6, "score_a": 0.2, "score_b": 0.6,
                             "diff": 0.4, "diff_ci_low": 0.3, "diff_ci_high": 0.5, "bootstrap_p": 0.0,
                             "a_only_pass": 0, "b_only_pass": 6, "mcnemar_p": 0.03}]}


def test_writer_and_reader_share_the_schema_version():
    assert assemble.SCHEMA_VERSION is results.SCHEMA_VERSION == 1


def test_what_write_report_writes_reads_back(tmp_path):
    report = {**old_bench_json(), "schema_version": assemble.SCHEMA_VERSION}
    assemble.write_report(report, tmp_path)
    r = read_bench(tmp_path / "bench.json")
    assert r.schema_version == SCHEMA_VERSION and r.plots == report["plots"] and "latency.png" in r.plots
    assert [t.label for t in r.targets] == ["base/gguf-q8_0", "trained/gguf-q8_0"]
    assert "| base/gguf-q8_0 | llama.cpp | 128 |" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_an_old_bench_json_without_a_version_still_reads(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(old_bench_json()), encoding="utf-8")
    r = read_bench(path)
    assert r.schema_version is None and r.suite == "smoke" and r.judge.name == "proxy judge"
    base, trained = r.targets
    assert (base.label, base.quality.score, trained.latency.tg.avg_ts) == ("base/gguf-q8_0", 0.2, 40.0)
    assert base.quality.metrics.unclipped is None and base.latency.pp is None  # fields it lacks: None
    assert r.comparisons[0].paired("unclipped_score") is None and r.comparisons[0].independent == []
    assert headline_lines(r)[0].startswith("Did training help? Trained vs base (gguf-q8_0) on 6 heart prompts: "
                                           "clipped score +0.400")


def test_a_file_of_this_version_reads(tmp_path):
    data = {**old_bench_json(), "schema_version": SCHEMA_VERSION}
    data["comparisons"][0]["metrics"] = {"unclipped_score": {"n": 6, "diff": 0.1, "ci_low": 0.02, "ci_high": 0.2,
                                                             "sign_p": 0.03}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    r = read_bench(path)
    assert r.schema_version == SCHEMA_VERSION and r.comparisons[0].paired("unclipped_score").ci_low == 0.02
    assert headline_lines(r)[0].endswith("(95% CI +0.020 to +0.200, sign test p=0.03): helped.")


@pytest.mark.parametrize("version", [2, 0, "1", True, [1]])
def test_an_unknown_schema_version_is_one_line_naming_the_file_and_the_version(tmp_path, version):
    path = tmp_path / "runs" / "x" / "bench.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**old_bench_json(), "schema_version": version}), encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_bench(path)
    text = str(e.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(f"{path}: schema_version {version!r} is not one this edgemed reads")


@pytest.mark.parametrize("content, why", [
    ('{"targets": 5}', "unexpected content: TypeError: targets: expected a list, got int"),
    ('{"targets": [{"quality": [1]}]}', "unexpected content: TypeError: quality: expected an object, got list"),
    ("[1, 2]", "unexpected content: TypeError: a JSON list, not an object"),
    ("{oops", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
])
def test_a_broken_file_is_one_line_naming_it(tmp_path, content, why):
    path = tmp_path / "bench.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_bench(path)
    assert str(e.value) == f"{path}: {why}"


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="bench.json: No such file"):
        read_bench(tmp_path / "bench.json")


def test_parse_bench_reads_what_the_writer_returns_in_memory():
    r = parse_bench({"schema_version": 1, "targets": [{"label": "b/x", "quality": None, "latency": {}}],
                     "comparisons": []})
    assert r.targets[0].quality is None and r.targets[0].latency is None and r.targets[0].bytes == 0


def test_the_pipeline_report_names_a_too_new_bench_json(tmp_path):
    from types import SimpleNamespace

    from edgemed.pipeline.report import broken_inputs, write_report

    root = tmp_path / "r"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "bench.json").write_text(json.dumps({**old_bench_json(), "schema_version": 7}))
    text = write_report(SimpleNamespace(root=root, name="r", model="default", stages=["bench"]),
                        SimpleNamespace(stages={})).read_text()
    assert "Broken input: `bench/bench.json` cannot be read (schema_version 7 is not one this edgemed reads" in text
    assert len(broken_inputs(root)) == 1
