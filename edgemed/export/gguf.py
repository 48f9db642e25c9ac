"""GGUF builds: one conversion with llama.cpp's converter, then llama.cpp's quantizer per quant.

The HF folder is converted once to an f32 GGUF (lossless for fp32/bf16 checkpoints); every quant,
f16 included, is made from it by ``llama_model_quantize`` through llama-cpp-python, so all builds
share one conversion and the quantizer is the one the runtime ships. Afterwards the tokenizer,
pre-tokenizer, chat template and special tokens are read back with ``gguf.GGUFReader`` and compared
with the source tokenizer: a silent tokenizer change would pass a perplexity check and still break
chat, so it fails loudly here.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from edgemed.errors import EnvironmentFailure, ModelError
from edgemed.export import converter

log = logging.getLogger(__name__)

# quant name → llama.cpp file type. k-quants need rows divisible by 256; llama.cpp falls back to
# q5_0/q8_0 etc. per tensor where they are not, so the manifest records the actual tensor types
# and, where they differ from the quant's own, a one-line ``quant_note`` (quant_note.py).
FTYPES = {"f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
          "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
          "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q3_k_m": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
          "q2_k": "LLAMA_FTYPE_MOSTLY_Q2_K"}


def convert_hf(model_dir: Path, outfile: Path) -> None:
    """HF folder → f32 GGUF with the converter that matches the installed llama-cpp-python."""
    converter.convert(model_dir, outfile, outtype="f32")


def quantize(src: Path, dst: Path, quant: str, threads: int = 2) -> None:
    """Quantize an f32 GGUF to ``quant`` with llama.cpp's own quantizer.

    >>> quantize(Path("in.gguf"), Path("out.gguf"), "q3_k")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: unknown gguf quant 'q3_k' (known: f16, q8_0, q4_k_m, q5_k_m, q4_0, q3_k_m, q2_k)
    """
    from edgemed.errors import ConfigError

    if quant not in FTYPES:
        raise ConfigError(f"unknown gguf quant {quant!r} (known: {', '.join(FTYPES)})")
    from edgemed.runtimes.llamacpp import import_llama_cpp

    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quant])
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0 or not dst.is_file():
        raise EnvironmentFailure(f"llama.cpp quantizer failed ({rc}) making {quant} from {src} "
                                 "(is the disk full?)")


def tensor_types(path: Path) -> dict[str, int]:
    """Count of tensors per ggml type, as stored (llama.cpp's per-tensor fallbacks included).

    >>> from edgemed.models import default_gguf_path
    >>> tensor_types(default_gguf_path())
    {'F32': 61, 'Q4_1': 210, 'Q8_0': 1}
    """
    from gguf import GGUFReader

    counts = Counter(t.tensor_type.name for t in GGUFReader(path).tensors)
    return dict(sorted(counts.items()))


def row_widths(path: Path) -> list[int]:
    """The distinct row lengths (columns, ggml's ``ne[0]``) of the matrices a GGUF stores.

    k-quants need them divisible by 256 (``quant_note`` says which were not).

    >>> from edgemed.models import default_gguf_path
    >>> row_widths(default_gguf_path())
    [576, 1536]
    """
    from gguf import GGUFReader

    return sorted({int(t.shape[0]) for t in GGUFReader(path).tensors if len(t.shape) >= 2})


def read_tokenizer_meta(path: Path) -> dict[str, Any]:
    """The tokenizer facts llama.cpp will act on, read back from a GGUF header.

    >>> from edgemed.models import default_gguf_path
    >>> meta = read_tokenizer_meta(default_gguf_path())
    >>> meta["model"], meta["pre"], meta["eos_token_id"], meta["tokens"][meta["eos_token_id"]]
    ('gpt2', 'smollm', 2, '<|im_end|>')
    """
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def get(key: str, default: Any = None) -> Any:
        return fields[key].contents() if key in fields else default

    tokens = get("tokenizer.ggml.tokens", [])
    return {"model": get("tokenizer.ggml.model"), "pre": get("tokenizer.ggml.pre"),
            "n_tokens": len(tokens), "tokens": tokens,
            "bos_token_id": get("tokenizer.ggml.bos_token_id"),
            "eos_token_id": get("tokenizer.ggml.eos_token_id"),
            "add_bos_token": bool(get("tokenizer.ggml.add_bos_token", False)),
            "chat_template": get("tokenizer.chat_template"),
            "architecture": get("general.architecture")}


def check_tokenizer_survived(path: Path, tokenizer) -> dict[str, Any]:
    """Compare a GGUF's tokenizer metadata with the HF source tokenizer; raise on any difference.

    Checks the vocabulary (count and, for byte-level BPE, every token string), the pre-tokenizer
    name (llama.cpp's ``default`` means the converter did not recognise it), EOS/BOS ids, whether a
    BOS is prepended, and the chat template. Returns the metadata summary.

    >>> from transformers import AutoTokenizer  # doctest: +SKIP
    >>> check_tokenizer_survived(Path("smol-q8_0.gguf"), AutoTokenizer.from_pretrained(src))  # doctest: +SKIP
    {'model': 'gpt2', 'pre': 'smollm', 'n_tokens': 49152, 'bos_token_id': 1, 'eos_token_id': 2, 'add_bos_token': False}
    """
    meta = read_tokenizer_meta(path)
    problems = []
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if meta["n_tokens"] < len(vocab):
        problems.append(f"vocabulary has {meta['n_tokens']} tokens, source {len(vocab)}")
    elif meta["model"] == "gpt2":
        diff = next((i for i, t in enumerate(vocab) if meta["tokens"][i] != t), None)
        if diff is not None:
            problems.append(f"token {diff} is {meta['tokens'][diff]!r}, source {vocab[diff]!r}")
    if meta["model"] == "gpt2" and meta["pre"] in (None, "default"):
        problems.append("pre-tokenizer not recognised (tokenizer.ggml.pre = "
                        f"{meta['pre']!r}); numbers and spaces would split differently")
    if tokenizer.eos_token_id is not None and meta["eos_token_id"] != tokenizer.eos_token_id:
        problems.append(f"eos_token_id {meta['eos_token_id']}, source {tokenizer.eos_token_id} "
                        f"({tokenizer.eos_token!r})")
    source_adds_bos = tokenizer.bos_token_id is not None and \
        tokenizer("a", add_special_tokens=True).input_ids[:1] == [tokenizer.bos_token_id]
    if meta["add_bos_token"] != source_adds_bos:
        problems.append(f"add_bos_token {meta['add_bos_token']}, source {source_adds_bos}")
    if source_adds_bos and meta["bos_token_id"] != tokenizer.bos_token_id:
        problems.append(f"bos_token_id {meta['bos_token_id']}, source {tokenizer.bos_token_id}")
    source_template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if (meta["chat_template"] or None) != (source_template or None):
        problems.append("chat template differs from the source's")
    if problems:
        raise ModelError(f"{path}: tokenizer did not survive GGUF conversion: " + "; ".join(problems))
    return {k: meta[k] for k in ("model", "pre", "n_tokens", "bos_token_id", "eos_token_id",
                                  "add_bos_token")}
