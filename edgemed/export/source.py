"""The source model of an export: resolve it, check it at the door, describe it for the manifest.

A truncated safetensors file or a config without ``architectures`` would otherwise surface minutes
later as a converter traceback; here it is one line naming the file. The architecture is checked
against what each requested format's tool supports before anything is built.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from edgemed.errors import ModelError
from edgemed.export.manifest import Source


def describe_source(spec: str) -> Source:
    """Resolve ``spec``, validate the folder, and return its manifest description.

    >>> describe_source("default").architecture  # doctest: +SKIP
    'LlamaForCausalLM'
    """
    from edgemed.models import model_fingerprint, resolve_model

    path = resolve_model(spec)
    config = read_config(path)
    n_params = count_safetensors_params(path)
    return Source(spec=str(spec), path=str(path), sha256=model_fingerprint(path),
                  architecture=config["architectures"][0], n_params=n_params)


def read_config(model_dir: Path) -> dict:
    """``config.json`` with the fields the export needs, or a ModelError naming the file.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text('{"model_type": "llama"}')
    >>> read_config(d)
    Traceback (most recent call last):
    ...
    edgemed.errors.ModelError: .../config.json: architectures: missing (cannot tell which model class to export)
    """
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a Hugging Face model folder)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: not valid JSON ({e})") from None
    archs = config.get("architectures") if isinstance(config, dict) else None
    if not archs or not isinstance(archs, list) or not isinstance(archs[0], str):
        raise ModelError(f"{path}: architectures: missing (cannot tell which model class to export)")
    if not isinstance(config.get("model_type"), str):
        raise ModelError(f"{path}: model_type: missing")
    return config


def count_safetensors_params(model_dir: Path) -> int:
    """Parameter count from the safetensors headers, checking each file is complete.

    Reads only the JSON headers (no tensor data), so it is instant even for large models.

    >>> import tempfile, numpy as np
    >>> from safetensors.numpy import save_file
    >>> d = Path(tempfile.mkdtemp())
    >>> save_file({"w": np.zeros((4, 3), np.float32), "b": np.zeros(3, np.float32)}, d / "model.safetensors")
    >>> count_safetensors_params(d)
    15
    >>> with open(d / "model.safetensors", "ab") as f: _ = f.write(b"junk")
    >>> count_safetensors_params(d)
    Traceback (most recent call last):
    ...
    edgemed.errors.ModelError: .../model.safetensors: truncated or corrupted (184 bytes, header says 180)
    """
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ModelError(f"{model_dir}: no *.safetensors weights (save the merged model with "
                         "safe_serialization=True)")
    total = 0
    for f in files:
        size = f.stat().st_size
        try:
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n > min(size, 100 << 20):
                    raise ValueError("header length beyond the file")
                header = json.loads(fh.read(n))
        except (struct.error, ValueError, UnicodeDecodeError) as e:
            raise ModelError(f"{f}: corrupted safetensors header ({e})") from None
        end = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            numel = 1
            for d in info["shape"]:
                numel *= d
            total += numel
            end = max(end, info["data_offsets"][1])
        if 8 + n + end != size:
            raise ModelError(f"{f}: truncated or corrupted ({size} bytes, header says {8 + n + end})")
    return total


def check_supported(source: Source, config: dict, formats: set[str]) -> None:
    """Fail before building anything when a requested format's tool cannot handle the model."""
    where = f"{source.path}/config.json"
    if "gguf" in formats:
        from edgemed.export import converter

        if source.architecture not in converter.supported_architectures():
            raise ModelError(f"{where}: architecture {source.architecture} is not supported by "
                             f"llama.cpp's converter (llama-cpp-python {converter.llama_cpp_version()})")
    if "onnx" in formats:
        import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
        from optimum.exporters.tasks import TasksManager

        try:
            tasks = TasksManager.get_supported_tasks_for_model_type(
                config["model_type"], exporter="onnx", library_name="transformers")
        except KeyError:
            tasks = {}
        if "text-generation-with-past" not in tasks:
            raise ModelError(f"{where}: model_type {config['model_type']} is not supported by "
                             "optimum's ONNX exporter for text generation with past KV cache")
