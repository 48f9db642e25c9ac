"""The part of the PyTorch and onnxruntime runners they share: transformers' ``generate``.

Both load a ``*ForCausalLM`` with the same tokenizer and generation API, so chat, prefill and
decode are written once here; subclasses only load the model and say where it runs.
"""

from __future__ import annotations

import time
from typing import Any

from edgemed.bench.runners.base import Generation, Runner, timing_tokens


class GenerateRunner(Runner):
    """Chat / prefill / decode through ``model.generate`` (self.model, self.tokenizer set by _load)."""

    model: Any
    tokenizer: Any

    def _generation_config(self, new_tokens: int, exact: bool, temperature: float = 0.0):
        from transformers import GenerationConfig

        eos = self.tokenizer.eos_token_id
        return GenerationConfig(
            max_new_tokens=new_tokens, min_new_tokens=new_tokens if exact else 0,
            do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
            top_p=None, top_k=None, pad_token_id=self.tokenizer.pad_token_id or eos, eos_token_id=eos,
            bos_token_id=self.tokenizer.bos_token_id)

    def _generate(self, input_ids, attention_mask, gen_config):
        import torch

        with torch.inference_mode():
            return self.model.generate(input_ids=input_ids.to(self.torch_device),
                                       attention_mask=attention_mask.to(self.torch_device),
                                       generation_config=gen_config)

    def chat(self, messages, max_new_tokens, temperature=0.0, seed=0) -> Generation:
        import torch

        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 return_tensors="pt", return_dict=True)
        if temperature > 0:
            torch.manual_seed(seed)
        t0 = time.perf_counter()
        out = self._generate(enc["input_ids"], enc["attention_mask"],
                             self._generation_config(max_new_tokens, False, temperature))
        seconds = time.perf_counter() - t0
        new = out[0, enc["input_ids"].shape[1]:]
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True).strip(),
                          int(enc["input_ids"].shape[1]), int(len(new)), seconds)

    def _timed(self, ids: list[int], new_tokens: int) -> float:
        import torch

        input_ids = torch.tensor([ids], dtype=torch.long)
        gen_config = self._generation_config(new_tokens, exact=True)
        self._sync()
        t0 = time.perf_counter()
        self._generate(input_ids, torch.ones_like(input_ids), gen_config)
        self._sync()
        return time.perf_counter() - t0

    def prefill(self, n_prompt: int) -> float:
        return self._timed(timing_tokens(n_prompt, len(self.tokenizer)), 1)

    def decode(self, n_gen: int) -> float:
        # generate() on a 1-token context runs n_gen forward passes of one token each: llama-bench's tg.
        bos = self.tokenizer.bos_token_id
        return self._timed([bos if bos is not None else timing_tokens(1, len(self.tokenizer))[0]], n_gen)

    torch_device: str = "cpu"

    def _sync(self) -> None:
        if self.torch_device != "cpu":
            import torch

            torch.cuda.synchronize()
