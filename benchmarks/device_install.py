"""How big the slim device install is: a fresh venv with only ``edgemed[device]``, measured on disk.

    .venv/bin/python benchmarks/device_install.py

Creates a new venv (no pip inside it; this venv's pip installs into it, as tests/slim_venv.py does),
installs the portable llama-cpp-python wheel make install cached and then ``edgemed[device]`` from
this tree, checks that none of torch, transformers, trl, peft, optimum, datasets, accelerate is
importable, and writes benchmarks/results/device_install.json: the venv's total bytes, its
site-packages bytes per distribution (largest first), pip's own size (what a venv made with pip
adds), the install time and the goal (under 300 MB on x86-64).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _common import provenance, write_result  # noqa: E402  (puts the repository on sys.path)

from tests import slim_venv  # noqa: E402

GOAL_BYTES = 300 * 10**6


def site_packages(py: Path) -> Path:
    return Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())


def per_distribution(py: Path, site: Path) -> list[dict]:
    """Bytes of each installed distribution's files (from its RECORD), largest first."""
    code = ("import importlib.metadata as m, json; print(json.dumps([[d.metadata['Name'], d.version, "
            "[str(f) for f in (d.files or [])]] for d in m.distributions()]))")
    rows = []
    for name, version, files in json.loads(subprocess.check_output([str(py), "-c", code], text=True)):
        size = 0
        for f in files:
            p = (site / f).resolve()
            if p.is_file():
                size += p.stat().st_size
        rows.append({"name": name, "version": version, "bytes": size})
    return sorted(rows, key=lambda r: -r["bytes"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "device_install.json"),
                        help="Results JSON to write.")
    args = parser.parse_args()
    prov = provenance(__file__)

    with tempfile.TemporaryDirectory(prefix="edgemed-device-install-") as tmp:
        env_dir = Path(tmp) / "venv"
        t0 = time.perf_counter()
        py = slim_venv.create(env_dir, Path(tmp) / "wheel")
        seconds = time.perf_counter() - t0
        heavy = slim_venv.importable(py)
        site = site_packages(py)
        dists = per_distribution(py, site)
        total, site_bytes = slim_venv.tree_bytes(env_dir), slim_venv.tree_bytes(site)
    pip_bytes = sum(p.stat().st_size for p in Path(importlib.metadata.distribution("pip").locate_file("pip")).rglob("*")
                    if p.is_file())
    result = {
        **prov, "machine": {**prov["machine"], "arch": platform.machine()},
        "requirements": slim_venv.device_requirements(),
        "llama_cpp_wheel": str(slim_venv.llama_wheel().name),
        "install_seconds": round(seconds, 1),
        "heavy_importable": heavy,
        "venv_bytes": total, "site_packages_bytes": site_bytes, "pip_bytes": pip_bytes,
        "venv_with_pip_bytes": total + pip_bytes,
        "goal_bytes": GOAL_BYTES, "goal_met": total + pip_bytes < GOAL_BYTES and not heavy,
        "distributions": dists,
        "note": "venv_bytes: every file of the venv (interpreter symlinks not counted); pip is not inside it "
                "(installed from outside with pip --python), venv_with_pip_bytes adds what a venv made with pip "
                "holds. bytes = apparent file sizes, 10^6 bytes = 1 MB.",
    }
    write_result(args.out, result)
    print(f"slim install: {total / 1e6:.1f} MB ({(total + pip_bytes) / 1e6:.1f} MB with pip), goal < "
          f"{GOAL_BYTES / 1e6:.0f} MB: {'met' if result['goal_met'] else 'NOT met'}; heavy packages importable: "
          f"{heavy or 'none'}; installed in {seconds:.0f} s")
    for d in dists[:8]:
        print(f"  {d['name']:<22} {d['version']:<12} {d['bytes'] / 1e6:7.1f} MB")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
