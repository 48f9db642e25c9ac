"""Latency the way llama-bench measures it: pp<n> (prefill) and tg<n> (decode), warm-up + repetitions.

Each finished test appends one llama-bench-compatible row (``avg_ns``, ``stddev_ns``, ``avg_ts``,
``samples_ns`` …) to ``latency.jsonl``; a resumed run skips tests already logged for the same
build and settings. Peak RSS is the process's high-water mark when the test ends: with one
subprocess per build (``isolate``) that is the build's own footprint, loading included.
"""

from __future__ import annotations

import datetime as _dt
import os
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

from edgemed.bench.config import LatencyConfig
from edgemed.bench.layout import LATENCY, LLAMA_BENCH
from edgemed.bench.targets import Target
from edgemed.io import append_jsonl, read_jsonl_tolerant


def tests_for(cfg: LatencyConfig) -> list[tuple[str, int, int]]:
    """(name, n_prompt, n_gen) of each test, llama-bench style.

    >>> tests_for(LatencyConfig())
    [('pp512', 512, 0), ('tg128', 0, 128)]
    """
    return [(f"pp{cfg.n_prompt}", cfg.n_prompt, 0), (f"tg{cfg.n_gen}", 0, cfg.n_gen)]


# How the runners time, as part of every resume key: bumped when a runner changes what it times, so
# rows timed the old way are timed again instead of resumed (2: llama.cpp with flash attention on).
TIMER_VERSION = 2


def latency_key(target: Target, cfg: LatencyConfig, threads: int, device: str) -> str:
    """Resume key: the build's bytes and every setting that changes the timing (``device`` is the
    requested one, auto or cpu, so the stage can decide without loading the runtime)."""
    return target.key(repetitions=cfg.repetitions, warmup=cfg.warmup, threads=threads, device=device,
                      n_gpu_layers=cfg.n_gpu_layers, timer=TIMER_VERSION)


def pending_tests(target: Target, cfg: LatencyConfig, threads: int, device: str, out: Path) -> list[str]:
    """Names of the tests this build still has to run.

    >>> import tempfile
    >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x.gguf", 1, 1, "ab", 1)
    >>> pending_tests(t, LatencyConfig(n_prompt=64, n_gen=16), 2, "auto", Path(tempfile.mkdtemp()))
    ['pp64', 'tg16']
    """
    key = latency_key(target, cfg, threads, device)
    done = {r["test"] for r in read_jsonl_tolerant(out / LATENCY) if r.get("key") == key}
    return [name for name, _, _ in tests_for(cfg) if name not in done]


def peak_rss_bytes() -> int:
    """This process's peak resident set size, in bytes.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this process's own memory map.
    Not ``ru_maxrss``: that survives exec, so a worker forked from a parent that once held 500 MB
    would report the parent's peak instead of its own.

    >>> peak_rss_bytes() > 10 * 2**20
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def stats_row(samples_s: list[float], n_tokens: int) -> dict[str, Any]:
    """llama-bench's statistics over repetitions: ns per run and tokens/s per run, mean ± sample std.

    >>> r = stats_row([0.5, 0.25], 100)
    >>> r["avg_ns"], r["avg_ts"], round(r["stddev_ts"], 3)
    (375000000, 300.0, 141.421)
    """
    ns = [int(s * 1e9) for s in samples_s]
    ts = [n_tokens / s for s in samples_s]
    sd = statistics.stdev if len(samples_s) > 1 else (lambda _: 0.0)
    return {"avg_ns": int(statistics.mean(ns)), "stddev_ns": int(sd(ns)), "avg_ts": statistics.mean(ts),
            "stddev_ts": sd(ts), "samples_ns": ns, "samples_ts": ts}


def run_latency(runner, target: Target, cfg: LatencyConfig, out: Path, machine: dict[str, Any],
                isolated: bool, progress: bool = True, reference=None) -> list[dict[str, Any]]:
    """Run the tests not yet logged for this build; append and return their rows. ``reference``
    (``llama_bench.Sampler``): after each of the kit's repetitions, one repetition of the same test by
    llama-bench, whose row (``reference.row``) is logged beside the kit's."""
    from edgemed.console import track

    info = runner.info
    key = latency_key(target, cfg, runner.threads, runner.device_pref)
    todo = set(pending_tests(target, cfg, runner.threads, runner.device_pref, out))
    rows = []
    for name, n_prompt, n_gen in tests_for(cfg):
        if name not in todo:
            continue
        run = (lambda: runner.prefill(n_prompt)) if n_prompt else (lambda: runner.decode(n_gen))
        for _ in range(cfg.warmup):
            run()
        samples, yardstick = [], []
        for _ in track(range(cfg.repetitions), f"{name} {target.label}", "rep", disable=not progress):
            samples.append(run())
            if reference is not None:  # paired: the same test by llama-bench, right after this repetition
                yardstick.append(reference(n_prompt, n_gen))
        row = {
            # llama-bench's field names, so its tooling reads these rows
            "build_commit": info.get("runtime_version"), "cpu_info": machine["cpu_info"],
            "gpu_info": machine["gpu_info"], "backends": target.backend,
            "model_filename": target.path, "model_type": f"{target.name} {target.quant}",
            "model_size": target.bytes, "model_n_params": target.n_params,
            "n_batch": info.get("n_batch", n_prompt or 1), "n_threads": runner.threads,
            "n_gpu_layers": info.get("n_gpu_layers", 0), "n_prompt": n_prompt, "n_gen": n_gen,
            "test_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **stats_row(samples, n_prompt or n_gen),
            # edgemed's additions
            "target": target.label, "key": key, "test": name, "format": target.format,
            "quant": target.quant, "device": info["device"], "device_pref": runner.device_pref,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # see docs/runtimes.md
            "execution_provider": info.get("execution_provider"),
            "runtime_build": info.get("build"),  # llama.cpp: the portable build or the CPU variant loaded
            "cores_physical": machine["cores_physical"], "peak_rss_bytes": peak_rss_bytes(),
            "rss_isolated": isolated, "load_seconds": round(runner.load_seconds, 3),
        }
        if n_prompt:
            # The prefill run ends with the first new token's logits: its time is the TTFT at this length.
            row["ttft_ms"] = row["avg_ns"] / 1e6
        append_jsonl(out / LATENCY, row)
        rows.append(row)
        if yardstick:
            append_jsonl(out / LATENCY, reference.row(yardstick, n_prompt or n_gen, name))
    return rows


def latency_rows(target: Target, cfg: LatencyConfig, out: Path) -> list[dict[str, Any]]:
    """This build's logged rows for the current settings (newest per test), in test order.

    Rows match on the resume key, not the label: the same bytes timed with the same settings
    under another label (a base export benched again as "trained") are the same measurement.
    """
    wanted = [name for name, _, _ in tests_for(cfg)]
    rows: dict[str, dict] = {}
    for r in read_jsonl_tolerant(out / LATENCY):
        if r.get("harness") == LLAMA_BENCH:  # the yardstick's rows: llama_bench.reference_rows
            continue
        if r.get("test") in wanted and r.get("key") == latency_key(target, cfg, r["n_threads"], r["device_pref"]):
            rows[r["test"]] = {**r, "target": target.label}
    return [rows[n] for n in wanted if n in rows]
