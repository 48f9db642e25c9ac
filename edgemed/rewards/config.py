"""RewardConfig: which rubric reward trains the policy, graded by which judge, with which guards.

A train config holds a list of these; each becomes one trl reward function (its ``weight`` goes
to trl's ``reward_weights``). YAML: ``rewards: [{name: complexity, judge: {backend: openai}}]``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from edgemed.errors import ConfigError
from edgemed.judges.config import JudgeConfig
from edgemed.rewards.registry import get_reward, is_group_reward

# Filled in by the adapter from the rubric and the judge, never by the user.
ADAPTER_PARAMS = ("tags", "rating")


@dataclass
class RewardConfig:
    """One rubric reward. Build from YAML/CLI dicts with :meth:`from_dict`.

    >>> RewardConfig.from_dict({"name": "softmin", "params": {"k": 3.0}}).params
    {'k': 3.0}
    >>> RewardConfig(name="hybrid", params={"k": 3.0})
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: reward 'hybrid' takes no parameter 'k'; it takes: none
    """

    name: str = field(default="complexity", metadata={
        "help": "Registered reward (explicit, explicit_categories, explicit_signed, implicit, hybrid, "
                "complexity, softmin, rvpo) or a dotted path to your own fn(points, met, **params). "
                "complexity is the paper's best (arXiv 2606.05174)."})
    weight: float = field(default=1.0, metadata={
        "help": "This reward's entry in trl's reward_weights when several rewards are combined."})
    params: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Keyword parameters of the reward function (e.g. softmin k, explicit_categories "
                "weights); checked against its signature so a typo fails at startup."})
    judge: JudgeConfig | dict[str, Any] = field(default_factory=JudgeConfig, metadata={
        "help": "The judge that grades each criterion (or rates the whole response for implicit)."})
    binarize: bool = field(default=False, metadata={
        "help": "Threshold judge probabilities at 0.5 for the paper's exact yes/no behaviour; "
                "False keeps continuous partial credit c_j = P(met)."})
    min_graded_frac: float = field(default=0.0, metadata={
        "help": "Give None (trl skips the row) when fewer than this fraction of a response's items "
                "were graded; 0 scores any response with at least one verdict."})
    min_group_spread: float = field(default=0.0, metadata={
        "help": "Groups whose reward max−min is below this (reward units) get equal rewards, so judge "
                "noise yields no gradient (docs/method.md §4); 0 disables."})
    max_criteria: int = field(default=0, metadata={
        "help": "Grade at most this many criteria per GRPO group, a random subset every completion of the group "
                "shares (a pitfall kept whenever the rubric has one), to cut an LLM judge's cost per step; 0: all."})
    concurrency: int | None = field(default=None, metadata={
        "help": "Judge calls in flight for this reward; None uses judge.concurrency."})
    log_tag_prefixes: tuple[str, ...] = field(default=("axis:", "category:"), metadata={
        "help": "Hit rates are logged per tag with these prefixes: a few dozen keys, not one per criterion."})

    def __post_init__(self) -> None:
        self.judge = JudgeConfig.from_dict(self.judge)
        if not isinstance(self.params, dict):
            raise ConfigError(f"must be a mapping, got {type(self.params).__name__}", key="params")
        fn = get_reward(self.name)
        _check_params(self.name, fn, self.params)
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) \
                or not math.isfinite(self.weight):
            raise ConfigError(f"must be a finite number, got {self.weight!r}", key="weight")
        for name in ("min_graded_frac", "min_group_spread"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"must be a number >= 0, got {value!r}", key=name)
        if self.min_graded_frac > 1:
            raise ConfigError(f"must be <= 1, got {self.min_graded_frac!r}", key="min_graded_frac")
        if isinstance(self.max_criteria, bool) or not isinstance(self.max_criteria, int) or self.max_criteria < 0:
            raise ConfigError(f"must be an integer >= 0, got {self.max_criteria!r}", key="max_criteria")
        if self.concurrency is not None and (not isinstance(self.concurrency, int) or self.concurrency < 1):
            raise ConfigError(f"must be None or an integer >= 1, got {self.concurrency!r}", key="concurrency")
        self.log_tag_prefixes = tuple(self.log_tag_prefixes)

    @property
    def is_group(self) -> bool:
        """Whether the reward needs the whole GRPO group of a prompt (e.g. rvpo)."""
        return is_group_reward(self.name)

    @property
    def label(self) -> str:
        """The name trl logs this reward under: the registered name, or a dotted path's last part."""
        return self.name.rpartition(".")[2]

    @classmethod
    def from_dict(cls, raw: "RewardConfig | dict[str, Any] | str | None", where: str = "",
                  key: str = "reward") -> "RewardConfig":
        """Accept a RewardConfig, a mapping (read by ``edgemed.config_reader``: errors name ``where``
        and the key under ``key``), a bare name, or None.

        >>> RewardConfig.from_dict({"name": "softmin", "spread": 1}, "t.yaml", "rewards[0]")
        Traceback (most recent call last):
        ...
        edgemed.errors.ConfigError: t.yaml: rewards[0].spread: unknown key (known: ...)
        """
        from edgemed.config_reader import from_mapping

        if isinstance(raw, str):
            raw = {"name": raw}
        return from_mapping(cls, raw, where, key)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for manifests (the judge as its own dict)."""
        d = asdict(self)
        d["log_tag_prefixes"] = list(self.log_tag_prefixes)
        return d


def _check_params(name: str, fn, params: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C function: its own call will complain
    ps = list(sig.parameters.values())[2:]  # after (points, met) or (points, met_rows)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps):
        return
    accepted = [p.name for p in ps if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in params:
        if key in ADAPTER_PARAMS and key in accepted:
            raise ConfigError(f"reward {name!r}: {key!r} comes from the rubric and the judge, not the config")
        if key not in accepted:
            settable = [a for a in accepted if a not in ADAPTER_PARAMS]
            raise ConfigError(f"reward {name!r} takes no parameter {key!r}; "
                              f"it takes: {', '.join(settable) or 'none'}")
