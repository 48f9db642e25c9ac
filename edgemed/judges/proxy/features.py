"""Evidence that a response makes a criterion's claim: six numbers per (criterion, response).

Max cosine alone cannot tell "call 911 now" from "calling 911 is not necessary", and rewards a
response for echoing the question. Each feature below targets one of those failure modes; the
calibration (calibration.py) turns them into a probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from edgemed.judges.proxy import text

FEATURES = (
    "similarity",          # max cosine between the claim and a response sentence
    "question_similarity",  # cosine between the claim and the question: echoes earn less
    "polar_match",         # how well the response states the claim's new content words, same polarity
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


@dataclass(frozen=True)
class ResponseView:
    """What every claim is checked against: sentences and their vectors, the response's content
    words with their polarity (one entry per (word, polarity) pair), their stems and vectors."""

    sentences: list[str]
    sentence_vecs: np.ndarray
    polarities: list[dict[str, bool]]  # stem -> negated, per sentence
    words: list[str]
    word_negated: np.ndarray
    word_stems: list[str]
    word_matrix: np.ndarray  # one unit vector per entry of ``words``

    @classmethod
    def of(cls, sentences: list[str], sentence_vecs: np.ndarray,
           word_vecs: Mapping[str, np.ndarray]) -> "ResponseView":
        pairs = list(dict.fromkeys((w, neg) for s in sentences for w, neg in text.word_polarity(s).items()))
        words = [w for w, _ in pairs]
        matrix = np.stack([word_vecs[w] for w in words]) if words else np.zeros((0, 0))
        return cls(sentences, sentence_vecs, [text.stem_polarity(s) for s in sentences], words,
                   np.array([neg for _, neg in pairs], dtype=bool), [text.stem(w) for w in words], matrix)


def words_to_encode(claim: str, question: str, sentences: list[str]) -> list[str]:
    """The single words whose vectors :func:`claim_evidence` needs (claim's new words, response words)."""
    out = list(novel_words(claim, question))
    for s in sentences:
        out.extend(text.word_polarity(s))
    return list(dict.fromkeys(out))


def claim_evidence(claim: str, question: str, response: ResponseView, claim_vec: np.ndarray,
                   question_vec: np.ndarray, word_vecs: Mapping[str, np.ndarray]) -> Evidence:
    """Features for one claim against one response, given unit vectors from the encoder.

    >>> v = np.eye(4, dtype=np.float32)
    >>> sentences = ["Calling 911 is not necessary.", "Rest instead."]
    >>> words = {w: v[3] for w in ["911", "calling", "immediately", "necessary", "rest", "instead"]}
    >>> e = claim_evidence("calling 911 immediately", "Chest pain, what now?",
    ...                    ResponseView.of(sentences, v[[0, 1]], words), v[0], v[2], words)
    >>> e.as_dict()["similarity"], e.as_dict()["flipped_in_best"], e.best_sentence
    (1.0, 0.5, 'Calling 911 is not necessary.')
    """
    sims = response.sentence_vecs @ claim_vec
    best = int(np.argmax(sims))
    similarity = float(sims[best])
    sentences = response.sentences
    novel = _novel_polarity(claim, question)
    best_pol = response.polarities[best]
    flipped = sum(w in best_pol and best_pol[w] != neg for w, neg in novel.items())
    mismatch = float(text.negated(claim) != text.negated(sentences[best])) * similarity
    values = np.array([
        similarity,
        float(question_vec @ claim_vec),
        polar_match(novel_words(claim, question), response, word_vecs),
        flipped / max(len(novel), 1),
        mismatch,
        float(_number_conflict(claim, question, " ".join(sentences))),
    ], dtype=np.float64)
    return Evidence(values, sentences[best])


def polar_match(wanted: Mapping[str, bool], response: ResponseView, word_vecs: Mapping[str, np.ndarray]) -> float:
    """Mean over the claim's new words of their best match among the response's words stated with
    the same polarity: 1 for the same stem, else the cosine of the two words' vectors (≥ 0).

    Exact stems alone gave no credit for paraphrase ("Advil" for "ibuprofen", "salt" for
    "sodium"), the main reason the proxy missed met criteria on independent cases; the cosine
    gives partial credit with no threshold to tune. Polarity still has to agree, so "don't take
    Advil" earns nothing against "take ibuprofen".

    >>> vecs = {"aspirin": np.array([1.0, 0]), "take": np.array([0, 1.0]), "use": np.array([0, 1.0]),
    ...         "salt": np.array([0.6, 0.8]), "sparingly": np.array([0, 1.0])}
    >>> r = ResponseView.of(["Don't take aspirin.", "Use salt sparingly."], np.zeros((2, 2)), vecs)
    >>> polar_match({"aspirin": False}, r, vecs)  # stated only under negation
    0.6
    >>> polar_match({"aspirin": True}, r, vecs)
    1.0
    """
    if not wanted or not response.words:
        return 0.0
    prefixes = np.array([s[:5] if len(s) >= 5 else "" for s in response.word_stems])
    stems = np.array(response.word_stems)
    total = 0.0
    for word, negated in wanted.items():
        same = response.word_negated == negated
        if not same.any():
            continue
        s = text.stem(word)
        # the same stem, or the shared 5-letter prefix text.stems_found allows
        if ((stems == s) | ((prefixes == s[:5]) if len(s) >= 5 else False))[same].any():
            total += 1.0
            continue
        total += max(float((response.word_matrix[same] @ word_vecs[word]).max()), 0.0)
    return round(total / len(wanted), 6)


def novel_words(claim: str, question: str) -> dict[str, bool]:
    """The claim's content words (as written) whose stem the question lacks, with their polarity.

    >>> novel_words("not to drive to the hospital", "Can I drive?")
    {'hospital': True}
    """
    polarity = text.word_polarity(claim)
    asked = text.content_stems(question)
    novel = {w: neg for w, neg in polarity.items() if text.stem(w) not in asked}
    return novel or polarity


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
