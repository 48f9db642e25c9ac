"""Run the stages in order: load every config first → for each stage, skip or run → report.

Every stage config is built and checked before the first model loads, so a typo in any section
fails in a second. Each stage writes into ``runs/<name>/<stage>/`` through its own public entry
point; this module only decides what is up to date and wires outputs to inputs.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgemed import console
from edgemed.errors import ConfigError, EdgemedError, EnvironmentFailure
from edgemed.locks import folder_lock
from edgemed.pipeline.config import PipelineConfig
from edgemed.pipeline.state import PipelineState, inputs_key

log = logging.getLogger(__name__)


@dataclass
class StagePlan:
    """One stage, ready to run: its inputs key (without upstream), its runner, its output check."""

    name: str
    settings: dict[str, Any]
    execute: Callable[[bool], str]      # force → summary path
    output: Callable[[], str | None]    # fingerprint of what is on disk now, None if absent


@dataclass
class PipelineResult:
    root: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    report: Path | None = None


# Below this much free space a run cannot finish (a merged fp32 default model alone is ~540 MB).
MIN_FREE_BYTES = 1 << 30


def check_writable(root: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Fail early, in one line, when the run folder cannot be written (read-only, full disk)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"x" * (1 << 16))
        probe.unlink()
    except OSError as e:
        why = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
               errno.ENOSPC: "no space left on device"}.get(e.errno, e.strerror or str(e))
        raise EnvironmentFailure(f"{root}: cannot write the run folder ({why})") from None
    free = shutil.disk_usage(root).free
    if free < min_free:
        raise EnvironmentFailure(f"{root}: no space left on device for a run ({free / 2**20:.0f} MiB free, "
                           f"need at least {min_free / 2**20:.0f} MiB)")


def fingerprint_tree(path: Path) -> str | None:
    from edgemed.export.manifest import artifact_digest

    return artifact_digest(path) if path.exists() else None


def plan(cfg: PipelineConfig) -> list[StagePlan]:
    """Build and check every stage's config (no model is loaded here)."""
    from edgemed.bench.config import load_config as load_bench_config
    from edgemed.config_reader import located
    from edgemed.train.config import load_train_config

    root = cfg.root
    plans: list[StagePlan] = []
    if "train" in cfg.stages:
        overrides = {"model.spec": cfg.model, **cfg.train, "output_dir": str(root / "train")}
        train_cfg = load_train_config(cfg.train_config, overrides, cfg.source, "train")

        def run_train(force: bool) -> str:
            from edgemed.train.recipe import train

            train_cfg.resume = not force
            train(train_cfg)
            return str(root / "train" / "manifest.json")

        plans.append(StagePlan("train", train_cfg.to_dict(), run_train,
                               lambda: fingerprint_tree(root / "train" / "adapter")))
    if "merge" in cfg.stages:
        def run_merge(force: bool) -> str:
            from edgemed.train.merge import merge_adapter

            merge_adapter(root / "train" / "adapter", root / "merge", dtype=cfg.merge_dtype)
            return str(root / "merge")

        plans.append(StagePlan("merge", {"dtype": cfg.merge_dtype}, run_merge,
                               lambda: fingerprint_tree(root / "merge")))
    exports = export_configs(cfg)
    manifests = []
    if "export" in cfg.stages:
        def run_export(force: bool) -> str:
            from edgemed.export.stage import run as export_run

            for label, ecfg in exports.items():
                ecfg.force = force
                log.info("export (%s): %s → %s", label, ecfg.model, ecfg.out)
                export_run(ecfg)
            return str(root / "export")

        for label, ecfg in exports.items():
            try:  # an unknown quant or device profile fails here, before any model loads
                ecfg.build_list()
            except ConfigError as e:
                raise located(e, cfg.source, "export.formats" if ecfg.formats else "export.profile") from None
            manifests.append({"path": str(Path(ecfg.out) / "manifest.json"), "label": label})
        plans.append(StagePlan("export", {k: dict(vars(e)) for k, e in exports.items()}, run_export,
                               lambda: fingerprint_manifests(exports)))
    if "bench" in cfg.stages:
        bench_raw = {**cfg.bench, "out": str(root / "bench")}
        bench_raw.setdefault("manifests", manifests)
        if "train" in cfg.stages:  # grade with the trainer's judge too: a reward-hacking check in the report
            bench_raw.setdefault("train_judge", training_judge(train_cfg))
        bench_cfg = load_bench_config(bench_raw, where=cfg.source, key="bench")

        def run_bench(force: bool) -> str:
            from edgemed.bench.stage import run as bench_run

            bench_run(bench_cfg)
            return str(root / "bench" / "bench.json")

        plans.append(StagePlan("bench", bench_raw, run_bench,
                               lambda: fingerprint_tree(root / "bench" / "bench.json")))
    return plans


def training_judge(train_cfg) -> dict[str, Any]:
    """The judge behind the (first) training reward, as a JudgeConfig mapping for the bench."""
    from edgemed.train.config import build_reward_configs

    judge = build_reward_configs(train_cfg)[0].judge
    return judge.to_dict() if hasattr(judge, "to_dict") else dict(judge)


def export_configs(cfg: PipelineConfig) -> dict[str, Any]:
    """The trained model's export (after merge) and, optionally, the base model's, same builds."""
    from edgemed.config_reader import from_mapping
    from edgemed.export.config import ExportConfig

    root = cfg.root
    out: dict[str, Any] = {}
    if cfg.export_base or "merge" not in cfg.stages:
        out["base"] = from_mapping(ExportConfig, {**cfg.export, "model": cfg.model,
                                                  "out": str(root / "export" / "base")}, cfg.source, "export")
    if "merge" in cfg.stages:
        out["trained"] = from_mapping(ExportConfig, {**cfg.export, "model": str(root / "merge"),
                                                     "out": str(root / "export" / "trained")}, cfg.source, "export")
    return out


def fingerprint_manifests(exports: dict[str, Any]) -> str | None:
    digests = [fingerprint_tree(Path(e.out) / "manifest.json") for e in exports.values()]
    return None if None in digests else inputs_key(digests)


def run_pipeline(cfg: PipelineConfig, from_stage: str | None = None) -> PipelineResult:
    """Run ``cfg``'s stages in order; ``from_stage`` forces that stage and every later one to re-run."""
    if from_stage is not None and from_stage not in cfg.stages:
        raise ConfigError(f"--from {from_stage}: not one of this run's stages ({', '.join(cfg.stages)})")
    started = time.perf_counter()
    root = cfg.root
    check_writable(root)
    with folder_lock(root, hint="pick another --name"):  # its stages lock their own sub-folders
        plans = plan(cfg)  # every section read by its stage's reader: errors name the file and the key
        state = PipelineState.load(root)
        result = PipelineResult(root)
        upstream = ""
        forcing = False
        console.line(f"edgemed run {cfg.name}: {' → '.join(p.name for p in plans)} in {root} "
                     f"(stage logs: {root / console.LOGS_DIR})")
        for p in plans:
            forcing = forcing or p.name == from_stage
            key = inputs_key(p.name, p.settings, upstream)
            if not forcing and state.up_to_date(p.name, key, p.output()):
                console.line(f"{p.name}: up to date, skipped")
                result.skipped.append(p.name)
            else:
                state.forget(p.name)  # a kill from here on leaves no stale "done" record
                t0 = time.perf_counter()
                with console.stage_log(root / console.LOGS_DIR / f"{p.name}.log"):  # the stage prints its own lines
                    summary = p.execute(forcing)
                output = p.output()
                if output is None:
                    raise EdgemedError(f"{p.name}: finished but wrote no output under {root}")
                state.record(p.name, key, output, time.perf_counter() - t0, summary)
                result.ran.append(p.name)
            upstream = state.stages[p.name]["output"]
        from edgemed.pipeline.report import write_report

        result.wall_s = time.perf_counter() - started
        result.report = write_report(cfg, state)
        return result
