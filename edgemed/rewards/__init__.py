"""Rubric rewards: pure functions (points, met) → reward, a registry, and the trl adapter.

Every reward has the signature ``fn(points, met, **params) -> float | None``: ``points`` are the
rubric items' signed points, ``met`` the judge's verdicts (1/0, a probability, or None when the
judge failed). Formulas, sources and worked examples: docs/rewards.md.

>>> from edgemed import rewards
>>> rewards.hybrid([5, 3, -2], [1, 0, 0]), rewards.explicit([5, 3, -2], [1, None, 0])
(9.375, 1.0)
"""

from edgemed.rewards.config import RewardConfig
from edgemed.rewards.core import Tally, binarize, tally
from edgemed.rewards.group import flatten_low_spread, group_rows
from edgemed.rewards.paper import complexity, hybrid
from edgemed.rewards.rar import CATEGORY_WEIGHTS, explicit, explicit_categories, explicit_signed, implicit
from edgemed.rewards.registry import GROUP_REWARDS, REWARDS, get_reward, known_names
from edgemed.rewards.softmin import rvpo_group, softmin
from edgemed.rewards.trl_adapter import RubricReward, rubric_reward_func

__all__ = [
    "CATEGORY_WEIGHTS", "GROUP_REWARDS", "REWARDS", "RewardConfig", "RubricReward", "Tally", "binarize",
    "complexity", "explicit", "explicit_categories", "explicit_signed", "flatten_low_spread", "get_reward",
    "group_rows", "hybrid", "implicit", "known_names", "rubric_reward_func", "rvpo_group", "softmin", "tally",
]
