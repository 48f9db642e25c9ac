"""Asking a judge model until it answers readably: bounded retries with exponential backoff.

Timeouts, dropped connections, server errors and unreadable answers are retried; errors a retry
cannot fix (bad key, unknown model) stop at once. The result is the value or None with the
reason; never an exception, never a guessed verdict.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from edgemed.judges.base import ChatClient, ChatReply, JudgeCallError, JudgeStats

T = TypeVar("T")

# A greedy judge repeats a malformed answer verbatim; retries after one sample a little.
RETRY_TEMPERATURE = 0.5
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What came back: the read value (None on failure), the last raw text, why it failed."""

    value: T | None
    reply: ChatReply | None
    error: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``backoff_s`` doubles per retry, capped, with ±25 % jitter so parallel
    workers do not hammer a recovering server in lockstep.

    >>> RetryPolicy(max_retries=3, backoff_s=1.0).delay(2, jitter=False)
    4.0
    """

    max_retries: int = 3
    backoff_s: float = 1.0

    def delay(self, retry: int, jitter: bool = True) -> float:
        base = min(self.backoff_s * (2 ** retry), MAX_BACKOFF_S)
        return base * (random.uniform(0.75, 1.25) if jitter else 1.0)


def ask(client: ChatClient, messages: list[dict[str, str]], schema: dict | None,
        read: Callable[[ChatReply], T | None], policy: RetryPolicy, temperature: float,
        logprobs: bool = False, stats: JudgeStats | None = None) -> Answer[T]:
    """Call ``client`` and ``read`` its reply, retrying per ``policy``; see the module docstring.

    >>> class Flaky:  # fails once, then answers
    ...     fingerprint, concurrency, supports_logprobs, n = "flaky", 1, False, 0
    ...     def chat(self, messages, schema, temperature, logprobs):
    ...         self.n += 1
    ...         if self.n == 1:
    ...             raise JudgeCallError("connection reset")
    ...         return ChatReply('{"ok": 1}')
    >>> ask(Flaky(), [], None, lambda r: r.text, RetryPolicy(2, 0.0), 0.0).value
    '{"ok": 1}'
    >>> print(ask(Flaky(), [], None, lambda r: None, RetryPolicy(1, 0.0), 0.0).error)
    connection reset; unreadable answer: '{"ok": 1}' (after 2 attempts)
    """
    errors: list[str] = []
    reply: ChatReply | None = None
    for attempt in range(policy.max_retries + 1):
        if attempt:
            if stats is not None:
                stats.add(retries=1)
            time.sleep(policy.delay(attempt - 1))
        try:
            reply = client.chat(messages, schema, temperature, logprobs)
        except JudgeCallError as e:
            errors.append(str(e))
            if not e.retryable:
                break
            continue
        value = read(reply)
        if value is not None:
            return Answer(value, reply)
        errors.append(f"unreadable answer: {reply.text[:200]!r}")
        temperature = max(temperature, RETRY_TEMPERATURE)
    unique = list(dict.fromkeys(errors))  # a dead server repeats itself; say it once
    return Answer(None, reply, "; ".join(unique) + (f" (after {len(errors)} attempts)" if len(errors) > 1 else ""))
