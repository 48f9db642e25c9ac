"""Reading configs at the door: a YAML file that must be a mapping, a mapping onto a dataclass.

Every stage's config goes through these two, so a bad file or key fails the same way everywhere:
one ConfigError naming the file (or the section) and the key.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgemed.errors import ConfigError

T = TypeVar("T")


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Load a YAML file whose top level must be a mapping (an empty file is ``{}``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"; _ = p.write_text("a: 1\\n")
    >>> read_yaml_mapping(p)
    {'a': 1}
    >>> _ = p.write_text("- 1\\n"); read_yaml_mapping(p)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: ...c.yaml: top level must be a mapping, got list
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    return raw


def dataclass_from_mapping(cls: type[T], raw: Any, what: str) -> T:
    """``cls(**raw)`` after checking ``raw`` is a mapping of known fields (``None`` → defaults).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     x: int = 1
    >>> dataclass_from_mapping(C, {"x": 2}, "demo"), dataclass_from_mapping(C, None, "demo")
    (C(x=2), C(x=1))
    >>> dataclass_from_mapping(C, {"y": 2}, "demo")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: unknown demo option(s) ['y']; known: ['x']
    """
    if isinstance(raw, cls):
        return raw
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} config must be a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; known: {sorted(known)}")
    return cls(**raw)
