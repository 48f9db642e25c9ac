"""Runners for PyTorch, onnxruntime and llama.cpp behind one interface (``Runner``)."""

from __future__ import annotations

from edgemed.bench.runners.base import Generation, Runner, timing_tokens
from edgemed.bench.targets import Target


def open_runner(target: Target, threads: int, device: str = "auto", n_gpu_layers: int = -1) -> Runner:
    """Load ``target`` in the runtime its format needs; imports only that runtime.

    >>> from edgemed.bench.targets import Target
    >>> open_runner(Target("x", "x", "x", "tflite", "fp32", "/m", 1, 1, "", 1), 1)
    Traceback (most recent call last):
    ...
    ValueError: no runner for format 'tflite' (known: hf, onnx, onnx-genai, gguf)
    """
    if target.format == "hf":
        from edgemed.bench.runners.torch_runner import TorchRunner as cls
    elif target.format == "onnx":
        from edgemed.bench.runners.ort_runner import OrtRunner as cls
    elif target.format in ("gguf", "gguf-lora"):
        from edgemed.bench.runners.llamacpp_runner import LlamaCppRunner as cls
    elif target.format == "onnx-genai":
        from edgemed.bench.runners.genai_runner import GenAIRunner as cls
    else:
        raise ValueError(f"no runner for format {target.format!r} (known: hf, onnx, onnx-genai, gguf)")
    return cls(target, threads=threads, device=device, n_gpu_layers=n_gpu_layers)


__all__ = ["Generation", "Runner", "open_runner", "timing_tokens"]
