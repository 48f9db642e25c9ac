"""onnxruntime-genai sessions for ``onnx-genai`` builds: opened here once, for parity and bench.

The runtime reads the folder's ``genai_config.json``; we overlay the thread count (intra-op =
``threads``, one inter-op thread) so export parity and the bench run the same session settings.
Its generation loop (KV buffer shared between steps, no Python per op) is what makes these builds
fast; parity reads every position's logits from the prompt pass, the same graph the bench times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemed.errors import EnvironmentFailure, ModelError


@dataclass
class GenAIModel:
    """A loaded onnx-genai build and how it runs."""

    model: Any
    threads: int
    version: str
    vocab_size: int


def session_overlay(threads: int) -> str:
    """The genai_config overlay that pins the CPU session's threads.

    >>> json.loads(session_overlay(2))["model"]["decoder"]["session_options"]["intra_op_num_threads"]
    2
    """
    return json.dumps({"model": {"decoder": {"session_options": {
        "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}})


def load(folder: str | Path, threads: int = 2) -> GenAIModel:
    """Open ``folder`` (``genai_config.json`` + ``model.onnx``) on the CPU with ``threads`` threads."""
    try:
        import onnxruntime_genai as og
    except ImportError:
        raise EnvironmentFailure("onnx-genai builds need onnxruntime-genai "
                                 "(pip install onnxruntime-genai==0.12.2)") from None
    folder = Path(folder)
    cfg_file = folder / "genai_config.json"
    if not cfg_file.is_file():
        raise ModelError(f"{folder}: no genai_config.json (not an onnx-genai build)")
    config = og.Config(str(folder))
    config.clear_providers()  # CPU
    config.overlay(session_overlay(threads))
    try:
        model = og.Model(config)
    except Exception as e:  # onnxruntime-genai raises plain RuntimeError for every load failure
        raise ModelError(f"{folder}: onnxruntime-genai cannot load this build: {e}") from None
    vocab = int(json.loads(cfg_file.read_text(encoding="utf-8"))["model"]["vocab_size"])
    return GenAIModel(model, threads, og.__version__, vocab)


def _generator(m: GenAIModel, max_length: int, min_length: int = 0, temperature: float = 0.0,
               seed: int = 0):
    import onnxruntime_genai as og

    params = og.GeneratorParams(m.model)
    options: dict[str, Any] = {"max_length": max_length, "min_length": min_length}
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, random_seed=seed)
    else:
        options["do_sample"] = False
    params.set_search_options(**options)
    return og.Generator(m.model, params)


def prompt_logits(m: GenAIModel, ids: list[int]) -> np.ndarray:
    """Logits at every position of ``ids`` (one prompt pass): ``[len(ids), vocab]`` float32."""
    # max_length = the prompt itself: nothing is generated, and a prompt as long as the model's
    # context (the held-out fidelity documents are cut at 512 tokens) must still fit
    gen = _generator(m, len(ids))
    gen.append_tokens(ids)
    return np.asarray(gen.get_output("logits"), dtype=np.float32)[0]


def greedy(m: GenAIModel, ids: list[int], n: int, banned: list[int]) -> list[int]:
    """``n`` greedy tokens after ``ids`` with the ``banned`` ids masked at every step."""
    gen = _generator(m, len(ids) + n + 1)
    gen.append_tokens(ids)
    out: list[int] = []
    for _ in range(n):
        row = np.asarray(gen.get_logits(), dtype=np.float32).reshape(-1)
        row[banned] = -np.inf
        out.append(int(row.argmax()))
        gen.append_tokens([out[-1]])
    return out


def generate(m: GenAIModel, ids: list[int], max_new_tokens: int, eos_ids: list[int] | None = None,
             temperature: float = 0.0, seed: int = 0) -> list[int]:
    """New tokens after ``ids``, stopping at an ``eos_ids`` token (kept out) or ``max_new_tokens``.

    Without ``eos_ids`` exactly ``max_new_tokens`` forward passes run (the timing tests).
    """
    total = len(ids) + max_new_tokens
    gen = _generator(m, total, 0 if eos_ids else total, temperature, seed)
    gen.append_tokens(ids)
    out: list[int] = []
    while len(out) < max_new_tokens and not gen.is_done():
        gen.generate_next_token()
        tok = int(gen.get_next_tokens()[0])
        if eos_ids and tok in eos_ids:
            break
        out.append(tok)
    return out
