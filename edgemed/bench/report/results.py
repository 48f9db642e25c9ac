"""The typed reader of bench.json: ``parse_bench`` (pure; a wrong shape is a ``TypeError``), ``read_bench``.
``report.assemble`` stamps ``SCHEMA_VERSION``; it and unstamped older files read; any other version is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edgemed.errors import DataError

SCHEMA_VERSION = 1
READABLE_VERSIONS = (None, SCHEMA_VERSION)  # None: written before the stamp, or by hand


def _obj(x: Any, what: str, kind: type = dict) -> Any:
    """``x`` when it is a JSON object (``kind=list``: a list), an empty one for null; else the wrong shape."""
    if x is None:
        return kind()
    if not isinstance(x, kind):
        raise TypeError(f"{what}: expected {'an object' if kind is dict else 'a list'}, got {type(x).__name__}")
    return x


def _pick(cls, d: dict[str, Any], **parsed):
    """``cls`` from the keys of ``d`` it has fields for (absent: the field's default), plus ``parsed``."""
    names = {f.name for f in fields(cls)} - set(parsed)
    return cls(**{k: v for k, v in d.items() if k in names}, **parsed)


@dataclass(frozen=True)
class Paired:
    """One paired B − A difference (a comparison's ``metrics`` entry, its length-controlled or independent row)."""

    n: int | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    sign_p: float | None = None
    measure: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Base vs trained for one build: the clipped-mean bootstrap, McNemar, and the paired ``metrics``."""

    a: str = ""
    b: str = ""
    n: int | None = None
    score_a: float | None = None
    score_b: float | None = None
    diff: float | None = None
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    bootstrap_p: float | None = None
    a_only_pass: int | None = None
    b_only_pass: int | None = None
    mcnemar_p: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def paired(self, name: str) -> Paired | None:
        """The paired difference on one metric (``unclipped_score``, ``pitfall_rate``, ...), if stored.

        >>> c = parse_bench({"comparisons": [{"a": "x", "b": "y", "metrics": {"hit_rate": {"n": 3, "diff": 0.1}}}]})
        >>> c.comparisons[0].paired("hit_rate").diff, c.comparisons[0].paired("pitfall_rate")
        (0.1, None)
        """
        m = self.metrics.get(name)
        return _pick(Paired, _obj(m, f"metrics.{name}")) if m else None

    @property
    def independent(self) -> list[Paired]:  # the differences on measures that use neither judge
        return [_pick(Paired, _obj(x, "metrics.independent_all"))
                for x in _obj(self.metrics.get("independent_all"), "metrics.independent_all", list)]


@dataclass(frozen=True)
class Judge:
    """Who graded: the name reports show, its fingerprint, backend, held-out accuracy, call stats."""

    name: str | None = None
    fingerprint: str | None = None
    backend: str | None = None
    heldout_accuracy: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    same_as_eval: bool = False
    train_judge: Judge | None = None

    @classmethod
    def parse(cls, d: Any, what: str = "judge") -> Judge | None:
        d = _obj(d, what)
        if not d:
            return None
        backend = _obj(d.get("config"), f"{what}.config").get("backend") or d.get("backend")
        return _pick(cls, d, backend=backend, stats=_obj(d.get("stats"), f"{what}.stats"),
                     same_as_eval=bool(d.get("same_as_eval")),
                     train_judge=cls.parse(d.get("train_judge"), f"{what}.train_judge"))

    @property
    def is_proxy(self) -> bool:
        """Whether this is the offline proxy judge (by its backend; by its name in files without one)."""
        return self.backend == "proxy" or (self.backend is None and str(self.name or "").startswith("proxy"))


@dataclass(frozen=True)
class Metrics:
    """A build's metrics that move at every scale (absent in old files: every field None)."""

    n: int | None = None
    unclipped: float | None = None
    unclipped_ci_low: float | None = None
    unclipped_ci_high: float | None = None
    hit_rate: float | None = None
    pitfall_rate: float | None = None
    mean_tokens: float | None = None
    truncation_rate: float | None = None
    clipped: float | None = None
    n_scored: int | None = None
    distinct_2: float | None = None
    repeated_sentences: float | None = None


@dataclass(frozen=True)
class Quality:
    """A build's scores: HealthBench (clipped), the metrics, the paper's accuracy, judge failures."""

    score: float | None = None
    std: float | None = None
    n: int | None = None
    metrics: Metrics = field(default_factory=Metrics)
    paper_accuracy: float | None = None
    keyword_accuracy: float | None = None
    judge_failures: int = 0
    n_criteria: int | None = None
    train_judge: dict[str, Any] = field(default_factory=dict)  # the reward's judge, same answers

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Quality:
        hb = _obj(d.get("healthbench"), "quality.healthbench")
        return cls(score=hb.get("score"), std=hb.get("std"), n=hb.get("n"),
                   metrics=_pick(Metrics, _obj(d.get("metrics"), "quality.metrics")),
                   paper_accuracy=_obj(d.get("paper"), "quality.paper").get("accuracy"),
                   keyword_accuracy=_obj(d.get("paper_keyword"), "quality.paper_keyword").get("accuracy"),
                   judge_failures=d.get("judge_failures") or 0, n_criteria=d.get("n_criteria"),
                   train_judge=_obj(d.get("train_judge"), "quality.train_judge"))


@dataclass(frozen=True)
class Rate:
    """One latency test of a build (prefill ``pp`` or decode ``tg``), tokens per second."""

    test: str | None = None
    avg_ts: float | None = None
    stddev_ts: float | None = None
    ttft_ms: float | None = None
    roofline_tok_s: float | None = None
    roofline_fraction: float | None = None


@dataclass(frozen=True)
class Latency:
    """A build's timings: prefill and decode, peak RSS, and llama-bench's figures beside them."""

    pp: Rate | None = None
    tg: Rate | None = None
    peak_rss_bytes: int = 0
    llama_bench: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Latency:
        rate = lambda k: _pick(Rate, _obj(d.get(k), f"latency.{k}")) if d.get(k) else None  # noqa: E731
        return cls(pp=rate("pp"), tg=rate("tg"), peak_rss_bytes=d.get("peak_rss_bytes") or 0,
                   llama_bench=_obj(d.get("llama_bench"), "latency.llama_bench"))


@dataclass(frozen=True)
class TargetResult:
    """One benched build (bench.json ``targets``): what it is, its quality and latency (None: not measured)."""

    label: str | None = None
    group: str | None = None
    name: str | None = None
    format: str | None = None
    backend: str | None = None
    bytes: int = 0
    status: str | None = None
    parity: dict[str, Any] | None = None
    quality: Quality | None = None
    latency: Latency | None = None
    speed_ratios: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, d: Any) -> TargetResult:
        d = _obj(d, "targets[]")
        q, lat = _obj(d.get("quality"), "quality"), _obj(d.get("latency"), "latency")
        return _pick(cls, d, bytes=d.get("bytes") or 0, quality=Quality.parse(q) if q else None,
                     latency=Latency.parse(lat) if lat else None,
                     speed_ratios=_obj(d.get("speed_ratios"), "speed_ratios"))


@dataclass(frozen=True)
class HeartSubset:
    """Which prompts were scored: the heart rule and split, and how many of how many."""
    rule: str | None = None
    split: str | None = None
    n_used: int | None = None
    n_subset: int | None = None
    n_records: int | None = None
    n_healthbench: int | None = None
    packaged: dict[str, Any] | None = None


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
    subset = _obj(data.get("heart_subset"), "heart_subset")
    return BenchResults(
        schema_version=version, created=data.get("created"), suite=data.get("suite"),
        threads=data.get("threads"), machine=_obj(data.get("machine"), "machine"),
        devices=_obj(data.get("devices"), "devices"), judge=Judge.parse(data.get("judge")),
        heart_subset=_pick(HeartSubset, subset) if subset else None,
        targets=[TargetResult.parse(t) for t in _obj(data.get("targets"), "targets", list)],
        comparisons=[_pick(Comparison, c, metrics=_obj(c.get("metrics"), "comparisons[].metrics"))
                     for c in (_obj(x, "comparisons[]") for x in _obj(data.get("comparisons"), "comparisons", list))],
        plots=[str(p) for p in _obj(data.get("plots"), "plots", list)])


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(e.strerror or str(e), path=str(path)) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text: {e.reason} at byte {e.start}", path=str(path)) from None
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e}", path=str(path)) from None
    try:
        return parse_bench(data, where=str(path))
    except (TypeError, ValueError, AttributeError) as e:
        raise DataError(f"unexpected content: {type(e).__name__}: {e}", path=str(path)) from None
