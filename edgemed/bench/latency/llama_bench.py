"""llama-bench as the yardstick: the C++ tool times the same GGUF in the same run as the kit.

``edgemed bench --latency-reference`` (``latency.llama_bench``) runs llama-bench — built from the
installed llama-cpp-python's own source, see ``edgemed.export.llama_tools`` — on every GGUF with the
same threads, prompt and decode lengths, repetitions and batch size. The two are **paired**: inside
the bench worker, each repetition of the kit's runner is followed by one llama-bench repetition of
the same test (``Sampler``: a fresh llama-bench process, its own warm-up, ``-r 1``), so both rates
see the machine in the same state; run one after the other, a VM's speed drifting by 10–25 % within
a minute made the ratio meaningless. Its rows go to ``latency.jsonl`` under their own resume key
(``paired: true``); the report puts each build's kit rate beside llama-bench's, so the harness
overhead (Python, ctypes, llama-cpp-python) is a measured figure, not a guess. ``run`` times a GGUF
whose kit rows were resumed from an earlier run unpaired (``paired: false``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgemed.bench.config import LatencyConfig
from edgemed.bench.latency.timing import stats_row  # the kit's own rows use the same statistics
from edgemed.bench.layout import LATENCY, LLAMA_BENCH
from edgemed.bench.targets import Target
from edgemed.io import append_jsonl, read_jsonl_tolerant


def bench_key(target: Target, cfg: LatencyConfig, threads: int) -> str:
    """Resume key of llama-bench's rows for a build (never equal to the kit's own rows' key).

    >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x.gguf", 1, 1, "ab", 1)
    >>> from edgemed.bench.latency.timing import latency_key
    >>> bench_key(t, LatencyConfig(), 2) != latency_key(t, LatencyConfig(), 2, "cpu")
    True
    """
    return target.key(harness=LLAMA_BENCH, repetitions=cfg.repetitions, threads=threads,
                      n_prompt=cfg.n_prompt, n_gen=cfg.n_gen, paired=1)


def command(path: str, cfg: LatencyConfig, threads: int) -> list[str]:
    """llama-bench arguments matching the kit's latency test (CPU, batch 512, JSON out).

    >>> command("m.gguf", LatencyConfig(n_prompt=128, n_gen=64, repetitions=3), 2)
    ['-m', 'm.gguf', '-p', '128', '-n', '64', '-r', '3', '-t', '2', '-b', '512', '-ub', '512', '-ngl', '0', '-o', 'json']
    """
    return ["-m", path, "-p", str(cfg.n_prompt), "-n", str(cfg.n_gen), "-r", str(cfg.repetitions),
            "-t", str(threads), "-b", "512", "-ub", "512", "-ngl", "0", "-o", "json"]


def parse(stdout: str, target: Target, key: str) -> list[dict[str, Any]]:
    """llama-bench's JSON rows, tagged with the kit's test names, target and key.

    >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x.gguf", 1, 1, "ab", 1)
    >>> out = '[{"n_prompt": 0, "n_gen": 64, "avg_ts": 70.5, "avg_ns": 9}]'
    >>> [(r["test"], r["avg_ts"], r["harness"]) for r in parse(out, t, "k")]
    [('tg64', 70.5, 'llama-bench')]
    """
    rows = []
    for r in json.loads(stdout):
        test = f"pp{r['n_prompt']}" if r.get("n_prompt") else f"tg{r['n_gen']}"
        rows.append({**r, "test": test, "target": target.label, "key": key, "harness": LLAMA_BENCH,
                     "format": target.format, "quant": target.quant})
    return rows


def time_gguf(path: str, cfg: LatencyConfig, threads: int) -> str:
    """llama-bench's JSON output for one GGUF (pp and tg tests as configured). It runs in the
    environment of a timed bench worker (OpenMP's own wait policy, not the PASSIVE one edgemed sets
    for processes that share cores), so the yardstick and the kit's workers are timed alike."""
    from edgemed.export.llama_tools import run_tool
    from edgemed.runtimes.llamacpp import timed_worker_env

    return run_tool("llama-bench", command(path, cfg, threads), env=timed_worker_env())


class Sampler:
    """The yardstick paired with the kit's timer: one llama-bench repetition of one test per call (``n_prompt``
    tokens of prefill, or ``n_gen`` of decode) in a fresh process after its own warm-up, and the row those
    repetitions make, logged under llama-bench's resume key (``timing.run_latency`` takes one as ``reference``).
    """

    def __init__(self, target: Target, cfg: LatencyConfig, threads: int):
        self.target, self.threads = target, threads
        self.key = bench_key(target, cfg, threads)

    def __call__(self, n_prompt: int, n_gen: int) -> dict[str, Any]:
        cfg = LatencyConfig(n_prompt=n_prompt, n_gen=n_gen, repetitions=1)
        [row] = json.loads(time_gguf(self.target.path, cfg, self.threads))
        return row

    def row(self, repetitions: list[dict[str, Any]], n_tokens: int, test: str) -> dict[str, Any]:
        """llama-bench's row for ``test`` from the single-repetition rows this sampler returned."""
        return paired_row(repetitions[0], [int(r["avg_ns"]) for r in repetitions], n_tokens, self.target,
                          self.key, test)


def paired_row(first: dict[str, Any], samples_ns: list[int], n_tokens: int, target: Target, key: str,
               test: str) -> dict[str, Any]:
    """llama-bench's row for a test from the repetitions it ran between the kit's, in its own format.

    >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x.gguf", 1, 1, "ab", 1)
    >>> r = paired_row({"n_gen": 100, "avg_ts": 1.0}, [500_000_000, 1_000_000_000], 100, t, "k", "tg100")
    >>> r["avg_ts"], r["samples_ts"], r["paired"], r["harness"]
    (150.0, [200.0, 100.0], True, 'llama-bench')
    """
    return {**first, **stats_row([ns / 1e9 for ns in samples_ns], n_tokens), "test": test, "target": target.label,
            "key": key, "harness": LLAMA_BENCH, "paired": True, "format": target.format, "quant": target.quant}


def run(target: Target, cfg: LatencyConfig, threads: int, out: Path) -> list[dict[str, Any]]:
    """Time a GGUF with llama-bench unless already logged for these settings; return its rows."""
    if target.format != "gguf":
        return []
    done = reference_rows(target, cfg, threads, out)
    if done:
        return done
    key = bench_key(target, cfg, threads)
    rows = [{**r, "paired": False} for r in parse(time_gguf(target.path, cfg, threads), target, key)]
    for row in rows:
        append_jsonl(out / LATENCY, row)
    return rows


def reference_rows(target: Target, cfg: LatencyConfig, threads: int, out: Path) -> list[dict[str, Any]]:
    """llama-bench's logged rows for this build and settings (newest per test)."""
    key = bench_key(target, cfg, threads)
    rows = {r["test"]: r for r in read_jsonl_tolerant(out / LATENCY) if r.get("key") == key}
    return list(rows.values())


def harness_ratio(kit_ts: float | None, reference_ts: float | None) -> float | None:
    """The kit's rate as a fraction of llama-bench's (1.0 = no harness overhead).

    >>> harness_ratio(66.5, 70.0)
    0.95
    >>> harness_ratio(None, 70.0) is None
    True
    """
    if not kit_ts or not reference_ts:
        return None
    return round(kit_ts / reference_ts, 4)
