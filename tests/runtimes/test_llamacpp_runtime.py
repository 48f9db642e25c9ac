"""llama.cpp runs on every x86-64 CPU the install meets: checked on the built library itself, so
the check means the same on any machine (an AMD CI box proves nothing by merely not crashing)."""

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


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 build flags")
def test_installed_llama_cpp_was_built_portably():
    info = runtime.build_info()
    assert info is not None, "llama-cpp-python was not installed by scripts/install_llama_cpp.sh"
    assert info["flavour"] in ("x86-64-v3", "x86-64-sse")
    assert "-DGGML_NATIVE=OFF" in info["cmake_args"] and "-DGGML_AMX_INT8=OFF" in info["cmake_args"]


@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("objdump"), reason="needs x86-64 objdump")
def test_no_amx_or_avx512_instruction_in_the_native_libraries():
    libs = [p for p in runtime.library_files() if "ggml" in p.name or "llama" in p.name]
    assert any("ggml-cpu" in p.name for p in libs) or libs, "no native library found"
    for lib in libs:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True,
                             text=True, check=True).stdout
        found = sorted({w for w in FORBIDDEN if w in asm})
        assert not found, f"{lib.name} contains {found}: it would die with SIGILL on CPUs/VMs without them"


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
