import json

import pytest

from edgemed.errors import ModelError
from edgemed.models import load_model, model_fingerprint, resolve_model
from edgemed.models.chat import generate_answer, with_system
from edgemed.models.gguf_tokenizer import gguf_tokenizer_meta


def test_default_is_an_hf_folder_with_chatml_and_eos(default_model_dir):
    cfg = json.loads((default_model_dir / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["hidden_size"] == 576 and cfg["num_hidden_layers"] == 30
    model, tok = load_model(default_model_dir)
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nhi<|im_end|>" in text
    assert tok("150/95").input_ids[0] != tok.bos_token_id  # llama.cpp adds no BOS for this vocab


def test_tokenizer_matches_llama_cpp_on_the_same_gguf(default_model_dir):
    llama_cpp = pytest.importorskip("llama_cpp")
    from edgemed.models import default_gguf_path, load_tokenizer

    tok = load_tokenizer(default_model_dir)
    llm = llama_cpp.Llama(str(default_gguf_path()), vocab_only=True, verbose=False)
    try:
        for s in ["BP 150/95 at 54, on 10mg amlodipine.", "  Chest\n\npain 2024’s café!", "<|im_start|>user\nhi"]:
            assert tok(s).input_ids == llm.tokenize(s.encode(), add_bos=False, special=True)
    finally:
        llm.close()
    assert gguf_tokenizer_meta(default_gguf_path())["pre"] == "smollm"


def test_default_model_answers_a_heart_question_in_english(default_model_dir):
    model, tok = load_model(default_model_dir)
    answer = generate_answer(model, tok, with_system(
        [{"role": "user", "content": "What are common symptoms of a heart attack?"}], "Be concise."), 48)
    words = answer.lower().split()
    assert len(words) >= 15 and "<|im_end|>" not in answer
    assert any(w.strip(".,:;") in {"chest", "pain", "heart", "breath", "shortness"} for w in words)


def test_bad_specs_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(tmp_path)
    with pytest.raises(ModelError, match="not a hub id"):
        resolve_model("./missing/folder/here")


def test_fingerprint_changes_with_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a")
    before = model_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"b")
    assert model_fingerprint(tmp_path) != before
