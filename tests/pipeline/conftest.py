"""Helpers to run ``edgemed run`` for real, in a subprocess, and to kill it at a chosen moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

TINY = Path(__file__).with_name("tiny.yaml")


def edgemed_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgemed.cli", *args]


def run_edgemed(*args: str, timeout: float = 900, env: dict | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``edgemed ARGS`` as a user types it; ``cwd`` lets a test use relative paths from a fresh folder."""
    return subprocess.run(edgemed_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def run_until(args: list[str], ready: Callable[[], bool], timeout: float = 600) -> int:
    """Start ``edgemed`` and SIGKILL it as soon as ``ready()`` holds; return its exit code."""
    proc = subprocess.Popen(edgemed_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def tiny_args(tmp_path) -> list[str]:
    return ["run", "--config", str(TINY), "--runs-dir", str(tmp_path / "runs")]
