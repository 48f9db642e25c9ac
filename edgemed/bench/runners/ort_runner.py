"""onnxruntime runner: an optimum ONNX folder through ``ORTModelForCausalLM`` (CPU EP; CUDA EP where present)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgemed.bench.runners.generate import GenerateRunner
from edgemed.errors import ModelError


class OrtRunner(GenerateRunner):
    backend = "onnxruntime"

    def _load(self) -> None:
        import onnxruntime as ort
        import torch
        from optimum.onnxruntime import ORTModelForCausalLM
        from transformers import AutoTokenizer

        folder = Path(self.target.path)
        files = sorted(p.name for p in folder.glob("*.onnx"))
        if not files:
            raise ModelError(f"{folder}: no .onnx file in the ONNX artifact folder")
        # A folder from the export stage holds one graph; if it holds several, the quantized one
        # is the build the manifest describes.
        file_name = files[0] if len(files) == 1 else next((f for f in files if "quant" in f), files[0])
        use_cuda = self.device_pref == "auto" and "CUDAExecutionProvider" in ort.get_available_providers()
        self.provider = "CUDAExecutionProvider" if use_cuda else "CPUExecutionProvider"
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        torch.set_num_threads(self.threads)  # generate()'s logits processing runs in torch
        self.torch_device = "cuda" if use_cuda else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = ORTModelForCausalLM.from_pretrained(folder, file_name=file_name, provider=self.provider,
                                                         session_options=so, use_cache=True,
                                                         use_io_binding=use_cuda)
        self.file_name = file_name

    @property
    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"device": self.torch_device, "n_threads": self.threads, "n_gpu_layers": 0,
                "execution_provider": self.provider, "onnx_file": self.file_name,
                "runtime_version": f"onnxruntime {ort.__version__}"}
