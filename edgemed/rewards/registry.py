"""Reward names → functions, so configs say ``name: complexity`` or ``name: mypkg.rewards.mine``.

Per-response rewards share one signature, ``fn(points, met, **params) -> float | None``.
Group rewards see the G responses to one prompt at once,
``fn(points, met_rows, **params) -> list[float | None]``; the trl adapter groups rows for them.
"""

from __future__ import annotations

import importlib
from typing import Callable

from edgemed.errors import ConfigError
from edgemed.rewards.paper import complexity, hybrid
from edgemed.rewards.rar import explicit, explicit_categories, explicit_signed, implicit
from edgemed.rewards.softmin import rvpo_group, softmin

RewardFn = Callable[..., "float | None"]

REWARDS: dict[str, RewardFn] = {
    "explicit": explicit,
    "explicit_categories": explicit_categories,
    "explicit_signed": explicit_signed,
    "implicit": implicit,
    "hybrid": hybrid,
    "complexity": complexity,
    "softmin": softmin,
}

GROUP_REWARDS: dict[str, Callable[..., list]] = {
    "rvpo": rvpo_group,
}


def known_names() -> list[str]:
    """Every registered name, per-response and group.

    >>> "complexity" in known_names() and "rvpo" in known_names()
    True
    """
    return sorted(REWARDS) + sorted(GROUP_REWARDS)


def is_group_reward(name: str) -> bool:
    """True for rewards computed over a whole group of responses (dotted paths never are).

    >>> is_group_reward("rvpo"), is_group_reward("hybrid")
    (True, False)
    """
    return name in GROUP_REWARDS


def get_reward(name: str) -> Callable:
    """The reward function registered as ``name``, or imported from a dotted path ``pkg.mod.fn``.

    >>> get_reward("hybrid")([5, -2], [1, 0])
    20.0
    >>> get_reward("edgemed.rewards.rar.explicit").__name__
    'explicit'
    >>> get_reward("hybird")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: unknown reward 'hybird'; known: complexity, explicit, ...
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"reward name must be a non-empty string, got {name!r}")
    if name in REWARDS:
        return REWARDS[name]
    if name in GROUP_REWARDS:
        return GROUP_REWARDS[name]
    if "." not in name:
        raise ConfigError(f"unknown reward {name!r}; known: {', '.join(known_names())} "
                          "(or a dotted path to your own function, e.g. mypkg.rewards.mine)")
    module_name, _, attr = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"reward {name!r}: cannot import module {module_name!r}: {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"reward {name!r}: module {module_name!r} has no function {attr!r}")
    return fn
