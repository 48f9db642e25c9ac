"""Read a training config: YAML (packaged name or path) → overrides → typed TrainConfig → checks.

Everything here is pure: no model, no judge, no data is touched, so a typo in a config fails in
milliseconds with a message naming the file and the key instead of after a model load.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from edgemed.errors import ConfigError
from edgemed.io import absolute
from edgemed.yamlconf import read_yaml_mapping
from edgemed.judges.config import JudgeConfig
from edgemed.train.config import DTYPES, LOSS_TYPES, SCALE_REWARDS, VLLM_MODES, TrainConfig


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``edgemed/configs`` (usable as ``--config NAME``).

    >>> "smollm2_heart_grpo_cpu" in packaged_configs()
    True
    """
    root = resources.files("edgemed") / "configs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def config_path(name_or_path: str) -> Path:
    """A config path from a packaged name (``smollm2_heart_grpo_cpu``) or a file path.

    >>> config_path("smollm2_heart_grpo_cpu").name
    'smollm2_heart_grpo_cpu.yaml'
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = name_or_path[:-5] if name_or_path.endswith(".yaml") else name_or_path
    packaged = resources.files("edgemed") / "configs" / f"{name}.yaml"
    if "/" not in name and packaged.is_file():
        return Path(str(packaged))
    raise ConfigError(f"config '{name_or_path}': no such file, and not a packaged config "
                      f"(packaged: {', '.join(packaged_configs())})")


def load_train_config(name_or_path: str | None = None, overrides: dict[str, Any] | None = None
                      ) -> TrainConfig:
    """Load a YAML config, apply dotted-key overrides, type-check and check it.

    >>> cfg = load_train_config("smollm2_heart_grpo_cpu", {"grpo.max_steps": 3})
    >>> cfg.grpo.max_steps, cfg.judge.backend
    (3, 'proxy')
    >>> load_train_config("smollm2_heart_grpo_cpu", {"grpo.max_step": 3})
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: overrides: unknown key 'grpo.max_step'; known in grpo: ...
    """
    raw: dict[str, Any] = {}
    where = "<defaults>"
    if name_or_path is not None:
        path = config_path(name_or_path)
        where = str(path)
        raw = read_yaml_mapping(path)
    cfg = from_dict(TrainConfig, raw, where)
    for key, value in (overrides or {}).items():
        set_dotted(cfg, key, value, "overrides")
    check_config(cfg, where)
    cfg.output_dir = absolute(cfg.output_dir)  # resolved where it enters: checkpoints outlive the cwd
    return cfg


def from_dict(cls: type, raw: Any, where: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, naming ``where`` and the key on any mistake.

    >>> from edgemed.train.config import LoraSection
    >>> from_dict(LoraSection, {"r": 8}, "x.yaml").r
    8
    >>> from_dict(LoraSection, {"rank": 8}, "x.yaml")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: x.yaml: unknown key 'rank'; known: alpha, dropout, extra, r, target_modules
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'config'}' must be a mapping, "
                          f"got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{prefix}{unknown[0]}'; known: {', '.join(sorted(known))}")
    kwargs = {name: coerce(value, hints[name], where, prefix + name) for name, value in raw.items()}
    return cls(**kwargs)


def coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """Check ``value`` against type hint ``tp`` (YAML scalars only need light conversion).

    >>> coerce(1, float, "x.yaml", "grpo.learning_rate")
    1.0
    >>> coerce("5e-6", float, "x.yaml", "grpo.learning_rate")
    5e-06
    >>> coerce("yes", int, "x.yaml", "grpo.max_steps")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: x.yaml: grpo.max_steps: expected int, got 'yes'
    """
    def bad() -> ConfigError:
        return ConfigError(f"{where}: {key}: expected {_type_name(tp)}, got {value!r}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, where, key)
            except ConfigError:
                continue
        raise bad()
    if tp is JudgeConfig:
        try:
            return JudgeConfig.from_dict(value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {key}: {e}") from e
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        # YAML reads 5e-6 (no dot) as a string; accept any float-looking scalar.
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        (item_tp,) = typing.get_args(tp)
        return [coerce(v, item_tp, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        return dict(value)
    if tp is Any:
        return value
    raise bad()


def set_dotted(cfg: Any, key: str, value: Any, where: str) -> None:
    """Apply one override like ``grpo.learning_rate=1e-5`` (``grpo.extra.epsilon_high`` too).

    >>> cfg = TrainConfig(); set_dotted(cfg, "lora.r", 8, "cli"); cfg.lora.r
    8
    """
    parts = key.split(".")
    target = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, dict):
            target = target.setdefault(part, {})
            continue
        if not dataclasses.is_dataclass(target) or part not in {f.name for f in dataclasses.fields(target)}:
            raise ConfigError(f"{where}: unknown key '{key}'")
        target = getattr(target, part)
    leaf = parts[-1]
    if isinstance(target, dict):
        target[leaf] = value
        return
    names = {f.name for f in dataclasses.fields(target)}
    if leaf not in names:
        section = ".".join(parts[:-1]) or "config"
        raise ConfigError(f"{where}: unknown key '{key}'; known in {section}: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(type(target))
    setattr(target, leaf, coerce(value, hints[leaf], where, key))


def check_config(cfg: TrainConfig, where: str) -> None:
    """Cross-field checks that need no model, data or network.

    >>> cfg = TrainConfig(); cfg.grpo.per_device_train_batch_size = 4
    >>> check_config(cfg, "x.yaml")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: x.yaml: grpo.per_device_train_batch_size (4) must be a multiple of grpo.num_generations (6)
    """
    g = cfg.grpo

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: {message}")

    need(cfg.model.dtype in DTYPES, f"model.dtype must be one of {DTYPES}, got {cfg.model.dtype!r}")
    need(g.scale_rewards in SCALE_REWARDS, f"grpo.scale_rewards must be one of {SCALE_REWARDS}, "
                                           f"got {g.scale_rewards!r}")
    need(g.loss_type in LOSS_TYPES, f"grpo.loss_type must be one of {LOSS_TYPES}, got {g.loss_type!r}")
    need(g.vllm_mode in VLLM_MODES, f"grpo.vllm_mode must be one of {VLLM_MODES}, got {g.vllm_mode!r}")
    need(g.num_generations >= 2, "grpo.num_generations must be >= 2: a group of one has no spread")
    need(g.per_device_train_batch_size % g.num_generations == 0,
         f"grpo.per_device_train_batch_size ({g.per_device_train_batch_size}) must be a multiple of "
         f"grpo.num_generations ({g.num_generations})")
    for name in ("max_steps", "max_completion_length", "logging_steps", "save_steps",
                 "gradient_accumulation_steps"):
        need(getattr(g, name) >= 1, f"grpo.{name} must be >= 1, got {getattr(g, name)}")
    need(g.learning_rate > 0, f"grpo.learning_rate must be > 0, got {g.learning_rate}")
    need(cfg.lora.r >= 1, f"lora.r must be >= 1, got {cfg.lora.r}")
    need(cfg.data.min_rubric_items >= 1, "data.min_rubric_items must be >= 1")
    need(cfg.data.healthbench_mix >= -1, "data.healthbench_mix must be -1 (all), 0 (off) or a count")
    need(bool(cfg.rewards), "rewards: at least one reward is needed")
    for i, entry in enumerate(cfg.rewards):
        need(isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"],
             f"rewards[{i}] needs a 'name' (a registry name or a dotted path)")
    judges = [cfg.judge] + [rc.judge for rc in build_reward_configs(cfg, where)]
    for judge in judges:
        if judge.backend == "openai":
            need(bool(judge.base_url) and str(judge.base_url).startswith(("http://", "https://")),
                 f"judge.base_url must be an http(s) URL for the openai backend, got {judge.base_url!r}")
    for name in ("use_vllm", "vllm_mode", "vllm_server_base_url", "vllm_gpu_memory_utilization"):
        need(name not in g.extra or name == "vllm_server_base_url",
             f"grpo.extra.{name}: set grpo.{name} instead")
    need(not (g.use_vllm and g.vllm_mode == "server" and not g.vllm_server_base_url
              and "vllm_server_host" not in g.extra),
         "grpo.vllm_mode=server needs grpo.vllm_server_base_url (the `trl vllm-serve` URL)")


def build_reward_configs(config: TrainConfig, where: str = "config") -> list:
    """``rewards`` entries → RewardConfig, each inheriting the top-level judge unless it sets one.

    >>> cfg = TrainConfig(); cfg.rewards = [{"name": "complexty"}]
    >>> build_reward_configs(cfg)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: config: rewards[0]: unknown reward 'complexty'; known: ...
    """
    from edgemed.rewards import RewardConfig

    built = []
    for i, entry in enumerate(config.rewards):
        entry = dict(entry)
        entry.setdefault("judge", config.judge)
        try:
            built.append(RewardConfig.from_dict(entry))
        except ConfigError as e:
            raise ConfigError(f"{where}: rewards[{i}]: {e}") from e
    labels = [rc.label for rc in built]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: rewards: two rewards log under the same name ({labels}); trl needs them distinct")
    return built


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp) if t is not type(None))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))
