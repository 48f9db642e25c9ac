"""GRPO groups: find the responses that share a prompt, and silence groups whose spread is noise.

GRPO's advantage is (r − mean_G r) / std_G r (docs/method.md §4). With continuous judge scores a
group of near-equal rewards divided by a tiny std turns judge noise into a full-size gradient.
The minimum-spread filter gives such a group equal rewards (their mean), so its advantages are
exactly 0 and trl counts it in ``frac_reward_zero_std``.
"""

from __future__ import annotations

import math
from typing import Hashable, Sequence

from edgemed.errors import ConfigError


def group_rows(keys: Sequence[Hashable]) -> list[list[int]]:
    """Row indices grouped by identical key, in order of first appearance.

    trl passes the G generations of one prompt as consecutive rows, but grouping by the prompt
    itself stays right when a batch is split or shuffled differently.

    >>> group_rows(["a", "a", "b", "a", "b"])
    [[0, 1, 3], [2, 4]]
    """
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def spread(rewards: Sequence[float | None]) -> float | None:
    """max − min over the rewards that exist; None when none does.

    >>> spread([0.2, None, 0.5]), spread([None])
    (0.3, None)
    """
    vals = [r for r in rewards if r is not None]
    return (max(vals) - min(vals)) if vals else None


def flatten_low_spread(rewards: Sequence[float | None], min_spread: float) -> tuple[list[float | None], bool]:
    """One group's rewards, replaced by their mean when their spread is below ``min_spread``.

    Returns the new rewards and whether the group was flattened. None stays None (a response the
    judge could not grade is not given the group's mean). ``min_spread`` is in the reward's own
    units (e.g. 0–20 for hybrid); 0 disables the filter.

    >>> flatten_low_spread([0.50, 0.52, None, 0.51], min_spread=0.05)
    ([0.51, 0.51, None, 0.51], True)
    >>> flatten_low_spread([0.1, 0.9], min_spread=0.05)
    ([0.1, 0.9], False)
    """
    if isinstance(min_spread, bool) or not isinstance(min_spread, (int, float)) or not min_spread >= 0:
        raise ConfigError(f"min_group_spread must be a number >= 0, got {min_spread!r}")
    s = spread(rewards)
    if s is None or s >= min_spread:
        return list(rewards), False
    vals = [r for r in rewards if r is not None]
    mean = math.fsum(vals) / len(vals)
    return [None if r is None else mean for r in rewards], True


def criteria_subset(points: Sequence[float], k: int, seed: str) -> list[int]:
    """Indices of at most ``k`` criteria, drawn at random (seeded) with one pitfall kept when any exists.

    One group's completions are graded on the same subset, so their rewards stay comparable; over
    steps every criterion is drawn. ``k`` = 0 or a rubric no longer than ``k`` keeps all of it.

    >>> criteria_subset([5, 3, -4, 2, 1], 0, "s")
    [0, 1, 2, 3, 4]
    >>> sub = criteria_subset([5, 3, -4, 2, 1, 4], 3, "step-1"); len(sub), 2 in sub, sub == sorted(sub)
    (3, True, True)
    >>> criteria_subset([5, 3, -4, 2, 1, 4], 3, "step-1") == sub   # same seed, same subset
    True
    """
    import random

    n = len(points)
    if k <= 0 or n <= k:
        return list(range(n))
    rng = random.Random(seed)
    pitfalls = [i for i, p in enumerate(points) if p < 0]
    chosen = {rng.choice(pitfalls)} if pitfalls else set()
    rest = [i for i in range(n) if i not in chosen]
    chosen.update(rng.sample(rest, k - len(chosen)))
    return sorted(chosen)

