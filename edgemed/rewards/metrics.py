"""What a batch of rubric verdicts says beyond its rewards: hit rates, judge failures, None rewards.

Logged through trl's ``log_metric`` next to ``rewards/<name>/mean``. Per-tag rates use only tags
with chosen prefixes (``axis:``, ``category:``): a few dozen keys, not one per criterion.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

from edgemed.data.schema import RubricItem


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def verdict_metrics(items_rows: Sequence[Sequence[RubricItem]], met_rows: Sequence[Sequence[float | None]],
                    tag_prefixes: Sequence[str] = ("axis:", "category:")) -> dict[str, float]:
    """Hit rates and judge failures over a batch of criterion verdicts.

    ``hit_rate/positive``: mean verdict of desirable items; ``hit_rate/pitfall``: how often a
    pitfall was triggered; ``satisfied/<tag>``: mean satisfaction (met, or 1 − met for pitfalls)
    of the items with that tag; ``criteria``: verdicts asked for (this process's rows; what the
    judge's time per step is spent on); ``judge_failures``: verdicts that are None, and their rate.
    A rate with no graded item behind it is left out rather than reported as 0.

    >>> items = [RubricItem("a", 5, ("axis:accuracy",)), RubricItem("b", -2, ("axis:accuracy",))]
    >>> m = verdict_metrics([items, items], [[1.0, 1.0], [None, 0.0]])
    >>> m["hit_rate/positive"], m["hit_rate/pitfall"], m["satisfied/axis:accuracy"], m["judge_failures"]
    (1.0, 0.5, 0.6666666666666666, 1.0)
    """
    positive, pitfall = [], []
    by_tag: dict[str, list[float]] = defaultdict(list)
    failures = total = 0
    for items, mets in zip(items_rows, met_rows, strict=True):
        for it, m in zip(items, mets, strict=True):
            total += 1
            if m is None:
                failures += 1
                continue
            (pitfall if it.points < 0 else positive).append(m)
            for tag in it.tags:
                if tag.startswith(tuple(tag_prefixes)):
                    by_tag[tag].append(1.0 - m if it.points < 0 else m)
    out = {"criteria": float(total), "judge_failures": float(failures),
           "judge_failure_rate": failures / total if total else 0.0}
    if positive:
        out["hit_rate/positive"] = _mean(positive)
    if pitfall:
        out["hit_rate/pitfall"] = _mean(pitfall)
    for tag in sorted(by_tag):
        out[f"satisfied/{tag}"] = _mean(by_tag[tag])
    return out


def reward_metrics(rewards: Sequence[float | None], n_groups: int, n_flattened: int) -> dict[str, float]:
    """The share of rows without a reward and of groups silenced by the minimum-spread filter.

    >>> reward_metrics([0.5, None, 1.0, 0.2], n_groups=2, n_flattened=1)
    {'frac_none': 0.25, 'groups': 2.0, 'mean_group_size': 2.0, 'frac_groups_flattened': 0.5}
    """
    n = len(rewards)
    return {
        "frac_none": sum(r is None for r in rewards) / n if n else 0.0,
        "groups": float(n_groups),
        "mean_group_size": n / n_groups if n_groups else 0.0,
        "frac_groups_flattened": n_flattened / n_groups if n_groups else 0.0,
    }


def rank_metrics(rewards: Sequence[float | None], shares: Sequence[int]) -> dict[str, float]:
    """Each process's mean reward over its own rows, when several processes share a batch: the
    log's evidence that every rank generated and was scored. Nothing for a single process, and
    nothing for a rank whose rows all lack a reward.

    >>> rank_metrics([1.0, 0.0, None, 0.5], shares=[2, 2])
    {'rank0/mean': 0.5, 'rank1/mean': 0.5}
    >>> rank_metrics([1.0, 0.0], shares=[2])
    {}
    """
    if len(shares) < 2:
        return {}
    out, start = {}, 0
    for rank, n in enumerate(shares):
        values = [r for r in rewards[start:start + n] if r is not None]
        start += n
        if values:
            out[f"rank{rank}/mean"] = _mean(values)
    return out
