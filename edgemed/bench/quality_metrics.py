"""Quality metrics that move at every scale, and paired base-vs-trained tests: pure math, no I/O, no torch.

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
count as partial hits (p of an item). Base vs trained: per-prompt differences (B − A), their mean
with a paired-bootstrap 95% CI, and an exact two-sided sign test.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from edgemed.bench import scoring

# Per-example fields compared between base and trained, and their names in bench.json.
PAIRED_METRICS = {"score": "unclipped_score", "hit_rate": "hit_rate", "pitfall_rate": "pitfall_rate",
                  "tokens": "answer_tokens", "truncated": "truncation", "distinct_2": "distinct_2",
                  "repeated_sentences": "repeated_sentences"}


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when nothing was counted (a rate of nothing is unknown, not 0).

    >>> ratio(3, 4), ratio(0, 0)
    (0.75, None)
    """
    return None if den <= 0 else num / den


def criteria_counts(points: Sequence[float], met: Sequence[scoring.Met]) -> dict[str, float]:
    """Met/judged counts of positive and negative items, plus judge failures (None), of one example.

    >>> criteria_counts([5, 3, -4, -2], [1, None, 1, 0])
    {'pos_met': 1.0, 'pos_judged': 1, 'neg_met': 1.0, 'neg_judged': 2, 'judge_failures': 1}
    """
    graded = scoring._graded(points, met)
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


def example_metrics(points: Sequence[float], met: Sequence[scoring.Met], response: str | None = None,
                    n_gen: int | None = None, max_new_tokens: int | None = None) -> dict[str, Any]:
    """One example's unclipped score, hit and pitfall rates, counts and length, for bench.json's per_example.

    >>> e = example_metrics([5, 3, -4], [1, 0, 1], "Seek care now.", 4, 4)
    >>> e["score"], e["hit_rate"], e["pitfall_rate"], e["words"], e["truncated"]
    (0.125, 0.5, 1.0, 3, True)
    """
    c = criteria_counts(points, met)
    return {"score": scoring.example_score(points, met),
            "hit_rate": ratio(c["pos_met"], c["pos_judged"]), "pitfall_rate": ratio(c["neg_met"], c["neg_judged"]),
            **c, "tokens": n_gen, "words": word_count(response), "truncated": is_truncated(n_gen, max_new_tokens),
            "distinct_2": distinct_2(response), "repeated_sentences": repeated_sentence_rate(response)}


def bootstrap_mean_ci(values: Sequence[float], n_bootstrap: int = 1000,
                      seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Unclipped mean and its 95% percentile bootstrap CI (resampling examples with replacement).

    >>> bootstrap_mean_ci([-0.5, -0.5, -0.5])
    (-0.5, -0.5, -0.5)
    >>> m, lo, hi = bootstrap_mean_ci([-1.0, 0.0] * 20); m, lo < m < hi
    (-0.5, True)
    >>> bootstrap_mean_ci([])
    (None, None, None)
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None, None, None
    rng = np.random.default_rng(seed)
    boot = arr[rng.integers(0, arr.size, size=(n_bootstrap, arr.size))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    mean = float(arr.mean())
    return mean, min(float(lo), mean), max(float(hi), mean)


def summarise(examples: Sequence[dict[str, Any]], n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """A build's (or a theme's) metrics from ``example_metrics`` rows: clipped and unclipped scores, rates, length.

    >>> s = summarise([example_metrics([4, -8], [0, 1], "a b", 8, 8), example_metrics([4, -8], [1, None], "a", 2, 8)])
    >>> s["clipped"], s["unclipped"], s["hit_rate"], s["pitfall_rate"], s["judge_failures"], s["truncation_rate"]
    (0.0, -0.5, 0.5, 1.0, 1, 0.5)
    """
    scores = [e["score"] for e in examples if e.get("score") is not None]
    agg = scoring.aggregate(scores, n_bootstrap, seed)
    mean, lo, hi = bootstrap_mean_ci(scores, n_bootstrap, seed)
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


# --- base vs trained -----------------------------------------------------------------------------

def sign_test(diffs: Sequence[float], tol: float = 1e-12) -> tuple[int, int, float]:
    """Exact two-sided sign test: (n up, n down, p); ties (|d| ≤ tol) are dropped, no differences → p = 1.

    >>> sign_test([0.1] * 8)                          # all 8 up: p = 2 / 2^8
    (8, 0, 0.0078125)
    >>> sign_test([0.0, 0.0]), sign_test([0.2, -0.1])
    ((0, 0, 1.0), (1, 1, 1.0))
    """
    up = sum(1 for d in diffs if d > tol)
    down = sum(1 for d in diffs if d < -tol)
    n = up + down
    if n == 0:
        return up, down, 1.0
    k = min(up, down)
    return up, down, min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def paired_difference(a: Sequence[float], b: Sequence[float], n_bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """Mean per-prompt difference B − A, its paired-bootstrap 95% CI and the sign test, on one metric.

    >>> d = paired_difference([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    >>> d["diff"], d["ci_low"], d["ci_high"], d["sign_p"]
    (0.0, 0.0, 0.0, 1.0)
    >>> d = paired_difference([0.0] * 10, [0.5] * 10); d["diff"], d["ci_low"], d["n_up"], round(d["sign_p"], 4)
    (0.5, 0.5, 10, 0.002)
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1 or a_arr.size == 0:
        raise ValueError("paired_difference needs two equally long, non-empty lists")
    d = b_arr - a_arr
    diff, lo, hi = bootstrap_mean_ci(d, n_bootstrap, seed)
    up, down, p = sign_test(d.tolist())
    return {"n": int(d.size), "mean_a": float(a_arr.mean()), "mean_b": float(b_arr.mean()), "diff": diff,
            "ci_low": lo, "ci_high": hi, "n_up": up, "n_down": down, "n_tie": int(d.size) - up - down,
            "sign_p": p}


def _intercept_and_slope(dy: np.ndarray, dx: np.ndarray) -> tuple[float, float]:
    """OLS of dy on dx: (intercept, slope); a constant dx leaves only the mean (slope 0)."""
    if dx.size < 2 or float(np.var(dx)) < 1e-12:
        return float(dy.mean()), 0.0
    slope = float(np.cov(dx, dy, bias=True)[0, 1] / np.var(dx))
    return float(dy.mean() - slope * dx.mean()), slope


LENGTH_CONTROL_METHOD = ("intercept of the per-prompt score difference regressed on the per-prompt answer-token "
                         "difference (OLS), i.e. the expected gain when both answers have equal length; "
                         "95% CI by paired bootstrap over prompts")


def length_controlled_difference(a_scores: Sequence[float], b_scores: Sequence[float], a_len: Sequence[float],
                                 b_len: Sequence[float], n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The score difference B − A at equal answer length, with its paired-bootstrap 95% CI.

    Per prompt, d_score = α + β·d_tokens: a gain bought by writing longer answers shows as β > 0
    with α near 0; α is what B gains over A when the two answers are equally long.

    >>> a, b = [0.1, 0.2, 0.3, 0.4], [0.2, 0.4, 0.6, 0.8]
    >>> r = length_controlled_difference(a, b, [10, 10, 10, 10], [20, 30, 40, 50])  # all the gain is length
    >>> round(r["diff"], 6), round(r["slope_per_100_tokens"], 4), r["length_diff"]
    (0.0, 1.0, 25.0)
    >>> r = length_controlled_difference([0.0] * 6, [0.1] * 6, [5] * 6, [5, 6, 4, 5, 6, 4])
    >>> round(r["diff"], 6), round(r["ci_low"], 6)
    (0.1, 0.1)
    """
    ys = np.asarray(b_scores, float) - np.asarray(a_scores, float)
    xs = np.asarray(b_len, float) - np.asarray(a_len, float)
    if ys.shape != xs.shape or ys.size == 0:
        raise ValueError("length_controlled_difference needs equally long, non-empty lists")
    alpha, beta = _intercept_and_slope(ys, xs)
    rng = np.random.default_rng(seed)
    boot = [_intercept_and_slope(ys[idx], xs[idx])[0]
            for idx in rng.integers(0, ys.size, size=(n_bootstrap, ys.size))]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"method": LENGTH_CONTROL_METHOD, "n": int(ys.size), "diff": alpha, "ci_low": min(float(lo), alpha),
            "ci_high": max(float(hi), alpha), "slope_per_100_tokens": beta * 100, "length_diff": float(xs.mean())}


def length_controlled(ex_a: dict[str, dict], ex_b: dict[str, dict], n_bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, Any] | None:
    """``length_controlled_difference`` over the prompts where both builds have a score and a length.

    >>> a = {"p1": {"score": 0.1, "tokens": 50}, "p2": {"score": 0.2, "tokens": 60}}
    >>> b = {"p1": {"score": 0.3, "tokens": 50}, "p2": {"score": 0.4, "tokens": 60}}
    >>> round(length_controlled(a, b)["diff"], 6)
    0.2
    """
    common = sorted(p for p in set(ex_a) & set(ex_b)
                    if all(d[p].get(k) is not None for d in (ex_a, ex_b) for k in ("score", "tokens")))
    if not common:
        return None
    return length_controlled_difference([ex_a[p]["score"] for p in common], [ex_b[p]["score"] for p in common],
                                        [ex_a[p]["tokens"] for p in common], [ex_b[p]["tokens"] for p in common],
                                        n_bootstrap, seed)


KEYWORD_MEASURE = "paper keyword heuristic (no judge): pass rate"


def independent_measures(qa: dict[str, Any], qb: dict[str, Any], n_bootstrap: int = 1000,
                         seed: int = 0) -> list[dict[str, Any]]:
    """Base-vs-trained differences on measures that do not use the evaluation judge: the independent
    judge's unclipped score when one graded (``independent_judge``), then the paper's keyword heuristic.

    >>> qa = {"per_example": {"p1": {"keyword_pass": False}, "p2": {"keyword_pass": True}}}
    >>> qb = {"per_example": {"p1": {"keyword_pass": True}, "p2": {"keyword_pass": True}}}
    >>> [(m["measure"], m["diff"]) for m in independent_measures(qa, qb)]
    [('paper keyword heuristic (no judge): pass rate', 0.5)]
    """
    out = []
    ja, jb = qa.get("independent_judge") or {}, qb.get("independent_judge") or {}
    sa, sb = ja.get("per_example_score") or {}, jb.get("per_example_score") or {}
    common = sorted(p for p in set(sa) & set(sb) if sa[p] is not None and sb[p] is not None)
    if common:
        d = paired_difference([sa[p] for p in common], [sb[p] for p in common], n_bootstrap, seed)
        out.append({"measure": f"{jb.get('name') or 'independent judge'}: unclipped score", **d})
    ka, kb = qa.get("per_example") or {}, qb.get("per_example") or {}
    common = sorted(p for p in set(ka) & set(kb)
                    if ka[p].get("keyword_pass") is not None and kb[p].get("keyword_pass") is not None)
    if common:
        d = paired_difference([float(ka[p]["keyword_pass"]) for p in common],
                              [float(kb[p]["keyword_pass"]) for p in common], n_bootstrap, seed)
        out.append({"measure": KEYWORD_MEASURE, **d})
    return out


def compare_examples(ex_a: dict[str, dict], ex_b: dict[str, dict], n_bootstrap: int = 1000,
                     seed: int = 0) -> dict[str, dict[str, Any]]:
    """Paired differences on every metric in PAIRED_METRICS, over the prompts where both have a value.

    A metric missing from the per-example rows (an old bench.json) is simply left out.

    >>> a = {"p1": {"score": -0.2, "tokens": 80}, "p2": {"score": 0.1, "tokens": 40}}
    >>> b = {"p1": {"score": 0.0, "tokens": 60}, "p2": {"score": 0.3, "tokens": 20}}
    >>> c = compare_examples(a, b); sorted(c), round(c["unclipped_score"]["diff"], 6), c["answer_tokens"]["diff"]
    (['answer_tokens', 'unclipped_score'], 0.2, -20.0)
    """
    out = {}
    for field, name in PAIRED_METRICS.items():
        common = sorted(p for p in set(ex_a) & set(ex_b)
                        if ex_a[p].get(field) is not None and ex_b[p].get(field) is not None)
        if common:
            out[name] = paired_difference([ex_a[p][field] for p in common], [ex_b[p][field] for p in common],
                                          n_bootstrap, seed)
    return out


def verdict(ci_low: float | None, ci_high: float | None, higher_is_better: bool = True) -> str:
    """Plain words for a difference's 95% CI: only a CI that excludes 0 counts as a change.

    >>> verdict(0.01, 0.09), verdict(-0.01, 0.09), verdict(-0.09, -0.01)
    ('helped', 'not shown to help', 'made it worse')
    """
    if ci_low is None or ci_high is None:
        return "not measured"
    if ci_low > 0:
        return "helped" if higher_is_better else "made it worse"
    if ci_high < 0:
        return "made it worse" if higher_is_better else "helped"
    return "not shown to help"
