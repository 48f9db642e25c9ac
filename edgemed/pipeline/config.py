"""PipelineConfig: one YAML that names each stage's own config plus the overrides a run needs.

The pipeline owns no stage logic: each section is handed to that stage's own loader, so a key
that a stage does not know fails there with that stage's message, before any model loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed.config_reader import find_config, from_mapping, read_mapping
from edgemed.errors import ConfigError
from edgemed.io import absolute

STAGES = ("train", "merge", "export", "bench")


@dataclass
class PipelineConfig:
    """The whole run.

    >>> cfg = load_pipeline_config("pipeline_default")
    >>> cfg.name, cfg.stages
    ('default', ['train', 'merge', 'export', 'bench'])
    """

    name: str = field(default="default", metadata={
        "help": "Run name: everything lands in <runs_dir>/<name>/, so two configs never collide."})
    runs_dir: str = field(default="runs", metadata={
        "help": "Root folder for runs (relative to the working directory)."})
    model: str = field(default="default", metadata={
        "help": "Base model spec for training and the 'base' rows of the report."})
    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={
        "help": "Stages to run, in pipeline order; drop 'train' and 'merge' to export/bench the base only."})
    train_config: str = field(default="smollm2_heart_grpo_cpu", metadata={
        "help": "Packaged training config name or YAML path (see edgemed/configs/)."})
    train: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Dotted-key overrides of the training config (e.g. grpo.max_steps: 8)."})
    merge_dtype: str = field(default="float32", metadata={
        "help": "dtype of the merged model that export converts; float32 keeps parity references exact."})
    export: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "edgemed.export.config.ExportConfig fields (profile, formats, allow_degraded, ...)."})
    export_base: bool = field(default=True, metadata={
        "help": "Also export the untrained base with the same builds, so the report compares like with like."})
    bench: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "edgemed.bench BenchConfig fields (suite, quality/latency sizes, judge)."})
    source: str = field(default="", metadata={
        "config": False, "help": "The YAML this config was read from, so an error in any section names it."})

    @property
    def root(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_file(name_or_path: str) -> Path:
    """A pipeline YAML from a packaged name or a path.

    >>> config_file("pipeline_default").name
    'pipeline_default.yaml'
    """
    return find_config(name_or_path, "pipeline config")


def load_pipeline_config(name_or_path: str = "pipeline_default", **overrides: Any) -> PipelineConfig:
    """Read a pipeline YAML; unknown keys, wrong types and unknown stage names are errors naming the file.

    Each stage's section is checked by that stage's own reader when the run is planned
    (``edgemed.pipeline.runner.plan``), with this file and the section named in the message.
    """
    path = config_file(name_or_path)
    raw = read_mapping(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    cfg = from_mapping(PipelineConfig, raw, str(path))
    cfg.source = str(path)
    cfg.runs_dir = absolute(cfg.runs_dir)  # stages and their subprocesses may run in other folders
    bad = [s for s in cfg.stages if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage '{bad[0]}' (known: {', '.join(STAGES)})", str(path), "stages")
    cfg.stages = [s for s in STAGES if s in cfg.stages]
    if "merge" in cfg.stages and "train" not in cfg.stages:
        raise ConfigError("'merge' needs 'train'", str(path), "stages")
    return cfg
