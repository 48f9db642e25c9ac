"""llama.cpp runner: a GGUF through llama-cpp-python (CPU; all layers offloaded where a GPU backend exists).

Chat uses ``create_chat_completion``, so the chat template is the one inside the GGUF; the timing
tests call ``Llama.eval`` directly (one batched decode for prefill, single tokens for decode),
which is what llama-bench times, without the sampler or detokeniser in the loop.

Flash attention is on, as llama-bench, llama-cli and llama-server run by default (``-fa auto``,
which the CPU backend resolves to on). llama-cpp-python's ``Llama`` defaults to off and has no
"auto": left off, this runner decoded 8–17 % slower than llama-bench on the same file (issue 27).
"""

from __future__ import annotations

import time
from typing import Any

from edgemed.bench.runners.base import Generation, Runner, timing_tokens

N_CTX = 4096  # heart prompts plus a 256-token answer fit; pp512 + tg128 too
FLASH_ATTN = True  # llama.cpp's tools default (-fa auto: on for CPU and for GPUs that support it)


class LlamaCppRunner(Runner):
    backend = "llama.cpp"

    def _load(self) -> None:
        from edgemed.runtimes import llamacpp as runtime

        llama_cpp = runtime.import_llama_cpp()
        self.offload = self.device_pref == "auto" and bool(llama_cpp.llama_supports_gpu_offload())
        path, extra = self.target.path, {}
        if self.target.format == "gguf-lora":  # base + adapter, applied at load like on the device
            from edgemed.export.lora import lora_files

            base, adapter = lora_files(path)
            path, extra = base, {"lora_path": str(adapter)}
        self.llm = runtime.load(path, n_ctx=N_CTX, n_batch=512, n_threads=self.threads,
                                n_threads_batch=self.threads,
                                n_gpu_layers=self.n_gpu_layers if self.offload else 0, seed=0,
                                flash_attn=FLASH_ATTN, **extra)
        self.version = llama_cpp.__version__
        self.build = (runtime.build_info() or {}).get("flavour")  # portable, or the CPU variant loaded

    @property
    def info(self) -> dict[str, Any]:
        return {"device": "gpu" if self.offload else "cpu", "n_threads": self.threads,
                "n_gpu_layers": self.n_gpu_layers if self.offload else 0, "n_batch": 512, "flash_attn": FLASH_ATTN,
                "execution_provider": None, "runtime_version": f"llama-cpp-python {self.version}",
                "build": self.build}

    def chat(self, messages, max_new_tokens, temperature=0.0, seed=0) -> Generation:
        self.llm.reset()
        t0 = time.perf_counter()
        # temperature 0 selects llama.cpp's greedy sampler; repeat_penalty 1 keeps it plain argmax.
        out = self.llm.create_chat_completion(messages=messages, max_tokens=max_new_tokens,
                                              temperature=temperature, top_p=1.0, top_k=0, min_p=0.0,
                                              repeat_penalty=1.0, seed=seed)
        seconds = time.perf_counter() - t0
        usage = out.get("usage", {})
        return Generation((out["choices"][0]["message"]["content"] or "").strip(),
                          int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), seconds)

    def prefill(self, n_prompt: int) -> float:
        tokens = timing_tokens(n_prompt, self.llm.n_vocab())
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(tokens)
        return time.perf_counter() - t0

    def decode(self, n_gen: int) -> float:
        tokens = [self.llm.token_bos()] + timing_tokens(n_gen - 1, self.llm.n_vocab())
        self.llm.reset()
        t0 = time.perf_counter()
        for tok in tokens:
            self.llm.eval([tok])
        return time.perf_counter() - t0

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()
