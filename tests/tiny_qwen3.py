"""A tiny random Qwen3ForCausalLM built from a config (nothing downloaded), for the Qwen3 tests.

Qwen3's own parts are real: per-head q/k RMSNorms (``q_norm``/``k_norm``), an explicit
``head_dim``, an untied LM head by default (Qwen3-4B and larger) or tied (0.6B/1.7B), and Qwen3's
chat template with its ``<think>`` tags (``tests/assets/qwen3_chat_template.jinja``, the template
the Qwen3 checkpoints ship). The vocabulary is SmolLM2's byte-level BPE (49,152 tokens, already on
disk) plus ``<think>``/``</think>`` as added tokens, so steps stay at seconds on two cores; Qwen's
own 151k vocabulary would only make the embedding 3x larger.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
QWEN3_TEMPLATE = ASSETS / "qwen3_chat_template.jinja"
THINK_TOKENS = ("<think>", "</think>")


def build_tiny_qwen3(out: Path, tokenizer_dir: Path, tie_word_embeddings: bool = False,
                     hidden_size: int = 64, layers: int = 2, seed: int = 0, heads: int = 4,
                     kv_heads: int = 2, intermediate: int | None = None) -> Path:
    """Write a random Qwen3 (``hidden_size`` wide, ``layers`` deep) + tokenizer to ``out``; the
    defaults are the tests' tiny model, larger shapes serve benchmarks/gpu_check.py."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.add_tokens(list(THINK_TOKENS), special_tokens=False)
    tok.chat_template = QWEN3_TEMPLATE.read_text(encoding="utf-8")
    tok.pad_token = tok.eos_token  # <|im_end|>, as in Qwen3's own tokenizer_config
    tok.bos_token = None  # Qwen3 has none (SmolLM2 names <|im_start|>, which it never prepends)
    torch.manual_seed(seed)
    # Padded to a multiple of 64 like Qwen's own vocab (151,936 for 151,669 tokens).
    vocab = -(-len(tok) // 64) * 64
    config = Qwen3Config(vocab_size=vocab, hidden_size=hidden_size,
                         intermediate_size=intermediate or 2 * hidden_size, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         head_dim=hidden_size // heads, max_position_embeddings=1024,
                         tie_word_embeddings=tie_word_embeddings, rms_norm_eps=1e-6,
                         bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Qwen3ForCausalLM(config)
    # Random init leaves the q/k norm weights at exactly 1: scale them so a converter that dropped
    # or misplaced them would change the logits (and fail parity) instead of passing silently.
    with torch.no_grad():
        # A wide LM head makes the next-token distribution peaked, as in a trained model, so
        # top-1 and KL parity mean something (0.02-std logits are near uniform: any build "agrees").
        model.lm_head.weight.normal_(0.0, 0.5)
        for layer in model.model.layers:
            layer.self_attn.q_norm.weight.uniform_(0.5, 1.5)
            layer.self_attn.k_norm.weight.uniform_(0.5, 1.5)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)  # safetensors: the default in 4.x, the only format in 5.x
    tok.save_pretrained(out)
    return Path(out)


def copy_model(src: Path, dst: Path) -> Path:
    """A private copy (tests that write next to a model must not touch the shared one)."""
    shutil.copytree(src, dst)
    return dst
