"""The one runner interface the bench stage drives, whatever the runtime underneath.

Three operations, each defined the way llama-bench defines it so rows compare across backends:

- ``chat``: answer a conversation with the build's own chat template (greedy by default);
- ``prefill(n)``: process an n-token prompt in one batch up to the first new token (pp<n>, and
  the time it takes is the time to first token at that prompt length);
- ``decode(n)``: n single-token steps from an empty context (tg<n>).

Prompts for the timing tests are fixed-seed random token ids, as llama-bench uses, so no build
gets an easier (shorter-after-tokenisation) prompt than another.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemed.bench.targets import Target


@dataclass(frozen=True)
class Generation:
    """One answer: text, prompt and answer lengths in tokens, wall time."""

    text: str
    n_prompt: int
    n_gen: int
    seconds: float


def timing_tokens(n: int, vocab_size: int, seed: int = 0) -> list[int]:
    """``n`` reproducible pseudo-random token ids, clear of the low ids where special tokens live.

    >>> timing_tokens(4, 1000) == timing_tokens(4, 1000) and len(timing_tokens(4, 1000)) == 4
    True
    """
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(min(100, vocab_size // 2), vocab_size, size=n)]


class Runner(ABC):
    """A loaded build. Use as a context manager so native resources are freed in order."""

    backend: str = ""

    def __init__(self, target: Target, threads: int, device: str = "auto", n_gpu_layers: int = -1):
        self.target, self.threads, self.device_pref, self.n_gpu_layers = target, threads, device, n_gpu_layers
        t0 = time.perf_counter()
        self._load()
        self.load_seconds = time.perf_counter() - t0

    @abstractmethod
    def _load(self) -> None:
        """Load the build; set whatever ``info`` reports."""

    @property
    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Runtime facts for the row: device, n_threads, n_gpu_layers, execution_provider, version."""

    @abstractmethod
    def chat(self, messages: list[dict[str, str]], max_new_tokens: int,
             temperature: float = 0.0, seed: int = 0) -> Generation:
        """Answer with the build's chat template; greedy when ``temperature`` is 0."""

    @abstractmethod
    def prefill(self, n_prompt: int) -> float:
        """Seconds to process an ``n_prompt``-token prompt and produce the first new token."""

    @abstractmethod
    def decode(self, n_gen: int) -> float:
        """Seconds for ``n_gen`` single-token steps from an empty context."""

    def close(self) -> None:
        """Free the runtime's memory (override where the runtime needs an explicit close)."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
