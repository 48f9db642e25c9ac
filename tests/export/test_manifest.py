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
