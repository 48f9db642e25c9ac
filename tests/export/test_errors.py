"""Bad inputs and failing disks: one clear error, and no half-written artifact under a final name."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from edgemed.cli import main
from edgemed.errors import ConfigError, EdgemedError, ModelError
from edgemed.export import stage
from edgemed.export.config import ExportConfig
from edgemed.export.manifest import load_manifest

QUICK = dict(n_prompts=1, tf_tokens=8, greedy_tokens=4, heldout_docs=2, allow_degraded=True)


def copy_model(src: Path, dst: Path) -> Path:
    """A private copy of a model folder that a test may damage."""
    shutil.copytree(src, dst)
    return dst


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="no such folder"):
        stage.run(ExportConfig(model=str(tmp_path / "nope"), out=str(tmp_path / "out"),
                               formats="gguf:q8_0"))


def test_truncated_weights(tiny_model_dir, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "out"
    with pytest.raises(ModelError, match=r"model\.safetensors: truncated at byte \d[\d,]* of \d"):
        stage.run(ExportConfig(model=str(model), out=str(out), formats="gguf:q8_0", **QUICK))
    assert _leftovers(out) == []


def test_garbage_config(tiny_model_dir, tmp_path):
    model = copy_model(tiny_model_dir, tmp_path / "model")
    (model / "config.json").write_text("{oops")
    with pytest.raises(ModelError, match=r"config\.json: not valid JSON"):
        stage.run(ExportConfig(model=str(model), out=str(tmp_path / "out"), formats="onnx:fp32"))


def test_unknown_quant_cli(tmp_path, capsys):
    assert main(["export", "--formats", "gguf:q3_k", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: unknown gguf quant 'q3_k' (known: f16, q8_0, q4_k_m, q5_k_m, q4_0, q3_k_m, q2_k)"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("formats, tool", [("gguf:q8_0", "llama.cpp's converter"),
                                           ("onnx:fp32", "optimum's ONNX exporter")])
def test_unsupported_architecture(tiny_model_dir, tmp_path, formats, tool):
    model = copy_model(tiny_model_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config.update(architectures=["HeartNetForCausalLM"], model_type="heartnet")
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    with pytest.raises(ModelError) as e:
        stage.run(ExportConfig(model=str(model), out=str(out), formats=formats, **QUICK))
    assert tool in str(e.value) and "config.json" in str(e.value)
    assert _leftovers(out) == []


def test_disk_full_during_onnx_build(tiny_model_dir, tmp_path, monkeypatch):
    from edgemed.export import onnx

    def full_disk(src, dst):
        (dst / "tokenizer.json").write_bytes(b'{"partial')
        raise OSError(errno.ENOSPC, "No space left on device", str(dst / "tokenizer.json"))

    monkeypatch.setattr(onnx, "copy_side_files", full_disk)
    out = tmp_path / "out"
    with pytest.raises(EdgemedError, match="onnx-int8: no space left on device") as e:
        stage.run(ExportConfig(model=str(tiny_model_dir), out=str(out),
                               formats="onnx:fp32,onnx:int8", **QUICK))
    assert "\n" not in str(e.value)
    # the finished fp32 build and its manifest entry survive; nothing of int8 does
    assert _leftovers(out) == ["manifest.json", "onnx-fp32"]
    assert [a.name for a in load_manifest(out).artifacts] == ["onnx-fp32"]


def test_quantizer_failure_leaves_nothing(tiny_model_dir, tmp_path, monkeypatch):
    import llama_cpp

    def failing_quantize(src, dst, params):
        Path(dst.decode()).write_bytes(b"GGUF half")  # what a full disk leaves mid-write
        return 1

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", failing_quantize)
    out = tmp_path / "out"
    with pytest.raises(EdgemedError, match="quantizer failed"):
        stage.run(ExportConfig(model=str(tiny_model_dir), out=str(out), formats="gguf:q8_0", **QUICK))
    assert _leftovers(out) == []


def test_parity_failure_exits_3_with_the_summary_on_stdout(tiny_model_dir, tmp_path, capsys):
    profile = tmp_path / "impossible.toml"
    # a KL bound below zero cannot be met: the artifact is built, marked failed, and the run fails
    profile.write_text('builds = ["gguf:f16"]\n[thresholds.f16]\nkl_mean = -1.0\n')
    out = tmp_path / "out"
    args = ["export", "--model", str(tiny_model_dir), "--profile", str(profile), "--out", str(out),
            "--n-prompts", "1", "--tf-tokens", "8", "--greedy-tokens", "4", "--heldout-docs", "2"]
    assert main(args + ["--json"]) == 3  # the build exists but is not faithful: not 2 (bad input)
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert [(a["artifact"], a["status"]) for a in summary["artifacts"]] == [("gguf-f16", "failed")]
    assert captured.err.strip().splitlines()[-1].startswith("error: parity below thresholds for gguf-f16")
    a = load_manifest(out).artifact("gguf-f16")
    assert a.status == "failed" and a.abspath.is_file() and a.parity.passed is False
    # --allow-degraded: skipped, re-judged, exit 0, the table on stdout like every stage's summary
    assert main(args + ["--allow-degraded"]) == 0
    captured = capsys.readouterr()
    assert "gguf-f16" in captured.out and "failed" in captured.out and "greedy match" in captured.out
