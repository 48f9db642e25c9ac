"""A fresh venv with only ``edgemed[device]``: what a device gets from ``pip install 'edgemed[device]'``.

Used by tests/bench/test_device.py (cached between runs) and benchmarks/device_install.py and
benchmarks/device_latency.py (fresh). llama-cpp-python comes from the portable wheel that
``scripts/install_llama_cpp.sh`` built and cached for ``make install`` (never rebuilt here); every
other dependency is resolved by pip from pyproject's ``device`` extra (PyPI, or pip's cache). The
edgemed wheel itself is built from this tree and reinstalled on every use, so a cached venv always
runs the current code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLAMA_VERSION = "0.3.36"
# What the device install must never bring (the list, plus their usual companions).
HEAVY = ("torch", "transformers", "trl", "peft", "optimum", "datasets", "accelerate")
READY = ".edgemed-slim-ready"


def device_requirements() -> list[str]:
    """pyproject's base dependencies plus its ``device`` extra: the cache key of a slim venv."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["device"])


def llama_wheel() -> Path | None:
    """The portable llama-cpp-python wheel make install built (scripts/install_llama_cpp.sh's cache)."""
    root = Path(os.environ.get("EDGEMED_WHEEL_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgemed" / "wheels")
    found = sorted(root.glob(f"llama_cpp_python-{LLAMA_VERSION}-*/llama_cpp_python-{LLAMA_VERSION}-*.whl"))
    if platform.machine() == "x86_64":  # the flavour the install script picks on this CPU
        try:
            avx2 = " avx2 " in f" {Path('/proc/cpuinfo').read_text()} ".replace("\n", " ")
        except OSError:
            avx2 = False
        flavour = "x86-64-v3" if avx2 else "x86-64-sse"
        found = [w for w in found if w.parent.name.endswith(flavour)]
    return found[0] if found else None


def venv_key() -> str:
    """Changes whenever what the slim venv should hold changes (dependency list, Python, llama wheel)."""
    wheel = llama_wheel()
    blob = "\n".join([sys.version, platform.machine(), str(wheel and wheel.parent.name), *device_requirements()])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def pip(target_python: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """This venv's pip acting on ``target_python`` (the slim venv has no pip of its own)."""
    cmd = [sys.executable, "-m", "pip", "--python", str(target_python), "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_edgemed_wheel(out_dir: Path) -> Path:
    """A wheel of this source tree (no dependencies, no build isolation: setuptools from this venv)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("edgemed-*.whl"):
        old.unlink()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out_dir), str(ROOT)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"building the edgemed wheel failed:\n{proc.stderr[-3000:]}")
    return next(out_dir.glob("edgemed-*.whl"))


def python_of(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def create(env_dir: Path, wheel_dir: Path) -> Path:
    """Make a slim venv at ``env_dir`` from scratch: the cached llama wheel, then ``edgemed[device]``."""
    wheel = llama_wheel()
    if wheel is None:
        raise FileNotFoundError("no cached portable llama-cpp-python wheel: run `make install` first "
                                "(scripts/install_llama_cpp.sh builds and caches it)")
    shutil.rmtree(env_dir, ignore_errors=True)
    venv.create(env_dir, with_pip=False, symlinks=True)
    py = python_of(env_dir)
    pip(py, "install", "-q", "--no-deps", str(wheel))
    # The same build record make install writes, so llama.cpp loads exactly as in the full kit.
    full_lib = Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib"
    record = full_lib / "edgemed_build.json"
    if record.is_file():
        slim_lib = Path(subprocess.check_output(
            [str(py), "-c", "import importlib.util, pathlib; "
             "print(pathlib.Path(importlib.util.find_spec('llama_cpp').origin).parent / 'lib')"], text=True).strip())
        shutil.copyfile(record, slim_lib / "edgemed_build.json")
    edgemed_wheel = build_edgemed_wheel(wheel_dir)
    pip(py, "install", "-q", f"{edgemed_wheel}[device]")
    return py


def cached(cache_root: Path, wheel_dir: Path) -> Path:
    """The slim venv under ``cache_root`` for the current dependency list (made once), with this tree's
    edgemed freshly installed; returns its python."""
    env_dir = cache_root / f"slim-venv-{venv_key()}"
    py = python_of(env_dir)
    if not (env_dir / READY).is_file() or not py.exists():
        create(env_dir, wheel_dir)
        (env_dir / READY).write_text(venv_key() + "\n")
    else:
        pip(py, "install", "-q", "--no-deps", "--force-reinstall", str(build_edgemed_wheel(wheel_dir)))
    return py


def importable(py: Path, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``modules`` the venv of ``py`` could import (found on its path, not imported)."""
    code = ("import importlib.util, sys; "
            "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None))")
    return subprocess.check_output([str(py), "-c", code, *modules], text=True).split()


def tree_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
