"""Tiny model files for the corruption tests: a GGUF, an ONNX with external data, a safetensors
checkpoint, and an export folder with a manifest over them. Each is a few KB and built in
milliseconds, so the whole corruption matrix runs in the default suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GGUF_NAME = "tiny-q8_0.gguf"


def tiny_gguf(path: Path, n_tokens: int = 300) -> Path:
    """A GGUF with a vocabulary (a string array, like a real one) and three tensors of two types."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_token_list([f"tok{i}" for i in range(n_tokens)])
    w.add_tensor("token_embd.weight", np.arange(n_tokens * 32, dtype=np.float32).reshape(n_tokens, 32))
    w.add_tensor("blk.0.attn_q.weight", np.ones((32, 32), np.float16))
    w.add_tensor("output_norm.weight", np.ones(32, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_onnx_model(with_producer: bool = True):
    """``y = x @ w + b`` as an onnx ModelProto (weights still inline)."""
    import onnx
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "w")
    b = numpy_helper.from_array(np.ones(8, np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"], name="mm")]
    if with_producer:
        nodes.append(helper.make_node("Add", ["xw", "b"], ["y"], name="add"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tiny_onnx(folder: Path, external: bool = True) -> Path:
    """An ONNX build folder: ``model.onnx`` plus, by default, ``model.onnx_data`` holding w and b."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_onnx_model(), str(folder / "model.onnx"), save_as_external_data=external,
              all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0)
    (folder / "config.json").write_text("{}")
    return folder


def tiny_safetensors(path: Path) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.ones((6, 4), np.float32), "b": np.zeros(4, np.float16)}, str(path))
    return path


def tiny_hf_folder(folder: Path) -> Path:
    """Enough of an HF model folder for the base-model row's checks (config.json + safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    tiny_safetensors(folder / "model.safetensors")
    return folder


def tiny_export(root: Path) -> Path:
    """An export folder with a q8_0 GGUF and an fp32 ONNX (external data), and its manifest.json."""
    from edgemed.export.manifest import Artifact, Manifest, Source, artifact_bytes, artifact_digest
    from edgemed.models import model_fingerprint

    src = tiny_hf_folder(root.parent / f"{root.name}-source")
    gguf_file = tiny_gguf(root / "gguf-q8_0" / GGUF_NAME)
    onnx_dir = tiny_onnx(root / "onnx-fp32")
    m = Manifest(root / "manifest.json", Source("tiny", str(src), model_fingerprint(src), "LlamaForCausalLM", 100),
                 {})
    m.put(Artifact("gguf-q8_0", "gguf", "q8_0", f"gguf-q8_0/{GGUF_NAME}", artifact_bytes(gguf_file),
                   artifact_digest(gguf_file), "passed"))
    m.put(Artifact("onnx-fp32", "onnx", "fp32", "onnx-fp32", artifact_bytes(onnx_dir), artifact_digest(onnx_dir),
                   "passed"))
    m.write()
    return m.path


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes in place (``dd conv=notrunc``): size unchanged, content not."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def cut(path: Path, size: int) -> None:
    """Keep only the first ``size`` bytes (an interrupted download or copy)."""
    path.write_bytes(path.read_bytes()[:size])
