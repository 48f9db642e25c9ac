"""The typed reader of bench.json: ``parse_bench`` and ``read_bench``; the typed parts are in ``result_parts``.

``report.assemble`` writes bench.json stamped ``SCHEMA_VERSION``; this version reads, and so do older files
without a stamp (what they lack reads as None or empty); an unknown or newer version is refused in one
line naming the file. ``parse_bench`` is pure (a wrong shape: ``TypeError``); ``read_bench`` adds the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemed.bench.report.result_parts import (Cell, Comparison, HeartSubset, Judge, JudgeFigures,  # noqa: F401
                                                Latency, Metrics, Paired, PaperScore, Quality, Rate,
                                                TargetResult, as_object, pick)
from edgemed.errors import DataError
from edgemed.io import read_json

SCHEMA_VERSION = 1
READABLE_VERSIONS = (None, SCHEMA_VERSION)  # None: written before the stamp, or by hand


@dataclass(frozen=True)
class BenchResults:
    """bench.json, typed: one run's (or a graded folder's) builds, comparisons, judge and machine(s)."""

    schema_version: int | None = None
    created: str | None = None
    suite: str | None = None
    threads: int | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    judge: Judge | None = None
    heart_subset: HeartSubset | None = None
    targets: list[TargetResult] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


def check_version(data: dict[str, Any], where: str) -> int | None:
    """The file's ``schema_version`` when this edgemed reads it; an unknown one is a one-line ``DataError``.

    >>> check_version({"schema_version": 1}, "b.json"), check_version({}, "b.json")
    (1, None)
    >>> check_version({"schema_version": 2}, "runs/x/bench/bench.json")
    Traceback (most recent call last):
    edgemed.errors.DataError: runs/x/bench/bench.json: schema_version 2 is not one this edgemed reads (1, or none): written by a newer edgemed? upgrade edgemed or re-run the bench
    """
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise DataError(f"schema_version {version!r} is not one this edgemed reads ({SCHEMA_VERSION}, or none): "
                        "written by a newer edgemed? upgrade edgemed or re-run the bench", path=where)
    return version


def parse_bench(data: Any, where: str = "bench.json") -> BenchResults:
    """bench.json's content (the parsed JSON, or what ``report.assemble.build_report`` returns), typed.

    >>> r = parse_bench({"schema_version": 1, "judge": {"name": "proxy judge", "config": {"backend": "proxy"}},
    ...                  "targets": [{"label": "base/gguf-q8_0", "quality": {"healthbench": {"score": 0.2}},
    ...                               "latency": {"tg": {"avg_ts": 41.5}}}]})
    >>> t = r.targets[0]
    >>> t.label, t.quality.score, t.quality.metrics.unclipped, t.latency.tg.avg_ts, t.latency.pp, r.judge.is_proxy
    ('base/gguf-q8_0', 0.2, None, 41.5, None, True)
    >>> parse_bench({"targets": 5})
    Traceback (most recent call last):
    TypeError: targets: expected a list, got int
    """
    if not isinstance(data, dict):
        raise TypeError(f"a JSON {type(data).__name__}, not an object")
    version = check_version(data, where)  # first: a newer layout is refused, never misread
    subset = as_object(data.get("heart_subset"), "heart_subset")
    return BenchResults(
        schema_version=version, created=data.get("created"), suite=data.get("suite"),
        threads=data.get("threads"), machine=as_object(data.get("machine"), "machine"),
        devices=as_object(data.get("devices"), "devices"), judge=Judge.parse(data.get("judge")),
        heart_subset=pick(HeartSubset, subset) if subset else None,
        targets=[TargetResult.parse(t) for t in as_object(data.get("targets"), "targets", list)],
        comparisons=[pick(Comparison, c, metrics=as_object(c.get("metrics"), "comparisons[].metrics"))
                     for c in (as_object(x, "comparisons[]") for x in as_object(data.get("comparisons"), "comparisons", list))],
        plots=[str(p) for p in as_object(data.get("plots"), "plots", list)])


def read_bench(path: str | Path) -> BenchResults:
    """Read and type a bench.json; a missing, unreadable, malformed or too new file is a one-line ``DataError``.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "bench.json"
    >>> _ = p.write_text('{"schema_version": 1, "suite": "smoke", "targets": []}')
    >>> read_bench(p).suite
    'smoke'
    >>> _ = p.write_text('{"targets": [], "comparisons": {}}')
    >>> read_bench(p)
    Traceback (most recent call last):
    edgemed.errors.DataError: .../bench.json: unexpected content: TypeError: comparisons: expected a list, got dict
    """
    path = Path(path)
    data = read_json(path)
    try:
        return parse_bench(data, where=str(path))
    except (TypeError, ValueError, AttributeError) as e:
        raise DataError(f"unexpected content: {type(e).__name__}: {e}", path=str(path)) from None
