"""manifest.json: round trip, and validation errors that name the field."""

from __future__ import annotations

import json

import pytest

from edgemed.errors import DataError
from edgemed.export.manifest import Artifact, Manifest, Parity, Source, artifact_digest, load_manifest


def _manifest(tmp_path):
    m = Manifest(tmp_path / "manifest.json", Source("default", "/m", "ab" * 32, "LlamaForCausalLM", 134515008),
                 {"onnxruntime": "1.31.1"})
    (tmp_path / "onnx-int8").mkdir()
    (tmp_path / "onnx-int8" / "model.onnx").write_bytes(b"onnx")
    m.put(Artifact("onnx-int8", "onnx", "int8", "onnx-int8", 4, artifact_digest(tmp_path / "onnx-int8"),
                   "passed", Parity(True, 0.97, 0.02, 12.5, 8, {"top1_agreement": 0.8}, True),
                   runtime={"execution_provider": "CPUExecutionProvider"}))
    m.write()
    return m


def test_round_trip(tmp_path):
    m = _manifest(tmp_path)
    back = load_manifest(tmp_path)
    assert back.to_dict() == m.to_dict()
    a = back.artifact("onnx-int8")
    assert a.abspath == tmp_path / "onnx-int8" and a.parity.top1_agreement == 0.97
    assert artifact_digest(a.abspath) == a.sha256
    assert json.loads((tmp_path / "manifest.json").read_text())["created"]


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["artifacts"][0].update(quant="int3"), "artifacts[0].quant"),
    (lambda d: d["artifacts"][0].update(format="tflite"), "artifacts[0].format"),
    (lambda d: d["artifacts"][0].update(path="/abs/model.onnx"), "artifacts[0].path"),
    (lambda d: d["artifacts"][0].update(bytes="4"), "artifacts[0].bytes"),
    (lambda d: d["artifacts"][0]["parity"].pop("kl_mean"), "artifacts[0].parity.kl_mean"),
    (lambda d: d["source"].pop("sha256"), "source.sha256"),
    (lambda d: d.update(schema_version=2), "schema_version"),
])
def test_bad_fields_are_named(tmp_path, edit, field):
    _manifest(tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    edit(raw)
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(DataError) as e:
        load_manifest(tmp_path)
    assert field in str(e.value) and "manifest.json" in str(e.value)


def test_missing_and_broken(tmp_path):
    with pytest.raises(DataError, match="no export manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_held_out_figures_and_undecided_status_round_trip(tmp_path):
    import numpy as np

    from edgemed.export.fidelity import PositionFigures, summarize
    from edgemed.export.parity import judge

    m = _manifest(tmp_path)
    a = m.artifact("onnx-int8")
    n = 4096
    same_top = np.arange(n) < round(0.803 * n)  # 0.803: its interval straddles the bound 0.80
    a.parity.heldout = summarize(PositionFigures(np.full(n, 0.1), np.zeros(n), same_top)).rounded()
    a.status = judge(a.parity, {"top1_agreement": 0.80, "kl_mean": 0.30})
    assert a.usable and not a.passed
    m.write()
    back = load_manifest(tmp_path).artifact("onnx-int8")
    assert back.status == "undecided" and back.parity.heldout == a.parity.heldout
    assert back.parity.gates["top1_agreement (held-out)"]["verdict"] == "undecided"
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert {"n_positions", "kld_mean", "kld_mean_se", "kld_median", "kld_p99", "kld_p999", "dp_mean",
            "same_top_p", "top1", "top1_ci_low"} <= set(raw["artifacts"][0]["parity"]["heldout"])
    raw["artifacts"][0]["parity"]["heldout"]["kld_p99"] = "high"
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"parity\.heldout\.kld_p99"):
        load_manifest(tmp_path)
