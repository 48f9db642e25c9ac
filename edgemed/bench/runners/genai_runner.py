"""onnxruntime-genai runner: an ``onnx-genai`` build through ``edgemed.runtimes.genai`` (CPU).

Chat renders the folder's chat template with ``FolderTokenizer`` (as the onnxruntime runner does)
and lets the genai runtime's own loop pick the tokens; prefill and decode follow llama-bench:
prefill = one pass over an n-token prompt up to the first new token, decode = n single-token
passes from a one-token context, both without EOS stops.
"""

from __future__ import annotations

import time
from typing import Any

from edgemed.bench.runners.base import Generation, Runner, timing_tokens


class GenAIRunner(Runner):
    backend = "onnxruntime-genai"

    def _load(self) -> None:
        from edgemed.models.folder_tokenizer import FolderTokenizer
        from edgemed.runtimes import genai

        self.genai = genai
        self.m = genai.load(self.target.path, self.threads)
        self.tokenizer = FolderTokenizer(self.target.path)

    @property
    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "n_threads": self.threads, "n_gpu_layers": 0,
                "execution_provider": "CPUExecutionProvider",
                "runtime_version": f"onnxruntime-genai {self.m.version}"}

    def chat(self, messages, max_new_tokens, temperature=0.0, seed=0) -> Generation:
        ids = self.tokenizer.chat_ids(messages)
        eos = self.tokenizer.eos_token_id
        t0 = time.perf_counter()
        new = self.genai.generate(self.m, ids, max_new_tokens, [eos] if eos is not None else None,
                                  temperature, seed)
        seconds = time.perf_counter() - t0
        return Generation(self.tokenizer.decode(new).strip(), len(ids), len(new), seconds)

    def _timed(self, ids: list[int], new_tokens: int) -> float:
        t0 = time.perf_counter()
        self.genai.generate(self.m, ids, new_tokens)
        return time.perf_counter() - t0

    def prefill(self, n_prompt: int) -> float:
        return self._timed(timing_tokens(n_prompt, self.m.vocab_size), 1)

    def decode(self, n_gen: int) -> float:
        bos = self.tokenizer.bos_token_id
        first = bos if bos is not None else timing_tokens(1, self.m.vocab_size)[0]
        # one pass for the first token, then n_gen - 1 single-token steps: n_gen passes in all
        return self._timed([first], n_gen - 1)

    def close(self) -> None:
        self.m = None
