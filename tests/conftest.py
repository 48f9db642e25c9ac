"""Shared fixtures: the default model, the offline HealthBench records and heart subset."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    from edgemed.models import resolve_model

    return resolve_model("default")


@pytest.fixture(scope="session")
def healthbench_records():
    from edgemed.data.healthbench import load_healthbench

    return load_healthbench()


@pytest.fixture(scope="session")
def heart(healthbench_records):
    from edgemed.data.heart import heart_subset

    return heart_subset(healthbench_records)


# --- Qwen3: the paper-scale architecture, tiny (tests/tiny_qwen3.py) ----------------------------

QWEN3_TRAIN = {  # 1 prompt x 2 generations x 16 tokens per step: seconds per step on 2 cores
    "grpo.max_steps": 2, "grpo.num_generations": 2, "grpo.per_device_train_batch_size": 2,
    "grpo.max_completion_length": 16, "grpo.save_steps": 2, "grpo.learning_rate": 1e-3,
    "rewards": [{"name": "explicit"}], "data.max_prompts": 2,
}


def qwen3_train_argv(model_dir, out, **overrides) -> list[str]:
    """`edgemed train` arguments for a 2-step run of the CPU config on a tiny Qwen3."""
    import json

    settings = {**QWEN3_TRAIN, "model.spec": str(model_dir), "output_dir": str(out), **overrides}
    argv = ["train", "--config", "smollm2_heart_grpo_cpu"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return argv


@pytest.fixture(scope="session")
def tiny_qwen3_dir(default_model_dir, tmp_path_factory) -> Path:
    """A random 2-layer, 64-wide Qwen3ForCausalLM (untied head, q/k norms, Qwen3 chat template)."""
    from tests.tiny_qwen3 import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3") / "qwen3", default_model_dir)


@pytest.fixture(scope="session")
def qwen3_lora_run(tiny_qwen3_dir, tmp_path_factory) -> Path:
    """`edgemed train` with LoRA on the tiny Qwen3 (2 steps); returns the run's output folder."""
    from edgemed.cli import main

    out = tmp_path_factory.mktemp("qwen3-lora") / "train"
    assert main(qwen3_train_argv(tiny_qwen3_dir, out)) == 0
    return out
