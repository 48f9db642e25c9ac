"""The parts of bench.json, typed: a build (``TargetResult``) with its quality and latency, a base-vs-trained
``Comparison``, the ``Judge``, the prompt subset. ``report.results`` puts them together and reads the file;
every parser here is pure and raises ``TypeError`` naming the field on a wrong shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def as_object(x: Any, what: str, kind: type = dict) -> Any:
    """``x`` when it is a JSON object (``kind=list``: a list), an empty one for null; else the wrong shape."""
    if x is None:
        return kind()
    if not isinstance(x, kind):
        raise TypeError(f"{what}: expected {'an object' if kind is dict else 'a list'}, got {type(x).__name__}")
    return x


def pick(cls, d: dict[str, Any], **parsed):
    """``cls`` from the keys of ``d`` it has fields for (absent: the field's default), plus ``parsed``."""
    names = {f.name for f in fields(cls)} - set(parsed)
    return cls(**{k: v for k, v in d.items() if k in names}, **parsed)


@dataclass(frozen=True)
class Paired:
    """One paired B − A difference (a comparison's ``metrics`` entry, its length-controlled or independent row)."""

    n: int | None = None
    mean_a: float | None = None
    mean_b: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_up: int | None = None
    n_down: int | None = None
    n_tie: int | None = None
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

        >>> from edgemed.bench.report.results import parse_bench
        >>> c = parse_bench({"comparisons": [{"a": "x", "b": "y", "metrics": {"hit_rate": {"n": 3, "diff": 0.1}}}]})
        >>> c.comparisons[0].paired("hit_rate").diff, c.comparisons[0].paired("pitfall_rate")
        (0.1, None)
        """
        m = self.metrics.get(name)
        return pick(Paired, as_object(m, f"metrics.{name}")) if m else None

    @property
    def independent(self) -> list[Paired]:
        """The differences on measures that use neither judge (every one stored)."""
        return [pick(Paired, as_object(x, "metrics.independent_all"))
                for x in as_object(self.metrics.get("independent_all"), "metrics.independent_all", list)]


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
        d = as_object(d, what)
        if not d:
            return None
        backend = as_object(d.get("config"), f"{what}.config").get("backend") or d.get("backend")
        return pick(cls, d, backend=backend, stats=as_object(d.get("stats"), f"{what}.stats"),
                     same_as_eval=bool(d.get("same_as_eval")),
                     train_judge=cls.parse(d.get("train_judge"), f"{what}.train_judge"))

    @property
    def is_proxy(self) -> bool:
        """Whether this is the offline proxy judge (by its backend; by its name in files without one)."""
        return self.backend == "proxy" or (self.backend is None and str(self.name or "").startswith("proxy"))


@dataclass(frozen=True)
class Metrics:
    """A build's metrics that move at every scale, with their counts (absent in old files: None)."""

    n: int | None = None
    unclipped: float | None = None
    unclipped_ci_low: float | None = None
    unclipped_ci_high: float | None = None
    clipped: float | None = None
    clipped_std: float | None = None
    hit_rate: float | None = None
    pos_met: float | None = None
    pos_judged: int | None = None
    pitfall_rate: float | None = None
    neg_met: float | None = None
    neg_judged: int | None = None
    mean_tokens: float | None = None
    mean_words: float | None = None
    truncation_rate: float | None = None
    n_truncated: int | None = None
    n_scored: int | None = None
    judge_failures: int | None = None
    distinct_2: float | None = None
    repeated_sentences: float | None = None


@dataclass(frozen=True)
class PaperScore:
    """The paper's pass-rate figures (judge-based, or by its keyword heuristic): accuracy, F1, CI, n."""

    accuracy: float | None = None
    f1: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class Cell:
    """One axis or theme of a build: the HealthBench score (per axis/theme) or the metrics (per theme)."""

    n: int | None = None
    score: float | None = None
    unclipped: float | None = None
    hit_rate: float | None = None
    pitfall_rate: float | None = None


@dataclass(frozen=True)
class JudgeFigures:
    """The training reward's judge on a build's answers (beside the evaluation judge's figures)."""

    name: str | None = None
    hit_rate: float | None = None
    pitfall_rate: float | None = None


def _cells(d: Any, what: str) -> dict[str, Cell]:
    return {k: pick(Cell, as_object(v, f"{what}.{k}")) for k, v in as_object(d, what).items() if v}


@dataclass(frozen=True)
class Quality:
    """A build's scores: HealthBench (clipped) overall, per axis and per theme, the metrics, the paper's
    figures, judge failures, and the training reward's judge on the same answers."""

    score: float | None = None
    std: float | None = None
    n: int | None = None
    metrics: Metrics = field(default_factory=Metrics)
    paper: PaperScore | None = None
    keyword: PaperScore | None = None  # bench.json "paper_keyword"
    per_axis: dict[str, Cell] = field(default_factory=dict)
    per_theme: dict[str, Cell] = field(default_factory=dict)
    per_theme_metrics: dict[str, Cell] = field(default_factory=dict)
    max_new_tokens: int | None = None
    judge_failures: int = 0
    n_criteria: int | None = None
    train_judge: JudgeFigures | None = None

    @property
    def paper_accuracy(self) -> float | None:
        return self.paper and self.paper.accuracy

    @property
    def keyword_accuracy(self) -> float | None:
        return self.keyword and self.keyword.accuracy

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Quality:
        hb = as_object(d.get("healthbench"), "quality.healthbench")
        paper = lambda k: pick(PaperScore, as_object(d[k], f"quality.{k}")) if d.get(k) else None  # noqa: E731
        return cls(score=hb.get("score"), std=hb.get("std"), n=hb.get("n"),
                   metrics=pick(Metrics, as_object(d.get("metrics"), "quality.metrics")),
                   paper=paper("paper"), keyword=paper("paper_keyword"),
                   per_axis=_cells(d.get("per_axis"), "quality.per_axis"),
                   per_theme=_cells(d.get("per_theme"), "quality.per_theme"),
                   per_theme_metrics=_cells(d.get("per_theme_metrics"), "quality.per_theme_metrics"),
                   max_new_tokens=d.get("max_new_tokens"), judge_failures=d.get("judge_failures") or 0,
                   n_criteria=d.get("n_criteria"), train_judge=pick(JudgeFigures, as_object(
                       d["train_judge"], "quality.train_judge")) if d.get("train_judge") else None)


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
        rate = lambda k: pick(Rate, as_object(d.get(k), f"latency.{k}")) if d.get(k) else None  # noqa: E731
        return cls(pp=rate("pp"), tg=rate("tg"), peak_rss_bytes=d.get("peak_rss_bytes") or 0,
                   llama_bench=as_object(d.get("llama_bench"), "latency.llama_bench"))


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
        d = as_object(d, "targets[]")
        q, lat = as_object(d.get("quality"), "quality"), as_object(d.get("latency"), "latency")
        return pick(cls, d, bytes=d.get("bytes") or 0, quality=Quality.parse(q) if q else None,
                     latency=Latency.parse(lat) if lat else None,
                     speed_ratios=as_object(d.get("speed_ratios"), "speed_ratios"))


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
