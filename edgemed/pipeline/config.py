"""PipelineConfig: one YAML that names each stage's own config plus the overrides a run needs.

The pipeline owns no stage logic: each section is handed to that stage's own loader, so a key
that a stage does not know fails there with that stage's message, before any model loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from edgemed.errors import ConfigError
from edgemed.io import absolute
from edgemed.yamlconf import read_yaml_mapping

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
        "help": "edgemed.export.config.ExportConfig fields (target, formats, allow_degraded, ...)."})
    export_base: bool = field(default=True, metadata={
        "help": "Also export the untrained base with the same builds, so the report compares like with like."})
    bench: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "edgemed.bench BenchConfig fields (suite, quality/latency sizes, judge)."})

    @property
    def root(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_file(name_or_path: str) -> Path:
    """A pipeline YAML from a packaged name or a path."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = name_or_path.removesuffix(".yaml")
    packaged = Path(str(resources.files("edgemed") / "configs" / f"{name}.yaml"))
    if "/" not in name and packaged.is_file():
        return packaged
    raise ConfigError(f"pipeline config '{name_or_path}': no such file or packaged config")


def load_pipeline_config(name_or_path: str = "pipeline_default", **overrides: Any) -> PipelineConfig:
    """Read a pipeline YAML; unknown keys and unknown stage names are errors naming the file."""
    path = config_file(name_or_path)
    raw = read_yaml_mapping(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(PipelineConfig)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{key}' (known: {', '.join(sorted(known))})")
    cfg = PipelineConfig(**raw)
    cfg.runs_dir = absolute(cfg.runs_dir)  # stages and their subprocesses may run in other folders
    bad = [s for s in cfg.stages if s not in STAGES]
    if bad:
        raise ConfigError(f"{path}: stages: unknown stage '{bad[0]}' (known: {', '.join(STAGES)})")
    cfg.stages = [s for s in STAGES if s in cfg.stages]
    if "merge" in cfg.stages and "train" not in cfg.stages:
        raise ConfigError(f"{path}: stages: 'merge' needs 'train'")
    for key in ("train", "export", "bench"):
        if not isinstance(getattr(cfg, key), dict):
            raise ConfigError(f"{path}: {key}: must be a mapping")
    return cfg
