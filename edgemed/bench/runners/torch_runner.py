"""PyTorch runner: the source HF folder through ``edgemed.models.load_model`` (CPU; CUDA where present)."""

from __future__ import annotations

from typing import Any

from edgemed.bench.runners.generate import GenerateRunner


class TorchRunner(GenerateRunner):
    backend = "torch"

    def _load(self) -> None:
        import torch

        from edgemed.models import load_model  # the loader export's parity reference uses too

        torch.set_num_threads(self.threads)
        self.torch_device = "cuda" if self.device_pref == "auto" and torch.cuda.is_available() else "cpu"
        dtype = "float32" if self.target.quant == "fp32" else "float16"
        self.model, self.tokenizer = load_model(self.target.path, dtype=dtype)
        self.model.to(self.torch_device)

    @property
    def info(self) -> dict[str, Any]:
        import torch

        return {"device": self.torch_device, "n_threads": self.threads, "n_gpu_layers": 0,
                "execution_provider": None, "runtime_version": f"torch {torch.__version__}"}
