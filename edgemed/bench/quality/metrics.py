"""Quality metrics that move at every scale, per example and per build: pure math, no I/O, no torch.

The official HealthBench aggregate clips the mean to [0, 1]; a small model's mean is often below 0,
so every build reads 0.000 and nothing can be told apart. These metrics keep the signal:

- **unclipped mean** of the per-example HealthBench scores, with a bootstrap 95% percentile CI;
- **hit rate** = met positive criteria / judged positive criteria (pooled over examples);
- **pitfall rate** = met negative criteria / judged negative criteria (pooled);
- **answer length** (tokens from the generation logs, and words) and the **truncation rate**
  (answers that used the whole ``max_new_tokens`` budget);
- reward-hacking diagnostics: **distinct-2** (distinct word bigrams / bigrams: loops score low) and
  the **repeated-sentence rate** (sentences that repeat an earlier one in the same answer).

Judge failures (``met = None``) are skipped and counted, never read as "not met". Probabilities
count as partial hits (p of an item). The bootstrap behind the CI is ``edgemed.bench.quality.stats``; base
vs trained on these per-example rows is ``edgemed.bench.quality.compare``.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from edgemed.bench.quality import healthbench, stats


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when nothing was counted (a rate of nothing is unknown, not 0).

    >>> ratio(3, 4), ratio(0, 0)
    (0.75, None)
    """
    return None if den <= 0 else num / den


def criteria_counts(points: Sequence[float], met: Sequence[healthbench.Met]) -> dict[str, float]:
    """Met/judged counts of positive and negative items, plus judge failures (None), of one example.

    >>> criteria_counts([5, 3, -4, -2], [1, None, 1, 0])
    {'pos_met': 1.0, 'pos_judged': 1, 'neg_met': 1.0, 'neg_judged': 2, 'judge_failures': 1}
    """
    graded = healthbench._graded(points, met)
    return {"pos_met": sum(m for p, m in graded if p > 0), "pos_judged": sum(1 for p, _ in graded if p > 0),
            "neg_met": sum(m for p, m in graded if p < 0), "neg_judged": sum(1 for p, _ in graded if p < 0),
            "judge_failures": sum(1 for m in met if m is None)}


def word_count(text: str | None) -> int | None:
    """Whitespace-separated words: a length that compares across tokenizers.

    >>> word_count("Call 911 now."), word_count(None)
    (3, None)
    """
    return None if text is None else len(text.split())


def is_truncated(n_gen: int | None, max_new_tokens: int | None) -> bool | None:
    """True when the answer used the whole token budget (cut off rather than finished).

    >>> is_truncated(80, 80), is_truncated(12, 80), is_truncated(None, 80)
    (True, False, None)
    """
    if n_gen is None or not max_new_tokens:
        return None
    return n_gen >= max_new_tokens


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def distinct_2(text: str | None) -> float | None:
    """Distinct word bigrams / all word bigrams (lower-cased): low when an answer loops on itself.

    >>> distinct_2("call 911 now call 911 now"), distinct_2("Chest pain needs care."), distinct_2("ok")
    (0.6, 1.0, None)
    """
    if text is None:
        return None
    words = text.lower().split()
    pairs = list(zip(words, words[1:]))
    return ratio(len(set(pairs)), len(pairs))


def repeated_sentence_rate(text: str | None) -> float | None:
    """Share of an answer's sentences that repeat an earlier one word for word (case and spacing ignored).

    >>> repeated_sentence_rate("Call 911. Call 911. Chew aspirin. call  911.")
    0.5
    >>> repeated_sentence_rate("One. Two."), repeated_sentence_rate("")
    (0.0, None)
    """
    if text is None:
        return None
    sentences = [" ".join(s.lower().split()) for s in _SENTENCE_END.split(text)]
    sentences = [s for s in sentences if s]
    seen: set[str] = set()
    repeats = 0
    for s in sentences:
        repeats += s in seen
        seen.add(s)
    return ratio(repeats, len(sentences))


def example_metrics(points: Sequence[float], met: Sequence[healthbench.Met], response: str | None = None,
                    n_gen: int | None = None, max_new_tokens: int | None = None) -> dict[str, Any]:
    """One example's unclipped score, hit and pitfall rates, counts and length, for bench.json's per_example.

    >>> e = example_metrics([5, 3, -4], [1, 0, 1], "Seek care now.", 4, 4)
    >>> e["score"], e["hit_rate"], e["pitfall_rate"], e["words"], e["truncated"]
    (0.125, 0.5, 1.0, 3, True)
    """
    c = criteria_counts(points, met)
    return {"score": healthbench.example_score(points, met),
            "hit_rate": ratio(c["pos_met"], c["pos_judged"]), "pitfall_rate": ratio(c["neg_met"], c["neg_judged"]),
            **c, "tokens": n_gen, "words": word_count(response), "truncated": is_truncated(n_gen, max_new_tokens),
            "distinct_2": distinct_2(response), "repeated_sentences": repeated_sentence_rate(response)}


def summarise(examples: Sequence[dict[str, Any]], n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """A build's (or a theme's) metrics from ``example_metrics`` rows: clipped and unclipped scores, rates, length.

    >>> s = summarise([example_metrics([4, -8], [0, 1], "a b", 8, 8), example_metrics([4, -8], [1, None], "a", 2, 8)])
    >>> s["clipped"], s["unclipped"], s["hit_rate"], s["pitfall_rate"], s["judge_failures"], s["truncation_rate"]
    (0.0, -0.5, 0.5, 1.0, 1, 0.5)
    """
    scores = [e["score"] for e in examples if e.get("score") is not None]
    agg = healthbench.aggregate(scores, n_bootstrap, seed)
    mean, lo, hi = stats.bootstrap_mean_ci(scores, n_bootstrap, seed)
    tot = {k: sum(e.get(k) or 0 for e in examples)
           for k in ("pos_met", "pos_judged", "neg_met", "neg_judged", "judge_failures")}
    tokens = [e["tokens"] for e in examples if e.get("tokens") is not None]
    words = [e["words"] for e in examples if e.get("words") is not None]
    trunc = [e["truncated"] for e in examples if e.get("truncated") is not None]

    def mean_of(key: str) -> float | None:
        values = [e[key] for e in examples if e.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {"n": len(examples), "n_scored": len(scores), "clipped": agg.score, "clipped_std": agg.std,
            "unclipped": mean, "unclipped_ci_low": lo, "unclipped_ci_high": hi,
            "hit_rate": ratio(tot["pos_met"], tot["pos_judged"]),
            "pitfall_rate": ratio(tot["neg_met"], tot["neg_judged"]), **tot,
            "mean_tokens": float(np.mean(tokens)) if tokens else None,
            "mean_words": float(np.mean(words)) if words else None,
            "n_truncated": sum(trunc), "truncation_rate": ratio(sum(trunc), len(trunc)),
            "distinct_2": mean_of("distinct_2"), "repeated_sentences": mean_of("repeated_sentences")}
