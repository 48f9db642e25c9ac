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


# ARM's "CPU part" ids (/proc/cpuinfo on aarch64 names no model): the cores of Raspberry Pis,
# Jetsons and common phones.
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710",
             "0xd48": "Cortex-X2", "0xd49": "Neoverse-N2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3",
             "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4"}


def cpu_name_from(cpuinfo: str) -> str | None:
    """The CPU's name from /proc/cpuinfo text: x86's "model name", else ARM's core types by part id.

    >>> cpu_name_from("processor : 0\\nmodel name : AMD EPYC 7B13\\n")
    'AMD EPYC 7B13'
    >>> cpu_name_from("CPU implementer : 0x41\\nCPU part : 0xd0b\\n" * 4)
    'Cortex-A76 ×4'
    >>> cpu_name_from("CPU part : 0xd46\\n" * 4 + "CPU part : 0xd47\\n" * 3)  # big.LITTLE
    'Cortex-A510 ×4 + Cortex-A710 ×3'
    """
    parts: dict[str, int] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and value:
            return value
        if key == "cpu part":
            name = ARM_PARTS.get(value.lower(), f"ARM part {value}")
            parts[name] = parts.get(name, 0) + 1
    return " + ".join(f"{name} ×{n}" for name, n in parts.items()) or None


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = cpu_name_from(f.read())
        if name:
            return name
    except OSError:
        pass
    return platform.processor() or platform.machine()


def board_model() -> str:
    """The board or phone, where the system names one: the device tree's model (Raspberry Pi, Jetson),
    Android's product model (``getprop``); empty on PCs and servers."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            with open(path, "rb") as f:
                text = f.read().rstrip(b"\0").decode("utf-8", "replace").strip()
            if text:
                return text
        except OSError:
            continue
    if shutil.which("getprop"):  # Android (Termux)
        try:
            names = [subprocess.run(["getprop", key], capture_output=True, text=True, timeout=5).stdout.strip()
                     for key in ("ro.product.manufacturer", "ro.product.model")]
        except (OSError, subprocess.SubprocessError):
            return ""
        return " ".join(n for n in names if n)
    return ""


def accelerator(gpus: list[str], board: str) -> str:
    """The accelerator a runtime could use: NVIDIA GPUs (nvidia-smi), a Jetson's integrated GPU, else ''.

    >>> accelerator([], "NVIDIA Jetson Orin Nano Developer Kit"), accelerator(["NVIDIA H200"], "")
    ('integrated GPU of NVIDIA Jetson Orin Nano Developer Kit', 'NVIDIA H200')
    """
    if gpus:
        return ", ".join(gpus)
    if "jetson" in board.lower() or os.path.exists("/etc/nv_tegra_release"):
        return f"integrated GPU of {board or 'an NVIDIA Jetson'}"
    return ""


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
    board = board_model()
    return {"cpu_info": cpu_model(), "cores_physical": physical_cores(),
            "cores_logical": os.cpu_count() or 1, "gpu_info": ", ".join(gpus),
            "memory_bytes": int(psutil.virtual_memory().total), "os": platform.platform(),
            "board": board, "accelerator": accelerator(gpus, board), "python": platform.python_version()}


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
