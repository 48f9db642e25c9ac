"""ONNX Runtime without optimum or torch: a KV-cached decoder loop over one session, in numpy.

What the bench needs to answer with and time an ONNX build of ``edgemed export`` (an optimum
``text-generation-with-past`` folder) on a device that has onnxruntime and numpy only. The graph
takes ``input_ids``, ``attention_mask``, ``position_ids`` (when present) and
``past_key_values.<i>.key|value``, and returns ``logits`` and ``present.<i>.key|value``; each step
feeds the new tokens and the previous step's presents, as optimum's ``ORTModelForCausalLM`` does.
The session is configured by :mod:`edgemed.runtimes.onnxruntime` (the same graph file, execution
provider, thread counts and wait policy as export's parity check).

Greedy decoding is the argmax of the last position's logits (transformers' greedy search with no
logits processors, which is what the bench asks for at temperature 0); at a temperature > 0 the
next token is drawn from softmax(logits / temperature) with a seeded numpy generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemed.errors import ModelError

PAST, PRESENT = "past_key_values.", "present."
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def kv_pairs(input_names: list[str]) -> list[tuple[str, str]]:
    """(past input, present output) names of the KV cache, in layer order.

    >>> kv_pairs(["input_ids", "past_key_values.1.key", "past_key_values.0.value", "past_key_values.0.key"])
    [('past_key_values.0.key', 'present.0.key'), ('past_key_values.0.value', 'present.0.value'), ('past_key_values.1.key', 'present.1.key')]
    """
    past = [n for n in input_names if n.startswith(PAST)]
    past.sort(key=lambda n: (int(n[len(PAST):].split(".")[0]), n))
    return [(n, PRESENT + n[len(PAST):]) for n in past]


def kv_dims(shape: list[Any], config: dict[str, Any]) -> tuple[int, int]:
    """(KV heads, head dim) of a past input: from its static shape, else from the model's config.json.

    >>> kv_dims(["batch_size", 3, "past_sequence_length", 64], {})
    (3, 64)
    >>> kv_dims(["b", "h", "s", "d"], {"num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576})
    (3, 64)
    """
    if len(shape) == 4 and isinstance(shape[1], int) and isinstance(shape[3], int):
        return shape[1], shape[3]
    try:
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    except (KeyError, TypeError, ZeroDivisionError):
        raise ModelError("cannot tell the KV-cache shape: the graph's past inputs have no static head "
                         "dimensions and config.json has no num_attention_heads/hidden_size") from None
    return int(heads), int(head_dim)


def next_token(logits: np.ndarray, temperature: float, rng: np.random.Generator | None) -> int:
    """Greedy (argmax) at temperature 0, else a draw from softmax(logits / temperature).

    >>> next_token(np.array([0.1, 2.0, -1.0]), 0.0, None)
    1
    >>> next_token(np.array([0.0, 50.0, 0.0]), 0.7, np.random.default_rng(0))
    1
    """
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


@dataclass
class Decoder:
    """An open decoder session and what its inputs look like."""

    session: Any
    file_name: str
    provider: str
    threads: int
    version: str
    kv: list[tuple[str, str]]
    kv_shape: tuple[int, int]
    kv_dtype: Any
    inputs: set[str] = field(default_factory=set)

    def empty_past(self) -> dict[str, np.ndarray]:
        heads, head_dim = self.kv_shape
        return {name: np.zeros((1, heads, 0, head_dim), dtype=self.kv_dtype) for name, _ in self.kv}

    def step(self, ids: list[int], past: dict[str, np.ndarray], past_len: int):
        """One forward pass over ``ids`` after ``past_len`` cached tokens → (last logits, new past)."""
        n = len(ids)
        feed: dict[str, np.ndarray] = {"input_ids": np.asarray([ids], dtype=np.int64),
                                       "attention_mask": np.ones((1, past_len + n), dtype=np.int64)}
        if "position_ids" in self.inputs:
            feed["position_ids"] = np.arange(past_len, past_len + n, dtype=np.int64)[None, :]
        if "use_cache_branch" in self.inputs:  # optimum's older merged decoders
            feed["use_cache_branch"] = np.asarray([past_len > 0])
        feed.update(past)
        names = ["logits"] + [present for _, present in self.kv]
        outputs = self.session.run(names, feed)
        new_past = {name: value for (name, _), value in zip(self.kv, outputs[1:])}
        return outputs[0][0, -1], new_past

    def generate(self, prompt: list[int], max_new_tokens: int, eos_token_id: int | None = None,
                 temperature: float = 0.0, seed: int = 0) -> list[int]:
        """New tokens after ``prompt`` (the stopping EOS included, as transformers returns it);
        ``eos_token_id=None`` never stops early: exactly ``max_new_tokens`` forward passes."""
        rng = np.random.default_rng(seed) if temperature > 0 else None
        past, past_len, ids, out = self.empty_past(), 0, list(prompt), []
        while len(out) < max_new_tokens:
            logits, past = self.step(ids, past, past_len)
            past_len += len(ids)
            token = next_token(logits, temperature, rng)
            out.append(token)
            if token == eos_token_id:
                break
            ids = [token]
        return out


def open_decoder(folder: str | Path, threads: int = 2, device: str = "cpu") -> Decoder:
    """Open an ONNX artifact folder's graph with ``threads`` intra-op threads (``device`` auto: CUDA EP
    where onnxruntime has it, else the CPU EP)."""
    from edgemed.runtimes.onnxruntime import graph_file, import_onnxruntime, pick_provider, session_options

    ort = import_onnxruntime()
    folder = Path(folder)
    file_name = graph_file(folder)
    provider = pick_provider(device, ort.get_available_providers())
    session = ort.InferenceSession(str(folder / file_name), sess_options=session_options(threads),
                                   providers=[provider])
    inputs = {i.name: i for i in session.get_inputs()}
    if "input_ids" not in inputs or "logits" not in {o.name for o in session.get_outputs()}:
        raise ModelError(f"{folder / file_name}: not a decoder graph (needs input_ids in, logits out)")
    kv = kv_pairs(list(inputs))
    if not kv:
        raise ModelError(f"{folder / file_name}: no past_key_values inputs; export with the KV cache "
                         "(optimum task text-generation-with-past, what `edgemed export` does)")
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    first = inputs[kv[0][0]]
    dtype = DTYPES.get(first.type)
    if dtype is None:
        raise ModelError(f"{folder / file_name}: KV cache of type {first.type} is not supported")
    return Decoder(session, file_name, provider, threads, ort.__version__, kv, kv_dims(list(first.shape), config),
                   dtype, set(inputs))
