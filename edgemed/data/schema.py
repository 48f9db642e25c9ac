"""The rubric schema every source is mapped onto (docs/method.md §1).

A record is a chat prompt plus rubric items; each item is a criterion with signed points
(> 0 desirable, < 0 pitfall) and tags such as ``axis:accuracy`` or ``category:essential``.
Validation happens here, at the door, with errors that name the file, line and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgemed.errors import DataError

ROLES = ("system", "user", "assistant", "developer")


@dataclass(frozen=True)
class RubricItem:
    """One rubric criterion.

    >>> RubricItem("Advises calling emergency services", 5.0).is_pitfall
    False
    >>> RubricItem("Recommends aspirin to a patient on warfarin", -3).is_pitfall
    True
    """

    criterion: str
    points: float
    tags: tuple[str, ...] = ()
    title: str | None = None

    @property
    def is_pitfall(self) -> bool:
        return self.points < 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"criterion": self.criterion, "points": self.points, "tags": list(self.tags)}
        if self.title:
            d["title"] = self.title
        return d


@dataclass
class RubricRecord:
    """A prompt (chat messages) with its rubric, in edgemed's one schema.

    >>> r = RubricRecord.from_dict({"prompt_id": "p1",
    ...     "prompt": [{"role": "user", "content": "Is 150/95 high blood pressure?"}],
    ...     "rubrics": [{"criterion": "Says yes, stage 2 hypertension", "points": 5}]})
    >>> r.user_text, len(r.rubrics), r.rubrics[0].points
    ('Is 150/95 high blood pressure?', 1, 5.0)
    """

    prompt_id: str
    prompt: list[dict[str, str]]
    rubrics: list[RubricItem]
    example_tags: list[str] = field(default_factory=list)
    split: str | None = None
    source: str = "unknown"
    reference_answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def user_text(self) -> str:
        """All user turns joined: what the heart rule and the judges read."""
        return "\n".join(m["content"] for m in self.prompt if m["role"] == "user")

    @property
    def points(self) -> list[float]:
        return [it.points for it in self.rubrics]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "prompt_id": self.prompt_id,
            "prompt": self.prompt,
            "rubrics": [it.to_dict() for it in self.rubrics],
            "example_tags": self.example_tags,
            "source": self.source,
        }
        if self.split is not None:
            d["split"] = self.split
        if self.reference_answer is not None:
            d["reference_answer"] = self.reference_answer
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, obj: Any, path: str | None = None, line: int | None = None,
                  source: str | None = None) -> "RubricRecord":
        """Validate a dict in the schema (HealthBench's official format is a subset of it)."""

        def fail(msg: str, fld: str | None = None) -> DataError:
            return DataError(msg, path=path, line=line, field=fld)

        if not isinstance(obj, dict):
            raise fail(f"expected a JSON object, got {type(obj).__name__}")
        pid = obj.get("prompt_id")
        if not isinstance(pid, str) or not pid.strip():
            raise fail("missing or empty prompt_id", "prompt_id")
        prompt = parse_messages(obj.get("prompt"), fail)
        rubrics_raw = obj.get("rubrics")
        if not isinstance(rubrics_raw, list) or not rubrics_raw:
            raise fail("missing or empty rubric list", "rubrics")
        rubrics = [parse_item(it, f"rubrics[{i}]", fail) for i, it in enumerate(rubrics_raw)]
        tags = obj.get("example_tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise fail("must be a list of strings", "example_tags")
        return cls(
            prompt_id=pid, prompt=prompt, rubrics=rubrics, example_tags=list(tags),
            split=obj.get("split"), source=source or obj.get("source") or "unknown",
            reference_answer=obj.get("reference_answer"), meta=dict(obj.get("meta") or {}),
        )


def parse_messages(raw: Any, fail) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise fail("missing or empty prompt (a list of {role, content} messages)", "prompt")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise fail(f"role must be one of {ROLES}", f"prompt[{i}].role")
        content = m.get("content")
        if not isinstance(content, str):
            raise fail("content must be a string", f"prompt[{i}].content")
        out.append({"role": m["role"], "content": content})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        raise fail("prompt has no non-empty user message", "prompt")
    return out


def require_text(raw: dict, key: str, where: str, fail) -> str:
    """``raw[key]`` as a non-empty string, or a DataError naming ``where.key``."""
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"missing or empty {key}", f"{where}.{key}")
    return value


def require_points(raw: dict, key: str, where: str, fail) -> float:
    """``raw[key]`` as a finite, non-zero number (> 0 desirable, < 0 pitfall)."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(f"{key} must be a finite number, got {value!r}", f"{where}.{key}")
    if value == 0:
        raise fail(f"{key} must be non-zero (> 0 desirable, < 0 pitfall)", f"{where}.{key}")
    return float(value)


def parse_item(raw: Any, where: str, fail) -> RubricItem:
    if not isinstance(raw, dict):
        raise fail("rubric item must be an object", where)
    crit = require_text(raw, "criterion", where, fail)
    pts = require_points(raw, "points", where, fail)
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("tags must be a list of strings", f"{where}.tags")
    return RubricItem(crit.strip(), pts, tuple(tags), raw.get("title"))


def conversation_text(messages: list[dict[str, str]]) -> str:
    """Render a conversation as HealthBench's grader does: ``role: content`` blocks, blank-line joined.

    >>> conversation_text([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    'user: hi\\n\\nassistant: hello'
    """
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
