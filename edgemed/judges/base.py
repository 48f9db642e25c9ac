"""The one judge interface: a conversation (ending in the response) + rubric items → judgements.

``met`` is 1.0/0.0, a probability in [0, 1], or ``None`` when the judge failed. A failure is
never "not met": on a pitfall that would raise the score, on a positive item lower it
(docs/method.md §2). For a pitfall, met means the bad behaviour is present.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from edgemed.data.schema import RubricItem


@dataclass(frozen=True)
class Judgement:
    """One criterion's verdict.

    >>> Judgement(met=None, explanation="timeout").failed
    True
    """

    met: float | None
    explanation: str = ""
    raw: str = ""

    @property
    def failed(self) -> bool:
        return self.met is None


@runtime_checkable
class Judge(Protocol):
    """Anything that grades criteria. ``fingerprint`` keys the persistent cache: two judges with
    the same fingerprint must give the same verdicts (backend, model, prompt template, params)."""

    fingerprint: str

    def grade(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[Judgement]:
        """One Judgement per item, in order. Must not raise on judge failures: return met=None."""
        ...


@dataclass
class JudgeStats:
    """Counters of one judge front (see ``edgemed.judges.cache.CachedJudge``); thread-safe.

    ``requested`` items asked for = ``cache_hits`` + ``calls`` (items sent to the backend);
    ``failures`` are the calls whose verdict is None; ``retries`` extra attempts the backend made.

    >>> s = JudgeStats(); s.add(calls=2, failures=1); s.as_dict()["failures"]
    1
    """

    requested: int = 0
    cache_hits: int = 0
    calls: int = 0
    failures: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: getattr(self, k) for k in ("requested", "cache_hits", "calls", "failures", "retries")}


class JudgeCallError(Exception):
    """One attempt to reach a judge model failed. ``retryable`` is False for errors a retry cannot
    fix (bad API key, unknown model), so the grader gives up at once instead of backing off."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ChatReply:
    """A judge model's answer: its text and, when offered, OpenAI-style token log-probs
    (``choices[0].logprobs.content``: ``[{token, logprob, top_logprobs: [{token, logprob}]}]``)."""

    text: str
    logprobs: list[dict] | None = None


@runtime_checkable
class ChatClient(Protocol):
    """A transport to a judge model (HTTP server or in-process GGUF). ``fingerprint`` names the
    model and sampling settings; ``concurrency`` is how many calls it usefully runs at once."""

    fingerprint: str
    concurrency: int
    supports_logprobs: bool

    def chat(self, messages: list[dict[str, str]], schema: dict | None, temperature: float,
             logprobs: bool) -> ChatReply:
        """One completion; raises JudgeCallError on any failure (never returns partial junk)."""
        ...

    def close(self) -> None:
        ...
