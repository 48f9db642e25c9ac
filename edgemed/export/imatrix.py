"""Heart-calibrated GGUF quants: an importance matrix from heart text, then llama-quantize with it.

An importance matrix records, per weight column, how strongly the activations that multiply it
fire on some calibration text (``llama-imatrix``); the quantizer then spends its rounding error
where the model's inputs are small. Calibrated on heart text, the low-bit quants keep what a heart
assistant uses. The calibration text is the packaged heart rubric set's
``train`` and ``validation`` splits (``edgemed/data/assets/heart_rubrics.jsonl``: each question with
its reference answer, in the model's chat template). Its ``test`` split is part of the held-out
fidelity text (``heldout.py``), and the parity prompts (``parity.HEART_PROMPTS``) are never in it,
so neither fidelity measurement is made on text the quantizer was tuned on.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from edgemed.errors import ConfigError
from edgemed.export import llama_tools

log = logging.getLogger(__name__)

SOURCES = ("none", "heart")
# llama-imatrix context per chunk: the 63 train/validation Q&A pairs give about 30 chunks of 256 tokens.
CHUNK_TOKENS = 256
# Quants that read an importance matrix; f16/q8_0 are near lossless and ignore one.
USES_IMATRIX = ("q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k", "iq4_nl")
# The rubric split held out of calibration: the held-out fidelity text is made from it.
HELD_OUT_SPLIT = "test"


def render_pairs(pairs: list[tuple[str, str]], chat_template=None) -> str:
    """Question/answer pairs as one calibration text, each pair in the chat format when given.

    >>> render_pairs([("Q1?", "A1."), ("Q2?", "A2.")])
    'Q1?\\nA1.\\n\\nQ2?\\nA2.\\n\\n'
    >>> render_pairs([("Q?", "A.")], lambda q, a: f"<u>{q}</u><a>{a}</a>")
    '<u>Q?</u><a>A.</a>\\n\\n'
    """
    render = chat_template or (lambda q, a: f"{q}\n{a}")
    return "".join(render(q, a) + "\n\n" for q, a in pairs)


def heart_pairs() -> list[tuple[str, str]]:
    """(question, reference answer) of every packaged heart rubric record that has an answer and is
    not in the held-out ``test`` split.

    >>> pairs = heart_pairs(); len(pairs) > 50 and all(q and a for q, a in pairs)
    True
    >>> from edgemed.export.parity import HEART_PROMPTS
    >>> any(q in HEART_PROMPTS for q, _ in pairs)  # held out: parity never sees calibration text
    False
    """
    from edgemed.data.rar import load_rar_medicine

    return [(r.user_text, r.reference_answer) for r in load_rar_medicine("edgemed-heart")
            if r.reference_answer and r.split != HELD_OUT_SPLIT]


def chat_pair(tokenizer=None):
    """``(question, answer) -> text`` in ``tokenizer``'s chat template (user turn, assistant turn),
    or None when it has none (``render_pairs`` then writes them as plain lines)."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None

    def render(q: str, a: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False)
    return render


def calibration_text(source: str, tokenizer=None) -> str:
    """The calibration text for ``source`` (``heart``), in ``tokenizer``'s chat template if it has one."""
    if source != "heart":
        raise ConfigError(f"unknown imatrix source {source!r} (known: {', '.join(SOURCES)})")
    return render_pairs(heart_pairs(), chat_pair(tokenizer))


def calibration_digest(source: str) -> str:
    """Hash of the calibration records (not of their chat rendering) for the export's inputs key.

    >>> calibration_digest("heart") == calibration_digest("heart")
    True
    """
    if source != "heart":
        raise ConfigError(f"unknown imatrix source {source!r} (known: {', '.join(SOURCES)})")
    return hashlib.sha256(render_pairs(heart_pairs()).encode()).hexdigest()


def compute(model_gguf: Path, text: str, out: Path, threads: int = 2) -> dict:
    """Run ``llama-imatrix`` on ``text`` with the f32 GGUF; return what the manifest records."""
    text_file = out.with_suffix(".txt")
    text_file.write_text(text, encoding="utf-8")
    llama_tools.run_tool("llama-imatrix", [
        "-m", str(model_gguf), "-f", str(text_file), "-o", str(out), "-c", str(CHUNK_TOKENS),
        "-b", str(CHUNK_TOKENS), "-t", str(threads), "--no-ppl", "-ngl", "0"])
    return {"source": "heart", "chunk_tokens": CHUNK_TOKENS,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(), "text_chars": len(text)}


def quantize(src: Path, dst: Path, quant: str, imatrix: Path, threads: int = 2) -> None:
    """``llama-quantize --imatrix`` from the f32 GGUF to ``quant`` (llama.cpp's own type names)."""
    llama_tools.run_tool("llama-quantize", ["--imatrix", str(imatrix), str(src), str(dst),
                                            quant.upper(), str(threads)])
