"""The offline proxy judge: grades rubric criteria with a sentence encoder, no LLM.

It is a proxy. It checks whether a response states what a criterion asks for (semantic match,
negation, numbers, content words), not whether the medicine is right; every report that uses it
must say so. Its figures (cross-validated on its own tuning cases) are in docs/proxy_judge.md; its
accuracy on independent cases is what ``edgemed judge eval`` reports (docs/judges.md).

How one criterion is graded:
1. the criterion is reduced to its claim ("Advises calling 911" → "calling 911"); omission-phrased
   pitfalls ("Fails to advise ...") are met when the claim is absent;
2. the response is split into sentences; claim, question, sentences and single content words are
   encoded in one batch;
3. features (features.py) → calibrated probability that the claim is made (calibration.py,
   fitted on the tuning cases by tuning.py, which grading never imports);
4. ``met`` is that probability (or 1 − it for omission phrasing): continuous, for rewards.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from edgemed.data.schema import RubricItem
from edgemed.judges.base import Judgement
from edgemed.judges.proxy.calibration import Calibration, load_calibration
from edgemed.judges.proxy.encoder import ENCODER_NAME, SentenceEncoder
from edgemed.judges.proxy.features import Evidence, ResponseView, claim_evidence, words_to_encode
from edgemed.judges.proxy.text import parse_criterion, split_sentences

PROXY_VERSION = "2"  # bump when text rules, features or calibration recipe change: cached verdicts then miss


class ProxyJudge:
    """Offline criterion grader (a proxy for an LLM judge).

    ``calibration``: path to a calibration JSON (default: the shipped one).
    ``decimals``: probabilities are rounded so float noise from batching cannot change a verdict.

    >>> judge = ProxyJudge()  # doctest: +SKIP
    >>> conv = [{"role": "user", "content": "Crushing chest pain for 20 minutes. What do I do?"},
    ...         {"role": "assistant", "content": "Call 911 now and chew an aspirin."}]
    >>> [round(j.met) for j in judge.grade(conv, [RubricItem("Advises calling 911 immediately", 5),
    ...     RubricItem("Suggests waiting to see if the pain passes", -5)])]  # doctest: +SKIP
    [1, 0]
    """

    def __init__(self, calibration: str | None = None, decimals: int = 4):
        self.calibration: Calibration = load_calibration(calibration)
        self.decimals = int(decimals)
        self.encoder = SentenceEncoder.shared()
        self.fingerprint = (f"proxy/v{PROXY_VERSION}/{ENCODER_NAME}/cal={self.calibration.digest()}"
                            f"/decimals={self.decimals}")

    def grade(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[Judgement]:
        """One Judgement per item; ``met`` is a probability. An empty response meets nothing."""
        question, response = split_conversation(conversation)
        if not response.strip():
            return [Judgement(0.0, "proxy: empty response", "{}") for _ in items]
        try:
            evidence = grade_evidence(self.encoder, question, response, [it.criterion for it in items])
        except Exception as e:  # a judge failure is None, never a silent "not met"
            return [Judgement(None, f"proxy failed: {type(e).__name__}: {e}", "") for _ in items]
        probs = self.calibration.probability(np.stack([ev.values for ev in evidence]))
        out = []
        for item, ev, p in zip(items, evidence, probs):
            absent_is_met = parse_criterion(item.criterion).absent_is_met
            met = round(float(1.0 - p if absent_is_met else p), self.decimals)
            out.append(Judgement(met, _explain(ev, float(p), absent_is_met),
                                 json.dumps({"p_claim": round(float(p), 4)} | ev.as_dict())))
        return out


def split_conversation(conversation: list[dict[str, str]]) -> tuple[str, str]:
    """(all user turns joined, the last message's content): the question and the graded response.

    >>> split_conversation([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}])
    ('Q', 'A')
    """
    if not conversation:
        return "", ""
    last = conversation[-1]
    response = last.get("content", "") if last.get("role") == "assistant" else ""
    question = "\n".join(m.get("content", "") for m in conversation[:-1] if m.get("role") == "user")
    return question, response


def evidence_texts(question: str, response: str, criteria: Sequence[str]) -> tuple[list[str], int, int]:
    """Everything :func:`grade_evidence` encodes, in order: claims, question, response sentences,
    then single words; with the number of claims and of sentences."""
    claims = [parse_criterion(c).text for c in criteria]
    sentences = split_sentences(response) or [response.strip()]
    words = list(dict.fromkeys(w for claim in claims for w in words_to_encode(claim, question, sentences)))
    return claims + [question] + sentences + words, len(claims), len(sentences)


def grade_evidence(encoder: SentenceEncoder, question: str, response: str,
                   criteria: Sequence[str]) -> list[Evidence]:
    """Features for every criterion against one response, with a single encoder batch."""
    texts, n, m = evidence_texts(question, response, criteria)
    vecs = encoder.encode(texts)
    claims, sentences, words = texts[:n], texts[n + 1:n + 1 + m], texts[n + 1 + m:]
    claim_vecs, question_vec, sentence_vecs = vecs[:n], vecs[n], vecs[n + 1:n + 1 + m]
    word_vecs = dict(zip(words, vecs[n + 1 + m:]))
    view = ResponseView.of(sentences, sentence_vecs, word_vecs)
    return [claim_evidence(claim, question, view, cv, question_vec, word_vecs)
            for claim, cv in zip(claims, claim_vecs)]


def _explain(ev: Evidence, p_claim: float, absent_is_met: bool) -> str:
    f = ev.as_dict()
    cues = [name for name in ("flipped_in_best", "negation_mismatch", "number_conflict") if f[name] > 0]
    phrasing = "; omission-phrased, met = 1 - P" if absent_is_met else ""
    conflict = f"; contradiction cues: {', '.join(cues)}" if cues else ""
    return (f"proxy: P(claim made)={p_claim:.2f}, best match {ev.best_sentence[:120]!r} "
            f"(cos {f['similarity']:.2f}){conflict}{phrasing}")
