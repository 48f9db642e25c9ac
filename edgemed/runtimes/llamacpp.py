"""llama.cpp through llama-cpp-python: the one place that imports it, loads GGUFs and explains crashes.

Two machine-level hazards are handled here, once, for every user (parity, bench, judge, server):

- **CPU features.** llama.cpp compiled with ``-march=native`` on a VM that *advertises* AMX or
  AVX-512 without being able to execute them dies with SIGILL on the first decode. ``make install``
  builds it portably (``scripts/install_llama_cpp.sh``: x86-64-v3, no AVX-512, no AMX) and records
  the build in ``llama_cpp/lib/edgemed_build.json``; :func:`build_info` reads it. When a build of
  unknown provenance is loaded, the CPU "extra buffer types" (the AMX repacking path) are turned off.
- **CPU variants.** Besides the portable build, the installer builds an AVX-512 variant of the same
  llama-cpp-python on a machine whose CPU runs it (``VARIANTS``) and keeps its libraries under
  ``<venv>/share/edgemed/llama-cpp-variants/``. :func:`import_llama_cpp` loads the best variant this
  CPU runs (``LLAMA_CPP_LIB_PATH``, inherited by child processes), the portable one otherwise, the
  way llama.cpp's own release builds pick a CPU backend at run time. ``EDGEMED_LLAMA_VARIANT=portable``
  (or a ``LLAMA_CPP_LIB_PATH`` of the user's) keeps the choice out of edgemed's hands.
- **Shared cores.** OpenMP worker threads spin-wait by default; a second busy process on a 2-core
  machine then slows decode 20×. :func:`set_wait_policy` makes the policy deliberate (see docs/bench.md).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from functools import cache
from pathlib import Path
from typing import Any

# OpenMP reads OMP_WAIT_POLICY once, when the library loads: set it before the first import.
DEFAULT_WAIT_POLICY = "PASSIVE"
DEFAULTED = "EDGEMED_WAIT_POLICY_DEFAULTED"        # set when edgemed (not the user) chose the policy
KEEP_OPENMP_DEFAULT = "EDGEMED_KEEP_OPENMP_DEFAULT"  # a timed bench worker: leave OpenMP's default


def set_wait_policy(policy: str | None = None) -> str:
    """Set ``OMP_WAIT_POLICY`` for this process and its children unless the user already chose one.

    PASSIVE: idle OpenMP threads sleep instead of spinning, so a judge, a trainer and a bench worker
    sharing two cores do not starve each other (measured cost on an idle machine: docs/bench.md).

    >>> import os
    >>> os.environ["OMP_WAIT_POLICY"] = "ACTIVE"; set_wait_policy()
    'ACTIVE'
    """
    if os.environ.get(KEEP_OPENMP_DEFAULT) == "1":  # a timed bench worker, alone on its cores
        return os.environ.get("OMP_WAIT_POLICY", "default")
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ[DEFAULTED] = "1"
    return os.environ.setdefault("OMP_WAIT_POLICY", policy or DEFAULT_WAIT_POLICY)


def timed_worker_env() -> dict[str, str]:
    """Environment for a bench worker that runs alone and is timed: OpenMP's own default policy
    (spin briefly, then sleep), unless the user chose one. PASSIVE cost 40 % of decode speed on an
    idle machine (benchmarks/results/llamacpp_build.json), so it is kept for processes that share cores."""
    env = dict(os.environ)
    # The user chose a policy only if one is set and edgemed did not set it. A parent that never
    # loaded a runtime has set nothing: its worker must still be told to keep OpenMP's default, or
    # loading llama.cpp there would set PASSIVE (a script that reused an export timed every GGUF
    # at 0.30-0.45 of llama-bench that way).
    if env.pop(DEFAULTED, None) == "1" or "OMP_WAIT_POLICY" not in env:
        env.pop("OMP_WAIT_POLICY", None)
        env[KEEP_OPENMP_DEFAULT] = "1"
    return env


# CPU variants the installer may build beside the portable library: name → the /proc/cpuinfo flags
# every instruction set it was compiled with needs (scripts/install_llama_cpp.sh builds the same list).
# Best first. AMX stays off everywhere: a VM may advertise it without the kernel granting it.
VARIANTS: dict[str, tuple[str, ...]] = {
    "x86-64-avx512": ("avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw",
                      "avx512_vnni", "avx512vbmi", "avx512_bf16"),
}
VARIANT_ENV = "EDGEMED_LLAMA_VARIANT"  # "portable": never load a variant; a variant's name: that one


def variants_dir() -> Path:
    """Where the installer keeps the variant libraries (one folder per variant)."""
    return Path(sys.prefix) / "share" / "edgemed" / "llama-cpp-variants"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The instruction-set flags the kernel reports for this CPU (empty when unknown).

    >>> sorted(cpu_flags("processor : 0\\nflags : fpu avx2 avx512f\\n"))
    ['avx2', 'avx512f', 'fpu']
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose_variant(flags: frozenset[str], installed: list[str], wanted: str | None = None) -> str | None:
    """The variant to load: the first of ``VARIANTS`` that is installed and whose flags this CPU has;
    ``wanted`` ("portable" or a variant's name) overrides, but never with one the CPU cannot run.

    >>> everything = frozenset(VARIANTS["x86-64-avx512"])
    >>> choose_variant(everything, ["x86-64-avx512"]), choose_variant(frozenset({"avx2"}), ["x86-64-avx512"])
    ('x86-64-avx512', None)
    >>> choose_variant(everything, []), choose_variant(everything, ["x86-64-avx512"], wanted="portable")
    (None, None)
    """
    if wanted == "portable":
        return None
    for name, needs in VARIANTS.items():
        if (wanted in (None, "", name)) and name in installed and set(needs) <= flags:
            return name
    return None


def select_variant() -> str | None:
    """Point ``LLAMA_CPP_LIB_PATH`` at the best installed variant this CPU runs, before llama_cpp loads;
    the name chosen, or None (the portable library). A path the user set is left alone."""
    if "LLAMA_CPP_LIB_PATH" in os.environ or "llama_cpp" in sys.modules:
        return None
    root = variants_dir()
    installed = sorted(p.name for p in root.iterdir() if (p / "edgemed_build.json").is_file()) if root.is_dir() else []
    name = choose_variant(cpu_flags(), installed, os.environ.get(VARIANT_ENV))
    if name is not None:
        os.environ["LLAMA_CPP_LIB_PATH"] = str(root / name)
    return name


def lib_dir() -> Path:
    """The folder the loaded llama.cpp libraries come from (a variant's, or the package's own)."""
    llama_cpp = import_llama_cpp()
    base = getattr(llama_cpp.llama_cpp, "_base_path", None)  # where llama_cpp loaded libllama from
    return Path(base) if base else Path(llama_cpp.__file__).parent / "lib"


def import_llama_cpp():
    """``import llama_cpp`` with the wait policy set and the CPU variant chosen first; a clear line
    when it is missing."""
    set_wait_policy()
    select_variant()
    try:
        import llama_cpp
    except ImportError as e:
        from edgemed.errors import EnvironmentFailure

        raise EnvironmentFailure(f"llama.cpp runtime unavailable ({e}); install it with `make install` "
                                 "(builds llama-cpp-python==0.3.36 portably)") from None
    return llama_cpp


@cache
def build_info() -> dict[str, Any] | None:
    """How the loaded llama.cpp libraries were built (``None``: not by edgemed's installer)."""
    path = lib_dir() / "edgemed_build.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def library_files() -> list[Path]:
    """The native libraries llama_cpp loads (ggml CPU backend included): a variant's, or the package's."""
    found = {p.resolve() for p in lib_dir().glob("*.so*") if p.is_file()}
    return sorted(found)  # symlinks (libfoo.so → libfoo.so.0.1) resolved: each library once


def load(path: str | Path, **params: Any):
    """``llama_cpp.Llama(model_path=path, **params)``, guarded against CPU features a VM cannot run.

    The file's structure is checked first (``edgemed.integrity``): a cut or damaged GGUF is one line
    naming the file and the problem, not llama.cpp's "failed to load model".
    """
    from edgemed.integrity.gguf_file import check_gguf

    check_gguf(path)
    if params.get("lora_path"):  # a LoRA GGUF applied on top: checked the same way
        check_gguf(params["lora_path"])
    llama_cpp = import_llama_cpp()
    params.setdefault("verbose", False)
    if build_info() is not None:
        return llama_cpp.Llama(model_path=str(path), **params)
    # A build of unknown provenance (maybe -march=native): load without the CPU "extra buffer types",
    # the repacking path where AMX kernels live (they crashed with SIGILL on VMs advertising AMX).
    # llama-cpp-python 0.3.36 has no keyword for it, so the model defaults are adjusted while loading.
    import llama_cpp.llama_cpp as capi

    original = capi.llama_model_default_params

    def without_extra_bufts():
        model_params = original()
        model_params.use_extra_bufts = False
        return model_params

    capi.llama_model_default_params = without_extra_bufts
    try:
        return llama_cpp.Llama(model_path=str(path), **params)
    finally:
        capi.llama_model_default_params = original


def run_child(cmd: list[str], what: str, **kwargs: Any) -> None:
    """Run a child process (a bench worker, a parity probe); a failure becomes one line.

    A child killed by a signal is a ``RuntimeCrash`` (exit code 4); one that failed with its own
    exit code passes that failure's kind on (2: bad input, 3: parity, 4: environment).

    >>> import sys
    >>> run_child([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], "probe")
    Traceback (most recent call last):
    ...
    edgemed.errors.RuntimeCrash: probe crashed with SIGTERM (no traceback: a native crash)
    """
    import subprocess

    from edgemed.errors import EdgemedError, EnvironmentFailure, ParityError, RuntimeCrash

    proc = subprocess.run(cmd, **kwargs)
    if proc.returncode != 0:
        hint = "its traceback is above" if proc.returncode > 0 else "no traceback: a native crash"
        kind = {ParityError.exit_code: ParityError, EnvironmentFailure.exit_code: EnvironmentFailure,
                EdgemedError.exit_code: EdgemedError}.get(proc.returncode, RuntimeCrash)
        raise kind(f"{describe_exit(proc.returncode, what)} ({hint})")


def describe_exit(returncode: int, what: str) -> str:
    """One line for a child process that died: the signal, the likely cause, the fix.

    >>> describe_exit(-4, "bench worker for base/gguf-q8_0")
    'bench worker for base/gguf-q8_0 crashed with SIGILL (illegal instruction): the native runtime (llama.cpp, ONNX Runtime or torch) was built for CPU features this machine cannot execute, e.g. AMX or AVX-512 on a VM that advertises them; rebuild portably with `rm .venv/.installed && make install` (scripts/install_llama_cpp.sh), or load the portable build instead of a CPU variant with EDGEMED_LLAMA_VARIANT=portable'
    >>> describe_exit(3, "judge server")
    'judge server failed with exit code 3'
    """
    if returncode >= 0:
        return f"{what} failed with exit code {returncode}"
    signum = -returncode
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    why = {
        signal.SIGILL: " (illegal instruction): the native runtime (llama.cpp, ONNX Runtime or torch) was built "
                       "for CPU features this machine cannot execute, e.g. AMX or AVX-512 on a VM that advertises "
                       "them; rebuild portably with `rm .venv/.installed && make install` "
                       "(scripts/install_llama_cpp.sh), or load the portable build instead of a CPU "
                       "variant with EDGEMED_LLAMA_VARIANT=portable",
        signal.SIGKILL: " (killed): most often the kernel's out-of-memory killer; use a smaller build, fewer "
                        "threads or a smaller context",
        signal.SIGSEGV: " (segmentation fault) inside a native runtime: often a corrupt or truncated model file; "
                        "re-export it and check its sha256 against the manifest",
        signal.SIGBUS: " (bus error): a model file changed or was truncated while memory-mapped",
    }.get(signum, "")
    return f"{what} crashed with {name}{why}"
