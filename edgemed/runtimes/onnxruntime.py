"""ONNX Runtime sessions for ONNX builds: how one is opened is decided here once, for parity and bench.

An export's ONNX artifact is a folder that ``ORTModelForCausalLM`` loads as is. Which graph file,
which execution provider, how many threads and the OpenMP wait policy are decided here, so export's
parity check (:func:`load`, through optimum) and the bench's onnxruntime runner
(``edgemed.runtimes.ort_decoder``, a bare session) always run the same session configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemed.errors import EnvironmentFailure, ModelError

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@dataclass
class OrtModel:
    """A loaded ONNX build: optimum's model, its tokenizer, and how the session runs."""

    model: Any
    tokenizer: Any
    file_name: str
    provider: str
    threads: int
    version: str

    @property
    def device(self) -> str:
        """Where torch-side tensors (inputs, logits processing) live for this session."""
        return "cuda" if self.provider == CUDA else "cpu"


def graph_file(folder: Path) -> str:
    """The ``.onnx`` graph of an artifact folder: its only one, else the quantized one.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for n in ("model.onnx", "model_quantized.onnx"): _ = (d / n).write_bytes(b"")
    >>> graph_file(d)
    'model_quantized.onnx'
    """
    files = sorted(p.name for p in Path(folder).glob("*.onnx"))
    if not files:
        raise ModelError(f"{folder}: no .onnx file in the ONNX artifact folder")
    # A folder from the export stage holds one graph; if it holds several, the quantized one is
    # the build the manifest describes.
    return files[0] if len(files) == 1 else next((f for f in files if "quant" in f), files[0])


def pick_provider(device: str, available: list[str]) -> str:
    """CUDA EP when ``device`` is ``auto`` and onnxruntime has it, else the CPU EP.

    >>> pick_provider("auto", [CUDA, CPU]), pick_provider("cpu", [CUDA, CPU]), pick_provider("auto", [CPU])
    ('CUDAExecutionProvider', 'CPUExecutionProvider', 'CPUExecutionProvider')
    """
    return CUDA if device == "auto" and CUDA in available else CPU


def session_options(threads: int):
    """``intra_op`` threads = ``threads``; one inter-op thread (a decoder graph is a chain of ops).

    >>> session_options(2).intra_op_num_threads
    2
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def import_onnxruntime():
    """``import onnxruntime`` with the OpenMP wait policy set first; a clear line when it is missing."""
    from edgemed.runtimes.llamacpp import set_wait_policy

    set_wait_policy()
    try:
        import onnxruntime
    except ImportError as e:
        raise EnvironmentFailure(f"ONNX Runtime unavailable ({e}); reinstall with `make install`") from None
    return onnxruntime


def load(folder: str | Path, threads: int = 2, device: str = "cpu") -> OrtModel:
    """Open an ONNX artifact folder: the graph, its tokenizer, a session with ``threads`` threads.

    ``device``: ``cpu``, or ``auto`` for the CUDA EP where onnxruntime offers it (I/O binding on).
    """
    ort = import_onnxruntime()
    try:
        import torch
        from optimum.onnxruntime import ORTModelForCausalLM
        from transformers import AutoTokenizer
    except ImportError as e:
        raise EnvironmentFailure(f"optimum's ONNX Runtime support unavailable ({e}); reinstall with "
                                 "`make install`") from None
    folder = Path(folder)
    file_name = graph_file(folder)
    provider = pick_provider(device, ort.get_available_providers())
    options = session_options(threads)
    torch.set_num_threads(threads)  # generate()'s logits processing runs in torch
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = ORTModelForCausalLM.from_pretrained(folder, file_name=file_name, provider=provider,
                                                session_options=options, use_cache=True,
                                                use_io_binding=provider == CUDA)
    return OrtModel(model, tokenizer, file_name, provider, threads, ort.__version__)
