"""The onnxruntime runner needs no torch, transformers or optimum, yet reads the chat and answers
exactly as they do: the same ids from the chat template, the same greedy tokens, the same text."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemed.bench.runners import open_runner
from edgemed.bench.targets import Target
from edgemed.models.folder_tokenizer import FolderTokenizer

CHATS = [
    [{"role": "user", "content": "What are the warning signs of a heart attack?"}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "BP 150/95 mmHg at 58, café au lait, ünïcode — should I worry?"},
     {"role": "assistant", "content": "Possibly; see a clinician."},
     {"role": "user", "content": "And with 2×10⁻³ mol/L potassium?"}],
]


@pytest.fixture(scope="module")
def onnx_dir(export_manifest) -> Path:
    return export_manifest.parent / "onnx-fp32"


def test_tokenizer_matches_transformers(onnx_dir):
    from transformers import AutoTokenizer

    ours, theirs = FolderTokenizer(onnx_dir), AutoTokenizer.from_pretrained(onnx_dir)
    assert (ours.vocab_size, ours.eos_token_id, ours.bos_token_id) == (len(theirs), theirs.eos_token_id,
                                                                       theirs.bos_token_id)
    for chat in CHATS:
        ids = ours.chat_ids(chat)
        assert ids == theirs.apply_chat_template(chat, add_generation_prompt=True)
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)


def test_greedy_answer_matches_optimum_generate(onnx_dir):
    import torch
    from transformers import GenerationConfig

    from edgemed.runtimes import onnxruntime as optimum_runtime

    target = Target("e/onnx-fp32", "e", "onnx-fp32", "onnx", "fp32", str(onnx_dir), 1, 1, "ab", 1)
    with open_runner(target, threads=1, device="cpu") as runner:
        ours = runner.chat(CHATS[1], max_new_tokens=24)
        assert runner.info["execution_provider"] == "CPUExecutionProvider" and runner.prefill(8) > 0
    loaded = optimum_runtime.load(onnx_dir, threads=1, device="cpu")
    tok = loaded.tokenizer
    enc = tok.apply_chat_template(CHATS[1], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    config = GenerationConfig(max_new_tokens=24, do_sample=False, eos_token_id=tok.eos_token_id,
                              pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    with torch.inference_mode():
        out = loaded.model.generate(**enc, generation_config=config)
    new = out[0, enc["input_ids"].shape[1]:]
    assert (ours.text, ours.n_prompt, ours.n_gen) == (tok.decode(new, skip_special_tokens=True).strip(),
                                                      enc["input_ids"].shape[1], len(new))
