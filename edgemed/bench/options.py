"""The options `edgemed bench` and `edgemed bench pack` share, made from BenchConfig's field metadata.

A setting lives in one place, its dataclass field (type, default, help), the way trl builds its CLI
from dataclass fields: ``shared_options`` turns the fields named in ``SHARED`` into click options with
the field's own help, and ``config_from_options`` turns what the user gave back into a BenchConfig
(options left unset stay out, so the suite's values stand). Adding a shared setting is one line here.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable

import click

from edgemed.bench.config import BenchConfig, LatencyConfig, QualityConfig, load_config

# flag → (section, field): None = BenchConfig itself. A "--no-" flag turns a true default off.
SHARED: dict[str, tuple[str | None, str]] = {
    "--manifest": (None, "manifests"), "--suite": (None, "suite"), "--artifact": (None, "artifacts"),
    "--reference": (None, "references"), "--include-failed": (None, "include_failed"),
    "--threads": ("latency", "threads"), "--n-prompts": ("quality", "n_prompts"),
    "--max-new-tokens": ("quality", "max_new_tokens"), "--n-prompt": ("latency", "n_prompt"),
    "--n-gen": ("latency", "n_gen"), "--repetitions": ("latency", "repetitions"),
    "--no-quality": ("quality", "enabled"), "--no-latency": ("latency", "enabled"),
}
SECTIONS = {None: BenchConfig, "quality": QualityConfig, "latency": LatencyConfig}
# How a list option reads on the command line, where the field's help speaks of the YAML list.
LIST_USAGE = {"manifests": "Repeat as --manifest base=DIR --manifest trained=DIR to compare two exports.",
              "artifacts": "Repeatable.", "references": "Repeatable."}


def param_name(flag: str) -> str:
    """The click parameter a flag fills.

    >>> param_name("--no-quality"), param_name("--manifest")
    ('no_quality', 'manifest')
    """
    return flag.lstrip("-").replace("-", "_")


def _field(section: str | None, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(SECTIONS[section]) if f.name == name)


def _option(flag: str, section: str | None, name: str) -> Callable:
    f = _field(section, name)
    key = f"{section}.{name}" if section else name
    tag = "" if name == "suite" else f" [suite key: {key}]"  # the YAML key that sets the same thing
    help_text = f"{f.metadata['help']}{tag}"
    hints = typing.get_type_hints(SECTIONS[section])
    kind = typing.get_origin(hints[name]) or hints[name]
    args = [a for a in typing.get_args(hints[name]) if a is not type(None)]
    if flag.startswith("--no-"):
        return click.option(flag, param_name(flag), is_flag=True, help=f"Set {key} false. {help_text}")
    if hints[name] is bool:
        return click.option(flag, param_name(flag), is_flag=True, help=help_text)
    if kind is list or (args and typing.get_origin(args[0]) is list):
        return click.option(flag, param_name(flag), multiple=True,
                            help=f"{f.metadata['help']} {LIST_USAGE.get(name, '')}{tag}")
    scalar = args[0] if args else hints[name]
    return click.option(flag, param_name(flag), type=scalar if scalar in (int, float) else str, default=None,
                        help=help_text)


def shared_options(command: Callable) -> Callable:
    """Decorate a click command with every ``SHARED`` option, in ``SHARED``'s order."""
    for flag, (section, name) in reversed(SHARED.items()):
        command = _option(flag, section, name)(command)
    return command


def config_from_options(out: str, options: dict[str, Any], **overrides: Any) -> BenchConfig:
    """The ``SHARED`` options a command received (popped from ``options``) → a validated BenchConfig.

    >>> opts = {param_name(f): None for f in SHARED} | {"manifest": ("m",), "artifact": (), "reference": (),
    ...         "include_failed": False, "no_quality": False, "no_latency": True, "n_prompts": 2, "suite": "smoke"}
    >>> cfg = config_from_options("/tmp/o", opts)
    >>> cfg.quality.n_prompts, cfg.latency.enabled, [m.label for m in cfg.manifests], cfg.latency.n_prompt, opts
    (2, False, ['m'], 64, {})
    """
    raw: dict[str, Any] = {"out": out}
    sections: dict[str, dict[str, Any]] = {"quality": {}, "latency": {}}
    for flag, (section, name) in SHARED.items():
        value = options.pop(param_name(flag))
        if value is None or value is False or value == ():
            continue  # unset: the suite's value (or the default) stands
        value = False if flag.startswith("--no-") else list(value) if isinstance(value, tuple) else value
        (raw if section is None else sections[section])[name] = value
    return load_config(raw, quality=sections["quality"] or None, latency=sections["latency"] or None, **overrides)
