"""Rebuild a faithful HF tokenizer from a GGUF file's metadata.

transformers' GGUF tokenizer conversion (4.57) loses three things llama.cpp keeps: the special
token roles (it maps EOS to ``<|im_start|>``), ``add_bos_token = false`` (it prepends a BOS to
every encode), and the pre-tokenizer named by ``tokenizer.ggml.pre`` (for ``smollm`` digits are
split one by one). Any of these makes the torch model see different ids than llama.cpp, which
breaks parity and training on numbers such as "150/95". We rebuild them from the metadata.
"""

from __future__ import annotations

from pathlib import Path

from gguf import GGUFReader
from tokenizers import decoders, pre_tokenizers, processors

from edgemed.errors import ModelError

# llama.cpp pre-tokenizer name → the equivalent HF pre-tokenizer (llama-vocab.cpp regexes).
PRE_TOKENIZERS = {
    "smollm": lambda: pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ]),
    "gpt-2": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
}


def gguf_tokenizer_meta(path: str | Path) -> dict:
    """Special-token ids, BOS policy, model and pre-tokenizer names from a GGUF header.

    >>> from edgemed.models import default_gguf_path
    >>> meta = gguf_tokenizer_meta(default_gguf_path())
    >>> meta["pre"], meta["eos_token_id"], meta["add_bos_token"]
    ('smollm', 2, False)
    """
    fields = GGUFReader(path).fields

    def get(key, default=None):
        return fields[key].contents() if key in fields else default

    return {
        "model": get("tokenizer.ggml.model"),
        "pre": get("tokenizer.ggml.pre"),
        "bos_token_id": get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "unk_token_id": get("tokenizer.ggml.unknown_token_id"),
        "pad_token_id": get("tokenizer.ggml.padding_token_id"),
        "add_bos_token": bool(get("tokenizer.ggml.add_bos_token", False)),
        "chat_template": get("tokenizer.chat_template"),
    }


def tokenizer_from_gguf(path: str | Path):
    """A ``PreTrainedTokenizerFast`` whose ids match llama.cpp's for the same GGUF (BPE vocabularies)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    meta = gguf_tokenizer_meta(path)
    if meta["model"] != "gpt2":
        raise ModelError(f"{path.name}: tokenizer model '{meta['model']}' is not supported for "
                         "GGUF → HF rebuild (only BPE 'gpt2' vocabularies)")
    if meta["pre"] not in PRE_TOKENIZERS:
        raise ModelError(f"{path.name}: unknown pre-tokenizer '{meta['pre']}' "
                         f"(known: {', '.join(sorted(PRE_TOKENIZERS))})")
    loaded = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    backend = loaded.backend_tokenizer
    backend.normalizer = None
    backend.pre_tokenizer = PRE_TOKENIZERS[meta["pre"]]()
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)

    def token(i):
        return None if i is None else backend.id_to_token(int(i))

    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=token(meta["bos_token_id"]), eos_token=token(meta["eos_token_id"]),
        unk_token=token(meta["unk_token_id"]),
        pad_token=token(meta["pad_token_id"] if meta["pad_token_id"] is not None else meta["eos_token_id"]),
        chat_template=meta["chat_template"], clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    if meta["add_bos_token"]:
        bos = tok.bos_token
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
            special_tokens=[(bos, int(meta["bos_token_id"]))])
    return tok
