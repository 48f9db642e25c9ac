"""Base vs trained: two builds' per-prompt rows (bench.json ``per_example``) → paired tests, in plain words.

Every comparison runs on the prompts both builds have a value for, with the tests of
``edgemed.bench.quality.stats``: the clipped HealthBench mean by paired bootstrap and the paper's pass/fail
by McNemar (``compare_paired``); per-prompt differences with a bootstrap CI and a sign test on every
metric that moves at every scale (``compare_examples``); the gain at equal answer length
(``length_controlled``); measures the evaluation judge had no hand in (``independent_measures``).
Pure math over dicts: no I/O, no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgemed.bench.quality import stats

# Per-example fields compared between base and trained, and their names in bench.json.
PAIRED_METRICS = {"score": "unclipped_score", "hit_rate": "hit_rate", "pitfall_rate": "pitfall_rate",
                  "tokens": "answer_tokens", "truncated": "truncation", "distinct_2": "distinct_2",
                  "repeated_sentences": "repeated_sentences"}


@dataclass(frozen=True)
class PairedComparison:
    """B − A on the same prompts: HealthBench clipped-mean difference with a paired bootstrap,
    and McNemar's exact test on the paper's pass/fail."""

    n: int
    score_a: float
    score_b: float
    diff: float
    diff_ci_low: float
    diff_ci_high: float
    bootstrap_p: float
    a_only_pass: int
    b_only_pass: int
    mcnemar_p: float

    def to_dict(self) -> dict:
        return asdict(self)


def compare_paired(scores_a: dict[str, float], scores_b: dict[str, float],
                   norms_a: dict[str, float], norms_b: dict[str, float],
                   n_bootstrap: int = 1000, seed: int = 0) -> PairedComparison | None:
    """Compare two runs on the prompt_ids both scored (per-example HealthBench scores and norms).

    >>> c = compare_paired({"p1": 0.1, "p2": 0.2}, {"p1": 0.9, "p2": 0.8},
    ...                    {"p1": 0.4, "p2": 0.4}, {"p1": 0.9, "p2": 0.9})
    >>> round(c.diff, 6), c.b_only_pass, c.mcnemar_p
    (0.7, 2, 0.5)
    """
    common = sorted(set(scores_a) & set(scores_b))
    if not common:
        return None
    a, b = [scores_a[k] for k in common], [scores_b[k] for k in common]
    diff, lo, hi, p = stats.paired_bootstrap(a, b, n_bootstrap, seed)
    paired_norms = [k for k in common if k in norms_a and k in norms_b]
    a_only, b_only, p_mc = stats.mcnemar_exact([norms_a[k] > 0.5 for k in paired_norms],
                                               [norms_b[k] > 0.5 for k in paired_norms])
    return PairedComparison(len(common), float(np.clip(np.mean(a), 0, 1)), float(np.clip(np.mean(b), 0, 1)),
                            diff, lo, hi, p, a_only, b_only, p_mc)


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
            out[name] = stats.paired_difference([ex_a[p][field] for p in common], [ex_b[p][field] for p in common],
                                                n_bootstrap, seed)
    return out


def length_controlled(ex_a: dict[str, dict], ex_b: dict[str, dict], n_bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, Any] | None:
    """``stats.length_controlled_difference`` over the prompts where both builds have a score and a length.

    >>> a = {"p1": {"score": 0.1, "tokens": 50}, "p2": {"score": 0.2, "tokens": 60}}
    >>> b = {"p1": {"score": 0.3, "tokens": 50}, "p2": {"score": 0.4, "tokens": 60}}
    >>> round(length_controlled(a, b)["diff"], 6)
    0.2
    """
    common = sorted(p for p in set(ex_a) & set(ex_b)
                    if all(d[p].get(k) is not None for d in (ex_a, ex_b) for k in ("score", "tokens")))
    if not common:
        return None
    return stats.length_controlled_difference(
        [ex_a[p]["score"] for p in common], [ex_b[p]["score"] for p in common],
        [ex_a[p]["tokens"] for p in common], [ex_b[p]["tokens"] for p in common], n_bootstrap, seed)


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
        d = stats.paired_difference([sa[p] for p in common], [sb[p] for p in common], n_bootstrap, seed)
        out.append({"measure": f"{jb.get('name') or 'independent judge'}: unclipped score", **d})
    ka, kb = qa.get("per_example") or {}, qb.get("per_example") or {}
    common = sorted(p for p in set(ka) & set(kb)
                    if ka[p].get("keyword_pass") is not None and kb[p].get("keyword_pass") is not None)
    if common:
        d = stats.paired_difference([float(ka[p]["keyword_pass"]) for p in common],
                                    [float(kb[p]["keyword_pass"]) for p in common], n_bootstrap, seed)
        out.append({"measure": KEYWORD_MEASURE, **d})
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
