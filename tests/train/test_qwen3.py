"""Qwen3, the paper's architecture, through `edgemed train` on CPU: LoRA, and QLoRA in 4-bit NF4
(bitsandbytes' CPU backend) run from the GPU user's own config, qwen3_heart_grpo_qlora; then
`edgemed train merge`. The model is a tiny random Qwen3 built from a config (tests/tiny_qwen3.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from safetensors import safe_open

from edgemed.cli import main
from tests.conftest import qwen3_train_argv


def manifest_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_tiny_qwen3_is_qwen3_shaped(tiny_qwen3_dir):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_qwen3_dir)
    assert config.architectures == ["Qwen3ForCausalLM"] and config.tie_word_embeddings is False
    with safe_open(tiny_qwen3_dir / "model.safetensors", "pt") as f:
        names = set(f.keys())
        assert {"model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
                "lm_head.weight"} <= names
        # The q/k norms are not the identity, so a build that dropped them would not pass parity.
        assert f.get_tensor("model.layers.0.self_attn.q_norm.weight").std() > 0.1
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    chat = [{"role": "user", "content": "Is 150/95 high?"}]
    prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nIs 150/95 high?<|im_end|>\n<|im_start|>assistant\n"
    off = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert off == prompt + "<think>\n\n</think>\n\n"
    # A past assistant turn keeps only its answer; the reasoning of earlier turns is dropped.
    history = chat + [{"role": "assistant", "content": "<think>\nbp\n</think>\n\nYes."},
                      {"role": "user", "content": "Why?"}]
    assert "bp" not in tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    assert [len(tok(t, add_special_tokens=False).input_ids) for t in ("<think>", "</think>")] == [1, 1]
    assert tok.eos_token == "<|im_end|>" and tok.bos_token is None


def test_lora_trains_and_merges(qwen3_lora_run, tiny_qwen3_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    m = manifest_of(qwen3_lora_run)
    assert m["steps"] == 2 and m["quantization"]["load_in_4bit"] is False
    assert m["quantization"]["linear4bit_layers"] == 0
    assert m["base_model"]["path"] == str(tiny_qwen3_dir)
    adapter = qwen3_lora_run / "adapter"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(cfg["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # The adapter's tokenizer is the Qwen3 one the prompts were rendered with.
    assert "enable_thinking" in AutoTokenizer.from_pretrained(adapter).chat_template

    merged = tmp_path / "merged"
    assert main(["train", "merge", str(adapter), str(merged), "--dtype", "float32"]) == 0
    ids = AutoTokenizer.from_pretrained(merged)("My chest hurts.", return_tensors="pt")
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir, dtype=torch.float32).eval()
        base_logits = base(**ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()(**ids).logits
        adapter_logits = PeftModel.from_pretrained(base, adapter).eval()(**ids).logits
    assert (merged_logits - base_logits).abs().max().item() > 1e-4
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4)


@pytest.fixture(scope="module")
def qlora_run(tiny_qwen3_dir, tmp_path_factory):
    """qwen3_heart_grpo_qlora itself, with only size, precision and judge changed for a CPU."""
    import bitsandbytes  # noqa: F401  part of the install ([all]): missing is a failure, not a skip
    out = tmp_path_factory.mktemp("qwen3-qlora") / "train"
    argv = qwen3_train_argv(tiny_qwen3_dir, out, **{
        "model.dtype": "float32",  # CPU: the GPU config computes in bfloat16
        "grpo.gradient_accumulation_steps": 1,  # 2 prompts in all; the GPU config takes 4 per step
        "judge.backend": "proxy"})  # the GPU config grades with an OpenAI-compatible server
    argv[argv.index("smollm2_heart_grpo_cpu")] = "qwen3_heart_grpo_qlora"
    assert main(argv) == 0
    return out


def test_qlora_trains_4bit_from_the_gpu_config(qlora_run):
    m = manifest_of(qlora_run)
    q = m["quantization"]
    assert q["load_in_4bit"] is True and q["backend"] == "cpu"
    # 2 layers x 7 adapted projections are bitsandbytes Linear4bit (the LM head stays full precision).
    assert q["linear4bit_layers"] == 14
    config = m["config"]
    assert config["model"]["require_4bit"] is True and config["grpo"]["gradient_checkpointing"] is True
    assert (config["lora"]["r"], config["lora"]["alpha"], config["lora"]["dropout"]) == (16, 32, 0.0)
    assert config["grpo"]["loss_type"] == "dapo" and m["steps"] == 2
    log = [json.loads(line) for line in (qlora_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "reward" in r] == [1, 2]


def test_qlora_adapter_merges_with_its_warning(qlora_run, tmp_path, caplog):
    merged = tmp_path / "merged"
    with caplog.at_level(logging.WARNING, logger="edgemed.train.merge"):
        assert main(["train", "merge", str(qlora_run / "adapter"), str(merged), "--dtype", "float32"]) == 0
    assert any("4-bit (QLoRA)" in r.getMessage() for r in caplog.records)
    record = json.loads((merged / "edgemed_merge.json").read_text())
    assert record["trained_in_4bit"] is True and (merged / "model.safetensors").is_file()


def test_require_4bit_without_bitsandbytes_fails_before_loading(tiny_qwen3_dir, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    argv = qwen3_train_argv(tiny_qwen3_dir, tmp_path / "t", **{"judge.backend": "proxy"})
    argv[argv.index("smollm2_heart_grpo_cpu")] = "qwen3_heart_grpo_qlora"
    assert main(argv) == 2
    assert "model.require_4bit" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_train_json_summary_is_the_only_stdout(tiny_qwen3_dir, tmp_path):
    # trl prints every step's log dict; those go to the stage log, so stdout parses as one document.
    import contextlib
    import io

    out = io.StringIO()
    argv = qwen3_train_argv(tiny_qwen3_dir, tmp_path / "train", **{"grpo.max_steps": 1}) + ["--json"]
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    summary = json.loads(out.getvalue())
    assert summary["steps"] == 1 and Path(summary["manifest"]).is_file()
