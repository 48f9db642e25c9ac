"""The machine a row was measured on: CPU, cores, GPU, and its measured memory bandwidth.

Decode of a small model is memory-bound: every generated token reads (about) every weight once, so
tok/s ≤ bandwidth / bytes per token. That ceiling is the roofline each decode rate is reported
against (docs/method.md §6). Bandwidth is measured, not looked up: a STREAM-style copy of a large
numpy array (bytes read + bytes written per second), best of N so a busy neighbour only ever
makes it look slower, split over the same number of threads the runtimes use.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """NVIDIA GPUs visible through nvidia-smi (empty on CPU-only machines), without importing torch."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def physical_cores() -> int:
    """Physical cores (the thread count llama-bench defaults to); logical count if unknown."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def machine_info() -> dict:
    """What goes into every row: enough to tell two machines' figures apart.

    >>> info = machine_info(); info["cores_physical"] >= 1 and isinstance(info["gpu_info"], str)
    True
    """
    import psutil

    gpus = gpu_names()
    return {"cpu_info": cpu_model(), "cores_physical": physical_cores(),
            "cores_logical": os.cpu_count() or 1, "gpu_info": ", ".join(gpus),
            "memory_bytes": int(psutil.virtual_memory().total), "os": platform.platform()}


def memory_bandwidth(threads: int = 1, mib: int = 256, repeats: int = 7) -> float:
    """Copy bandwidth in bytes/s (read + write), best of ``repeats``, over ``threads`` slices.

    numpy releases the GIL inside large copies, so threads copy their slices in parallel.

    >>> memory_bandwidth(threads=1, mib=8, repeats=2) > 1e8
    True
    """
    n = mib * (1 << 20) // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    bounds = np.linspace(0, n, threads + 1, dtype=np.int64)
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def copy(s: slice) -> None:
        np.copyto(dst[s], src[s])

    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(copy, slices))  # untimed: faults the pages of dst in
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(copy, slices))
            best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def roofline_tok_s(bandwidth_bytes_s: float, bytes_per_token: int) -> float:
    """The decode ceiling: tok/s if every token streams ``bytes_per_token`` at full bandwidth.

    >>> roofline_tok_s(30e9, 100_000_000)
    300.0
    """
    return bandwidth_bytes_s / bytes_per_token


def roofline_fraction(tok_s: float, bandwidth_bytes_s: float, bytes_per_token: int) -> float:
    """Decode rate as a fraction of its roofline (1.0 = memory-bound at the measured bandwidth).

    >>> roofline_fraction(90.0, 30e9, 100_000_000)
    0.3
    """
    return tok_s / roofline_tok_s(bandwidth_bytes_s, bytes_per_token)
