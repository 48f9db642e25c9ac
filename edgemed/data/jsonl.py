"""Line-numbered JSONL reading that collects every error instead of stopping at the first.

A loader never silently drops a record: each bad line becomes a ``DataError`` in the summary,
and ``strict=True`` (the default for training data) raises on the first one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from edgemed.errors import DataError


@dataclass
class LoadSummary:
    """What a loader read: kept records, errors by line, duplicates skipped.

    >>> s = LoadSummary(path="x.jsonl", n_lines=3, n_kept=2)
    >>> s.errors.append(DataError("bad", path="x.jsonl", line=2)); s.ok
    False
    """

    path: str
    n_lines: int = 0
    n_kept: int = 0
    errors: list[DataError] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.duplicates

    def describe(self) -> str:
        parts = [f"{self.path}: {self.n_kept} records from {self.n_lines} lines"]
        if self.errors:
            parts.append(f"{len(self.errors)} invalid")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate prompt_id(s)")
        return ", ".join(parts)


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any | DataError]]:
    """Yield ``(line_no, object)`` per non-blank line; a parse failure yields a DataError instead."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a JSONL file", path=str(path)) from None
    with f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as e:
                yield i, DataError(f"malformed JSON ({e.msg} at column {e.colno})", path=str(path), line=i)
            except UnicodeDecodeError:
                yield i, DataError("not UTF-8 text", path=str(path), line=i)


def load_jsonl_records(path: str | Path, parse: Callable[[Any, str, int], Any], strict: bool = True,
                       key: Callable[[Any], str] = lambda r: r.prompt_id):
    """Parse every line with ``parse(obj, path, line)``; return ``(records, LoadSummary)``.

    Duplicate keys keep the first record and are reported. An empty file is an error.
    """
    path = Path(path)
    summary = LoadSummary(path=str(path))
    records, seen = [], set()
    for line_no, obj in iter_json_lines(path):
        summary.n_lines += 1
        try:
            if isinstance(obj, DataError):
                raise obj
            rec = parse(obj, str(path), line_no)
        except DataError as e:
            if strict:
                raise
            summary.errors.append(e)
            continue
        k = key(rec)
        if k in seen:
            if strict:
                raise DataError(f"duplicate prompt_id {k!r}", path=str(path), line=line_no, field="prompt_id")
            summary.duplicates.append(k)
            continue
        seen.add(k)
        records.append(rec)
    if summary.n_lines == 0:
        raise DataError("file is empty (no JSON lines)", path=str(path))
    summary.n_kept = len(records)
    return records, summary
