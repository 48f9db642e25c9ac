"""benchmarks/gpu_check.sh as far as a CPU allows: the dry run (wheels list, argument handling), the
wheel checks, and the model it builds on the GPU machine from nothing but the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_dry_run_lists_wheels_within_the_carry_limit():
    proc = run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dry_run"] is True and out["problems"] == []
    assert out["sizes"] == ["tiny", "qwen3-0.6b-shape"] and out["steps"] == 4
    names = [w["name"] for w in out["wheels"]]
    # The versions the kit pins (pyproject: trl==1.16.0, bitsandbytes==0.50.2), pure-Python trl and a
    # manylinux bitsandbytes (its CUDA libraries inside) for the GPU machine's Python 3.12.
    assert names == ["bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl", "trl-1.16.0-py3-none-any.whl"]
    assert sum(w["bytes"] for w in out["wheels"]) <= gpu_check.CARRY_LIMIT
    assert all(len(w["sha256"]) == 64 for w in out["wheels"])


@pytest.mark.parametrize("args, message", [
    (("--dry-run", "--sizes", "qwen3-14b"), "--sizes: unknown ['qwen3-14b']"),
    (("--dry-run", "--steps", "1"), "--steps must be 2..50"),
    (("--dry-run", "--completion", "abc"), "invalid int value"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1]


def test_wheel_checks_catch_a_changed_or_missing_wheel(tmp_path):
    (tmp_path / "a-1.0-py3-none-any.whl").write_bytes(b"wheel")
    rows = [{"name": "a-1.0-py3-none-any.whl", "bytes": 5, "sha256": "0" * 64},
            {"name": "b-2.0-py3-none-any.whl", "bytes": 1, "sha256": "0" * 64}]
    problems = gpu_check.check_wheels(rows, tmp_path)
    assert "size or sha256 differs" in problems[0] and "missing (fetch it: pip download b==2.0" in problems[1]
    assert gpu_check.check_wheels(rows, tmp_path, need_files=False) == [problems[0]]
    huge = [{"name": "x.whl", "bytes": gpu_check.CARRY_LIMIT + 1, "sha256": "0" * 64}]
    assert "over the" in gpu_check.check_wheels(huge, tmp_path, need_files=False)[0]


def test_the_gpu_machine_can_build_its_model_from_the_repository(tmp_path):
    """No SmolLM2 package there: the tokenizer is trained on the spot, the Qwen3 built from a config."""
    from transformers import AutoConfig, AutoTokenizer

    model = gpu_check.build_model("tiny", tmp_path)
    assert AutoConfig.from_pretrained(model).architectures == ["Qwen3ForCausalLM"]
    tok = AutoTokenizer.from_pretrained(model)
    text = tok.apply_chat_template([{"role": "user", "content": "Chest pain?"}], tokenize=False,
                                   add_generation_prompt=True, enable_thinking=False)
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and tok.eos_token == "<|im_end|>"
    assert gpu_check.keyword_reward(None, ["Call emergency: chest pain", [{"content": "ok"}]]) == [4.0, 0.0]


@pytest.mark.parametrize("path_args, path", [((), "trl GRPOTrainer"), (("--no-trl",), "hand-written GRPO step")])
def test_cpu_smoke_run_trains_4bit_on_both_paths(path_args, path, tmp_path):
    """`--cpu`: the whole script on bitsandbytes' CPU backend (the GPU run differs in kernels only)."""
    import bitsandbytes  # noqa: F401  part of the install ([all]): missing is a failure, not a skip
    out = tmp_path / "gpu_check.json"
    proc = run("--cpu", *path_args, "--sizes", "tiny", "--steps", "2", "--completion", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["environment"]["cuda"] is False and report["commit"] and report["date"]
    (r,) = report["runs"]
    assert r["path"].startswith(path) and r["linear4bit_layers"] == 14 and r["kernels_4bit_cuda"] is False
    assert len(r["step_s"]) == 2 and r["step_s_steady_mean"] > 0 and r["peak_gpu_mem_mib"] is None
