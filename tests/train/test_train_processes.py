"""GRPO on two processes through accelerate, on CPU (gloo): the documented multi-process path.

    accelerate launch --multi_gpu --num_processes 2 -m edgemed.cli train --config smollm2_heart_grpo_cpu ...

Each rank generates 2 of a group's 4 completions and grades them; DDP averages the gradients;
rank 0 alone writes the adapter, log, plot and manifest; both ranks share one judge cache; a
second launch resumes from the checkpoint the first wrote. Tiny on purpose (1 prompt x 4
completions x 8 tokens per step, LoRA r=4 on two projections); both launches are shared by the
tests here through a module-scoped fixture.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edgemed.train.recipe import ADAPTER_DIR, LOG_FILE, MANIFEST
from edgemed.train.trainlog import read_training_log
from tests.train.resume_checks import assert_resumed_once_at_step_2

SETS = {
    "grpo.num_generations": 4, "grpo.per_device_train_batch_size": 2,  # every group split 2 + 2
    "grpo.max_completion_length": 8, "grpo.save_steps": 1, "grpo.learning_rate": 1e-3,
    "lora.r": 4, "lora.alpha": 8, "lora.target_modules": "[q_proj, v_proj]",
    "rewards": "[{name: explicit}]", "data.max_prompts": 2,
}


def launch(out: Path, cache: Path, max_steps: int) -> subprocess.CompletedProcess:
    with socket.socket() as s:  # a free rendezvous port: other runs may hold torchrun's 29500
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sets = [arg for key, value in {**SETS, "judge.cache_path": cache}.items()
            for arg in ("--set", f"{key}={value}")]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(port), "-m", "edgemed.cli", "train", "--config", "smollm2_heart_grpo_cpu",
           "--max-steps", str(max_steps), "--output", str(out), *sets]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # CPU ranks even on a GPU host
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranks")
    out, cache = root / "train", root / "verdicts.sqlite"
    first = launch(out, cache, max_steps=2)
    manifest_2 = json.loads((out / MANIFEST).read_text())
    log_2 = read_training_log(out / LOG_FILE)
    resumed = launch(out, cache, max_steps=3)
    return {"out": out, "cache": cache, "first": first, "manifest_2": manifest_2, "log_2": log_2,
            "resumed": resumed}


def test_two_ranks_train_and_one_writes(runs):
    out, manifest = runs["out"], runs["manifest_2"]
    assert manifest["steps"] == 2
    assert manifest["processes"] == {"processes": 2, "backend": "gloo", "distributed_type": "MULTI_CPU",
                                     "replicas_in_sync": True}  # DDP averaged the gradients
    # Both ranks checkpointed their RNG state; only rank 0 wrote weights, log, plot and manifest.
    assert sorted(p.name for p in (out / "checkpoint-2").glob("rng_state_*.pth")) == \
        ["rng_state_0.pth", "rng_state_1.pth"]
    assert (out / "train_log.png").stat().st_size > 1000
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no leftover temp folders
    # One summary on stdout, not one per rank.
    assert runs["first"].stdout.count("adapter:") == 1 and runs["resumed"].stdout.count("adapter:") == 1


def test_the_adapter_loads_on_its_base(runs, default_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = runs["out"] / ADAPTER_DIR
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    tok = AutoTokenizer.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        logits = model(**tok("My chest hurts.", return_tensors="pt")).logits
    assert logits.shape[-1] == base.config.vocab_size and torch.isfinite(logits).all()


def test_log_shows_both_ranks_and_whole_groups(runs):
    rows = runs["log_2"]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        ranks = [row["rewards/explicit/rank0/mean"], row["rewards/explicit/rank1/mean"]]
        # trl's gathered mean is the mean over both ranks' completions (2 each).
        assert row["rewards/explicit/mean"] == pytest.approx(sum(ranks) / 2, abs=1e-6)
        # The reward saw each group whole although each rank generated half of it.
        assert row["rewards/explicit/groups"] == 1 and row["rewards/explicit/mean_group_size"] == 4


def test_ranks_share_one_judge_cache(runs):
    # Both ranks read and wrote one sqlite file (WAL + busy timeout); a lock error would have
    # crashed a rank, and a failed verdict would show in the log.
    cache = runs["cache"]
    assert sorted(p.name for p in cache.parent.glob("verdicts.sqlite*")) == ["verdicts.sqlite"]  # WAL checkpointed
    with sqlite3.connect(cache) as conn:
        verdicts = conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    assert verdicts >= 4  # min_rubric_items: every completion is graded on at least 4 criteria
    assert all(row["rewards/explicit/judge_failures"] == 0 for row in runs["log_2"])


def test_resume_on_two_ranks_continues_from_the_checkpoint(runs):
    out = runs["out"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["steps"] == 3 and Path(manifest["resumed_from"]).name == "checkpoint-2"
    assert manifest["processes"]["replicas_in_sync"] is True
    assert_resumed_once_at_step_2(out / LOG_FILE)
