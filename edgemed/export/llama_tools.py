"""llama.cpp's command-line tools (llama-imatrix, llama-quantize, llama-bench), from the runtime's source.

``scripts/build_llama_tools.sh`` (run by ``make install``) builds them from the vendored llama.cpp in
the sdist of the *installed* llama-cpp-python, with the same portable flags as its wheel, and puts
them next to the GGUF converter: ``<venv>/share/edgemed/tools/llama-cpp-python-VER/bin/``. So an
importance matrix, the quant made with it and the llama-bench yardstick all come from the code
that later runs the GGUF. The Python API is not enough: it can quantize, but it cannot compute an
importance matrix, pass one to the quantizer (a C++ map behind a void pointer), or time like llama-bench.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from edgemed.errors import EnvironmentFailure

log = logging.getLogger(__name__)

TOOLS = ("llama-imatrix", "llama-quantize", "llama-bench")


def tools_bin_dir() -> Path:
    """Where the tools for the installed llama-cpp-python live (beside its converter)."""
    from edgemed.export.converter import llama_cpp_version, tools_dir

    return tools_dir() / f"llama-cpp-python-{llama_cpp_version()}" / "bin"


def tool_path(name: str) -> Path:
    """Path of one tool; a one-line error saying how to build it when it is missing.

    >>> tool_path("llama-cat")
    Traceback (most recent call last):
    ...
    ValueError: unknown llama.cpp tool 'llama-cat' (known: llama-imatrix, llama-quantize, llama-bench)
    """
    if name not in TOOLS:
        raise ValueError(f"unknown llama.cpp tool {name!r} (known: {', '.join(TOOLS)})")
    path = tools_bin_dir() / name
    if not os.access(path, os.X_OK):
        raise EnvironmentFailure(f"{name} is not installed in {path.parent}; build it from the installed "
                                 "llama-cpp-python's source with: bash scripts/build_llama_tools.sh "
                                 "(or make install)")
    return path


def run_tool(name: str, args: list[str], timeout: float | None = None, env: dict[str, str] | None = None) -> str:
    """Run a tool, return its stdout; its last stderr line in a one-line error on failure. ``env``
    (default: this process's) matters for timing: OpenMP reads its wait policy from it.

    The tools link the portable wheel's libraries by runpath; when the kit loads a CPU variant
    (``runtimes.llamacpp.select_variant``), ``LD_LIBRARY_PATH`` hands the tool the same variant, so a
    quant, an importance matrix and a llama-bench yardstick run the kernels the kit runs."""
    from edgemed.runtimes.llamacpp import select_variant

    select_variant()  # the same choice this process makes (or made) for llama_cpp
    cmd = [str(tool_path(name)), *args]
    env = dict(os.environ if env is None else env)
    # an env the caller built before that choice (e.g. timed_worker_env()) still gets it
    if os.environ.get("LLAMA_CPP_LIB_PATH"):
        env.setdefault("LLAMA_CPP_LIB_PATH", os.environ["LLAMA_CPP_LIB_PATH"])
    if env.get("LLAMA_CPP_LIB_PATH"):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(x for x in (env["LLAMA_CPP_LIB_PATH"], env.get("LD_LIBRARY_PATH")) if x)
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise EnvironmentFailure(f"{name} ran past {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise EnvironmentFailure(f"{name} failed ({proc.returncode}): {lines[-1] if lines else 'no output'}")
    return proc.stdout
