"""The LLM criterion judge: one grader call per rubric item, as HealthBench grades (docs/method.md §2).

It is transport-agnostic: an HTTP server (``openai_compat``) or an in-process GGUF
(``llamacpp``) supplies ``chat``; this module builds the prompt, asks for the JSON verdict under
a schema, reads it (and P("true") when log-probs are on) and turns every failure into None.
"""

from __future__ import annotations

import logging
from typing import Sequence

from edgemed.data.schema import RubricItem
from edgemed.judges.asking import RetryPolicy, ask
from edgemed.judges.base import ChatClient, ChatReply, Judgement, JudgeStats
from edgemed.judges.parsing import p_true, read_verdict
from edgemed.judges.prompts import VERDICT_SCHEMA, grader_messages, template_digest

log = logging.getLogger(__name__)


class CriterionJudge:
    """Grades each item with its own call to ``client``; ``met`` is 1.0/0.0, or P("true") when
    ``use_logprobs`` and the answer carries log-probs, or None when the judge failed.

    >>> class Always:  # a stand-in transport that always answers "met"
    ...     fingerprint, concurrency, supports_logprobs = "always", 1, False
    ...     def chat(self, messages, schema, temperature, logprobs):
    ...         return ChatReply('```json\\n{"explanation": "yes", "criteria_met": true}\\n```')
    ...     def close(self): pass
    >>> conv = [{"role": "user", "content": "Chest pain?"}, {"role": "assistant", "content": "Call 911."}]
    >>> CriterionJudge(Always()).grade(conv, [RubricItem("Advises calling 911", 5)])
    [Judgement(met=1.0, explanation='yes', raw='```json\\n{"explanation": "yes", "criteria_met": true}\\n```')]
    """

    def __init__(self, client: ChatClient, template: str = "edgemed", policy: RetryPolicy | None = None,
                 temperature: float = 0.0, use_logprobs: bool = False, stats: JudgeStats | None = None):
        self.client = client
        self.template = template
        self.policy = policy or RetryPolicy()
        self.temperature = temperature
        self.use_logprobs = use_logprobs and client.supports_logprobs
        self.stats = stats or JudgeStats()
        self.concurrency = client.concurrency
        self.fingerprint = (f"criterion|{client.fingerprint}|{template}:{template_digest(template)}"
                            f"|t={temperature:g}|lp={int(self.use_logprobs)}")

    def grade(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[Judgement]:
        """One verdict per item, in order (sequential; ``grade_batch`` runs items concurrently)."""
        return [self._grade_one(conversation, item) for item in items]

    def _grade_one(self, conversation: list[dict[str, str]], item: RubricItem) -> Judgement:
        messages = grader_messages(self.template, conversation, item)
        answer = ask(self.client, messages, VERDICT_SCHEMA, _read, self.policy, self.temperature,
                     logprobs=self.use_logprobs, stats=self.stats)
        raw = answer.reply.text if answer.reply is not None else ""
        if answer.value is None:
            log.warning("judge failed on %r: %s", item.criterion[:60], answer.error)
            return Judgement(met=None, explanation=f"judge failed: {answer.error}", raw=raw)
        met, explanation = answer.value
        prob = p_true(answer.reply.logprobs) if self.use_logprobs else None
        return Judgement(met=prob if prob is not None else float(met), explanation=explanation, raw=raw)

    def close(self) -> None:
        self.client.close()


def _read(reply: ChatReply) -> tuple[bool, str] | None:
    return read_verdict(reply.text)
