"""onnxruntime runner: an ONNX build through ``edgemed.runtimes.ort_decoder`` (CPU EP; CUDA EP where present).

No torch, transformers or optimum: the session, its KV-cached greedy loop and the tokenizer
(``tokenizers`` + the folder's chat template in jinja2) are what a slim device install has, so the
full kit and ``edgemed bench device`` time the same code. Chat, prefill and decode follow the
PyTorch runner's ``generate`` semantics: prefill = one pass over the prompt up to the first new
token, decode = n single-token passes from a one-token context, answers stop at the tokenizer's EOS.
"""

from __future__ import annotations

import time
from typing import Any

from edgemed.bench.runners.base import Generation, Runner, timing_tokens


class OrtRunner(Runner):
    backend = "onnxruntime"

    def _load(self) -> None:
        from edgemed.models.folder_tokenizer import FolderTokenizer
        from edgemed.runtimes.onnxruntime import CUDA
        from edgemed.runtimes.ort_decoder import open_decoder

        self.decoder = open_decoder(self.target.path, self.threads, self.device_pref)
        self.tokenizer = FolderTokenizer(self.target.path)
        self.device = "cuda" if self.decoder.provider == CUDA else "cpu"

    @property
    def info(self) -> dict[str, Any]:
        return {"device": self.device, "n_threads": self.threads, "n_gpu_layers": 0,
                "execution_provider": self.decoder.provider, "onnx_file": self.decoder.file_name,
                "runtime_version": f"onnxruntime {self.decoder.version}"}

    def chat(self, messages, max_new_tokens, temperature=0.0, seed=0) -> Generation:
        ids = self.tokenizer.chat_ids(messages)
        t0 = time.perf_counter()
        new = self.decoder.generate(ids, max_new_tokens, self.tokenizer.eos_token_id, temperature, seed)
        seconds = time.perf_counter() - t0
        return Generation(self.tokenizer.decode(new).strip(), len(ids), len(new), seconds)

    def _timed(self, ids: list[int], new_tokens: int) -> float:
        t0 = time.perf_counter()
        self.decoder.generate(ids, new_tokens)  # no EOS: exactly new_tokens forward passes
        return time.perf_counter() - t0

    def prefill(self, n_prompt: int) -> float:
        return self._timed(timing_tokens(n_prompt, self.tokenizer.vocab_size), 1)

    def decode(self, n_gen: int) -> float:
        bos = self.tokenizer.bos_token_id
        return self._timed([bos if bos is not None else timing_tokens(1, self.tokenizer.vocab_size)[0]], n_gen)

    def close(self) -> None:
        self.decoder = None
