"""The implicit judge (RaR implicit, docs/method.md §3): one call sees the whole rubric and returns a
1–10 Likert rating of the response. Cached like the criterion verdicts; None on failure.
"""

from __future__ import annotations

import logging
from typing import Sequence

from edgemed.data.schema import RubricItem
from edgemed.judges.asking import RetryPolicy, ask
from edgemed.judges.base import ChatClient, ChatReply, Judgement, JudgeStats
from edgemed.judges.cache import VerdictCache, verdict_key
from edgemed.judges.parsing import read_rating
from edgemed.judges.prompts import LIKERT_SCHEMA, likert_messages, template_digest

log = logging.getLogger(__name__)


class LikertJudge:
    """``rate(conversation, items)`` → a rating in 1..10, or None when the judge failed.

    RaR normalises the rating to a reward as (L − 1) / 9; that is the rewards module's business.

    >>> class Seven:  # a stand-in transport that always rates 7
    ...     fingerprint, concurrency, supports_logprobs = "seven", 1, False
    ...     def chat(self, messages, schema, temperature, logprobs):
    ...         return ChatReply('{"explanation": "decent", "rating": 7}')
    ...     def close(self): pass
    >>> conv = [{"role": "user", "content": "BP 150/95?"}, {"role": "assistant", "content": "High."}]
    >>> LikertJudge(Seven(), cache=None).rate(conv, [RubricItem("Says stage 2", 5)])
    7.0
    """

    def __init__(self, client: ChatClient, cache: VerdictCache | None, policy: RetryPolicy | None = None,
                 temperature: float = 0.0, stats: JudgeStats | None = None):
        self.client = client
        self.cache = cache
        self.policy = policy or RetryPolicy()
        self.temperature = temperature
        self.stats = stats or JudgeStats()
        self.concurrency = client.concurrency
        self.fingerprint = f"likert|{client.fingerprint}|likert:{template_digest('likert')}|t={temperature:g}"

    def rate(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> float | None:
        """The 1–10 rating of the last assistant turn against all ``items`` (None: judge failed)."""
        key = verdict_key(self.fingerprint, conversation, [[it.criterion, it.points] for it in items])
        self.stats.add(requested=1)
        if self.cache is not None:
            hit = self.cache.get_many([key]).get(key)
            if hit is not None:
                self.stats.add(cache_hits=1)
                return hit.met
        answer = ask(self.client, likert_messages(conversation, items), LIKERT_SCHEMA, _read,
                     self.policy, self.temperature, stats=self.stats)
        self.stats.add(calls=1, failures=int(answer.value is None))
        if answer.value is None:
            log.warning("likert judge failed: %s", answer.error)
            return None
        rating, explanation = answer.value
        if self.cache is not None:
            self.cache.put(key, self.fingerprint,
                           Judgement(met=float(rating), explanation=explanation, raw=answer.reply.text))
        return float(rating)

    def close(self) -> None:
        self.client.close()
        if self.cache is not None:
            self.cache.close()


def _read(reply: ChatReply) -> tuple[int, str] | None:
    return read_rating(reply.text)
