"""llama.cpp runs on every x86-64 CPU the install meets: checked on the built library itself, so
the check means the same on any machine (an AMD CI box proves nothing by merely not crashing); a CPU
variant is checked on every machine whose CPU can load it."""

import platform
import shutil
import signal
import subprocess
import sys

import pytest

from edgemed.errors import EdgemedError
from edgemed.runtimes import llamacpp as runtime

# AMX tile instructions, and any use of the 512-bit zmm registers (AVX-512).
FORBIDDEN = ("tilezero", "ldtilecfg", "tileloadd", "tdpbssd", "tdpbf16ps", "%zmm")


def _package_lib():
    import importlib.util
    from pathlib import Path

    return Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib"


def _runnable_variants():
    """(name, folder) of every installed CPU variant this machine's CPU runs."""
    root = runtime.variants_dir()
    flags = runtime.cpu_flags()
    return [(name, root / name) for name, needs in runtime.VARIANTS.items()
            if (root / name / "edgemed_build.json").is_file() and set(needs) <= flags]


def _objdump_finds(lib, words):
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True,
                         text=True, check=True).stdout
    return sorted({w for w in words if w in asm})


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 build flags")
def test_installed_llama_cpp_was_built_portably():
    import json

    info = json.loads((_package_lib() / "edgemed_build.json").read_text())
    assert info["flavour"] in ("x86-64-v3", "x86-64-sse")
    assert "-DGGML_NATIVE=OFF" in info["cmake_args"] and "-DGGML_AMX_INT8=OFF" in info["cmake_args"]
    # whatever is loaded (the portable build or a variant) was built by the installer, with AMX off
    loaded = runtime.build_info()
    assert loaded is not None and "-DGGML_AMX_INT8=OFF" in loaded["cmake_args"]


@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump"), reason="needs x86-64 objdump")
def test_no_amx_or_avx512_instruction_in_the_portable_libraries():
    libs = [p for p in _package_lib().glob("*.so*") if p.is_file() and ("ggml" in p.name or "llama" in p.name)]
    assert any("ggml-cpu" in p.name for p in libs), "no native library found"
    for lib in {p.resolve() for p in libs}:
        found = _objdump_finds(lib, FORBIDDEN)
        assert not found, f"{lib.name} contains {found}: it would die with SIGILL on CPUs/VMs without them"


@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump"), reason="needs x86-64 objdump")
def test_every_variant_this_cpu_can_load_has_no_amx_and_runs():
    """A variant may use AVX-512 (the CPU has every flag it needs) but never AMX, which a VM can advertise
    without the kernel granting it; and it decodes in a fresh process without dying."""
    variants = _runnable_variants()
    if not variants:
        pytest.skip("no installed CPU variant that this CPU runs")
    import os

    from edgemed.models.resolve import default_gguf_path

    for name, folder in variants:
        for lib in {p.resolve() for p in folder.glob("*.so*") if "ggml" in p.name or "llama" in p.name}:
            found = _objdump_finds(lib, FORBIDDEN[:-1])
            assert not found, f"{name}/{lib.name} contains AMX instructions {found}"
        code = ("import llama_cpp, sys; from edgemed.runtimes.llamacpp import build_info, lib_dir; "
                "llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=2, verbose=False); "
                "llm.eval(llm.tokenize(b'Chest pain: call 911.')); print('LOADED', lib_dir().name, build_info()['flavour'])")
        env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(folder)}
        out = subprocess.run([sys.executable, "-c", code, str(default_gguf_path())], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == 0, runtime.describe_exit(out.returncode, f"variant {name}") + out.stderr[-500:]
        assert f"LOADED {name} {name}" in out.stdout


def test_the_variant_is_chosen_by_the_cpu_and_can_be_refused(monkeypatch, tmp_path):
    import os

    everything = frozenset(runtime.VARIANTS["x86-64-avx512"])
    assert runtime.choose_variant(everything, ["x86-64-avx512"]) == "x86-64-avx512"
    # one missing flag (e.g. a CPU with AVX-512 but no BF16) and the portable build is loaded
    assert runtime.choose_variant(everything - {"avx512_bf16"}, ["x86-64-avx512"]) is None
    assert runtime.choose_variant(everything, ["x86-64-avx512"], wanted="portable") is None
    assert runtime.choose_variant(frozenset({"avx2"}), ["x86-64-avx512"], wanted="x86-64-avx512") is None
    # a path the user set is never replaced (and children inherit whichever path was chosen)
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(tmp_path))
    assert runtime.select_variant() is None and os.environ["LLAMA_CPP_LIB_PATH"] == str(tmp_path)


def test_a_child_killed_by_sigill_is_one_line_with_cause_and_fix():
    cmd = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    with pytest.raises(EdgemedError) as err:
        runtime.run_child(cmd, "bench worker for base/gguf-q8_0")
    msg = str(err.value)
    assert "\n" not in msg
    assert "SIGILL" in msg and "AMX" in msg and "make install" in msg


def test_other_signals_and_codes_are_named():
    assert "SIGKILL" in runtime.describe_exit(-signal.SIGKILL, "w") and "memory" in runtime.describe_exit(-9, "w")
    assert runtime.describe_exit(1, "w") == "w failed with exit code 1"


def test_wait_policy_is_passive_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert runtime.set_wait_policy() == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert runtime.set_wait_policy() == "ACTIVE"


def test_edgemed_children_inherit_the_passive_policy(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import sys; from edgemed.cli import main; import os; "
            "sys.argv=['edgemed','--help']; main(['--help']); print('POLICY', os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "POLICY PASSIVE" in out.stdout, out.stderr[-1000:]


def test_timed_bench_workers_get_openmps_default_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv(runtime.DEFAULTED, raising=False)
    monkeypatch.delenv(runtime.KEEP_OPENMP_DEFAULT, raising=False)
    runtime.set_wait_policy()
    env = runtime.timed_worker_env()
    assert "OMP_WAIT_POLICY" not in env and env[runtime.KEEP_OPENMP_DEFAULT] == "1"
    # a parent that never loaded a runtime (nothing set yet): the worker still keeps OpenMP's default
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv(runtime.DEFAULTED, raising=False)
    assert runtime.timed_worker_env()[runtime.KEEP_OPENMP_DEFAULT] == "1"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv(runtime.DEFAULTED, raising=False)
    assert runtime.timed_worker_env()["OMP_WAIT_POLICY"] == "ACTIVE"
