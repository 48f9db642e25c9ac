"""What every script in benchmarks/ shares: the repository root on ``sys.path``, one provenance
record (script, date, commit, dirty flag, machine, load) and the atomic write of a results file.

A figure in docs/ is read from a file under benchmarks/results/ that one of these scripts wrote;
the provenance says which commit measured it, whether the tree had uncommitted changes, on which
machine, and how busy that machine was when the measurement started (a timing taken while another
job shared the cores is not a timing).

    from _common import RESULTS, provenance, write_result   # scripts run as `python benchmarks/x.py`
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def git(*args: str) -> str:
    """``git args`` in the repository, stripped stdout ('' when git or the repository is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict:
    """CPU, cores, memory, OS and Python of this machine (edgemed's own probe, as bench.json records it)."""
    from edgemed.bench.latency.machine import machine_info

    return {**machine_info(), "platform": platform.platform(), "python": platform.python_version()}


def provenance(script: str) -> dict:
    """Where a results file came from: pass ``__file__``.

    ``worktree_dirty`` counts tracked files only (an untracked scratch file changes no figure).

    >>> p = provenance(__file__)
    >>> p["script"], sorted(p) == sorted(["script", "date", "commit", "worktree_dirty", "machine",
    ...                                   "load_average_at_start"])
    ('benchmarks/_common.py', True)
    """
    return {"script": f"benchmarks/{Path(script).name}",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": git("rev-parse", "HEAD") or None,
            "worktree_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "machine": machine(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Write ``result`` as indented JSON atomically (a killed script leaves the old file) and say where."""
    from edgemed.io import write_json_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result)
    print(f"wrote {path}")
    return path
