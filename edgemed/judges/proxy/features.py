"""Evidence that a response makes a criterion's claim: six numbers per (criterion, response).

Max cosine alone cannot tell "call 911 now" from "calling 911 is not necessary", and rewards a
response for echoing the question. Each feature below targets one of those failure modes; the
calibration (proxy_calibration.py) turns them into a probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemed.judges import proxy_text as text

FEATURES = (
    "similarity",          # max cosine between the claim and a response sentence
    "question_similarity",  # cosine between the claim and the question: echoes earn less
    "polar_overlap",       # share of the claim's new content words the response states with the same polarity
    "flipped_in_best",     # share of them the best-matching sentence states with the opposite polarity
    "negation_mismatch",   # best sentence negated while the claim is not (or vice versa), times similarity
    "number_conflict",     # the claim gives numbers, the response gives others and none of the claim's
)


@dataclass(frozen=True)
class Evidence:
    """The features plus the sentence they point at, for the judgement's explanation."""

    values: np.ndarray
    best_sentence: str

    def as_dict(self) -> dict[str, float]:
        return {name: round(float(v), 4) for name, v in zip(FEATURES, self.values)}


def claim_evidence(claim: str, question: str, sentences: list[str],
                   claim_vec: np.ndarray, question_vec: np.ndarray, sentence_vecs: np.ndarray) -> Evidence:
    """Features for one claim against one response, given unit vectors from the encoder.

    >>> v = np.eye(3, dtype=np.float32)
    >>> e = claim_evidence("calling 911 immediately", "Chest pain, what now?",
    ...                    ["Calling 911 is not necessary.", "Rest instead."], v[0], v[2], v[[0, 1]])
    >>> e.as_dict()["similarity"], e.as_dict()["flipped_in_best"], e.best_sentence
    (1.0, 0.5, 'Calling 911 is not necessary.')
    """
    sims = sentence_vecs @ claim_vec
    best = int(np.argmax(sims))
    similarity = float(sims[best])
    novel = _novel_polarity(claim, question)
    polarities = [text.stem_polarity(s) for s in sentences]
    found = sum(any(p.get(w) == neg for p in polarities) for w, neg in novel.items())
    best_pol = polarities[best]
    flipped = sum(w in best_pol and best_pol[w] != neg for w, neg in novel.items())
    mismatch = float(text.negated(claim) != text.negated(sentences[best])) * similarity
    values = np.array([
        similarity,
        float(question_vec @ claim_vec),
        found / max(len(novel), 1),
        flipped / max(len(novel), 1),
        mismatch,
        float(_number_conflict(claim, question, " ".join(sentences))),
    ], dtype=np.float64)
    return Evidence(values, sentences[best])


def _novel_polarity(claim: str, question: str) -> dict[str, bool]:
    """The claim's content words the question does not already contain: what the answer must add.

    >>> sorted(_novel_polarity("stage 2 hypertension for 152/96", "Is 152/96 hypertension?"))
    ['stage']
    """
    polarity = text.stem_polarity(claim)
    asked = text.content_stems(question)
    novel = {w: neg for w, neg in polarity.items() if w not in asked}
    return novel or polarity


def _number_conflict(claim: str, question: str, response: str) -> bool:
    """True when the claim brings numbers of its own and the response has numbers but none of them.

    >>> _number_conflict("LDL below 70 mg/dL", "What LDL?", "Aim for LDL under 130.")
    True
    >>> _number_conflict("LDL below 70 mg/dL", "What LDL?", "Aim for under 70.")
    False
    """
    wanted = text.numbers(claim) - text.numbers(question)
    have = text.numbers(response)
    return bool(wanted) and bool(have) and not (wanted & have)
