"""End to end on CPU with the default model: train 2 steps, resume to 3, merge, reload.

Tiny on purpose (1 prompt x 2 generations x 16 tokens per step); the training run is shared by
all tests here through a module-scoped fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemed.train.config import load_train_config
from edgemed.train.recipe import LOG_FILE, MANIFEST, train
from edgemed.train.trainlog import read_training_log
from tests.train.resume_checks import assert_resumed_once_at_step_2


TINY = {
    "grpo.max_steps": 2, "grpo.num_generations": 2, "grpo.per_device_train_batch_size": 2,
    "grpo.max_completion_length": 16, "grpo.save_steps": 1,
    # A large step so two updates move the logits measurably; explicit gives partial credit
    # (pitfalls avoided), so groups rarely tie and the gradient is rarely zero.
    "grpo.learning_rate": 1e-3, "rewards": [{"name": "explicit"}],
    "data.max_prompts": 2,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "train"
    cfg = load_train_config("smollm2_heart_grpo_cpu", {**TINY, "output_dir": str(out)})
    return cfg, train(cfg)


def test_two_steps_write_adapter_log_plot_manifest(run):
    cfg, summary = run
    out = Path(cfg.output_dir)
    assert summary.steps == 2
    adapter = Path(summary.adapter_dir)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "tokenizer_config.json").is_file()
    rows = read_training_log(out / LOG_FILE)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["reward"] is not None and "frac_reward_zero_std" in row
        assert row["timing/generation_s"] > 0 and row["timing/reward_s"] > 0
        assert row["timing/step_s"] >= row["timing/generation_s"] + row["timing/reward_s"] - 1e-6
    assert (out / "train_log.png").stat().st_size > 1000
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["stage"] == "train" and manifest["steps"] == 2
    assert manifest["base_model"]["spec"] == "default" and len(manifest["base_model"]["fingerprint"]) == 64
    assert manifest["reward_last"]["n"] == 2 and manifest["data"]["counts"]["used"] == 2
    assert manifest["quantization"]["load_in_4bit"] is False
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


def test_resume_continues_from_last_checkpoint(run):
    cfg, _ = run
    out = Path(cfg.output_dir)
    cfg3 = load_train_config("smollm2_heart_grpo_cpu", {**TINY, "output_dir": str(out), "grpo.max_steps": 3})
    summary = train(cfg3)
    assert summary.steps == 3
    assert Path(summary.resumed_from).name == "checkpoint-2"
    assert_resumed_once_at_step_2(out / LOG_FILE)


def test_merge_changes_logits_and_reloads(run, tmp_path, default_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgemed.train.merge import merge_adapter

    _, summary = run
    merged_dir = merge_adapter(summary.adapter_dir, tmp_path / "merged", dtype="float32")
    assert (merged_dir / "config.json").is_file() and (merged_dir / "edgemed_merge.json").is_file()
    assert not list(merged_dir.glob("adapter_*"))

    tok = AutoTokenizer.from_pretrained(merged_dir)
    ids = tok("My chest hurts when I climb stairs.", return_tensors="pt")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32).eval()
        base_logits = base(**ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
        merged_logits = merged(**ids).logits
        with_adapter = PeftModel.from_pretrained(base, summary.adapter_dir).eval()
        adapter_logits = with_adapter(**ids).logits
    assert (merged_logits - base_logits).abs().max().item() > 1e-4
    # Merged weights compute what base + adapter computed.
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-3)
