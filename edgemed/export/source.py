"""The source model of an export: resolve it, check it at the door, describe it for the manifest.

A truncated safetensors file or a config without ``architectures`` would otherwise surface minutes
later as a converter traceback; here it is one line naming the file. The architecture is checked
against what each requested format's tool supports before anything is built.
"""

from __future__ import annotations

import json
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
    edgemed.integrity.CorruptFile: .../model.safetensors: 4 bytes after the last tensor (the header says the file ends at byte 180 of 184): ...
    """
    from edgemed.integrity.safetensors_file import check_safetensors

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ModelError(f"{model_dir}: no *.safetensors weights (save the merged model with "
                         "safe_serialization=True)")
    total = 0
    for f in files:
        for info in check_safetensors(f).values():
            numel = 1
            for d in info["shape"]:
                numel *= d
            total += numel
    return total


def check_supported(source: Source, config: dict, formats: set[str]) -> None:
    """Fail before building anything when a requested format's tool cannot handle the model."""
    where = f"{source.path}/config.json"
    if formats & {"gguf", "gguf-lora"}:
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
    if "onnx-genai" in formats:
        from edgemed.export import onnx_genai

        onnx_genai.require_genai()
        if source.architecture not in onnx_genai.SUPPORTED_ARCHITECTURES:
            raise ModelError(f"{where}: architecture {source.architecture} is not supported by "
                             f"onnxruntime-genai's model builder ({onnx_genai.GENAI_VERSION}); "
                             "use onnx:QUANT (optimum) instead")
