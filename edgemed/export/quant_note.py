"""What a GGUF build really holds, in one line, when it is not what its quant's name says.

llama.cpp's k-quants (q4_k_m, q5_k_m, q3_k_m, q2_k) pack rows in blocks of 256 values; a tensor
whose rows are not a multiple of 256 wide cannot take them, and the quantizer falls back per
tensor (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0, q2_K/q3_K → q4_0 or iq4_nl). On the default model
(hidden size 576) a "q4_k_m" build is then mostly q5_0. The manifest's ``tensor_types`` holds the
counts; this module turns them into the note the manifest (``quant_note``), the export summary and
the Modelfile carry. Pure: no I/O.
"""

from __future__ import annotations

from typing import Iterable

K_BLOCK = 256  # values per k-quant block (llama.cpp's QK_K)
LEGACY_BLOCK = 32  # values per q4_0 / q5_0 / q8_0 block
# The types each quant is made of on a model whose rows fit its blocks: llama.cpp's own mix
# (q6_K for attn_v/ffn_down in the _m mixes; q4_1 for early ffn_down with an importance matrix;
# q6_K or q8_0 for the output matrix in the legacy quants). Any other type is a fallback.
K_TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
LEGACY_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q6_K")
EXPECTED: dict[str, tuple[str, ...]] = {
    "f16": ("F16",), "q8_0": ("Q8_0",), "q4_0": LEGACY_TYPES,
    "q4_k_m": K_TYPES, "q5_k_m": K_TYPES, "q3_k_m": K_TYPES, "q2_k": K_TYPES,
}
UNQUANTISED = ("F32",)  # norms and biases: kept in f32 by every quant


def quant_note(quant: str, tensor_types: dict[str, int], row_widths: Iterable[int] | None = None) -> str | None:
    """One line saying what a ``quant`` build holds when llama.cpp fell back to other types; else None.

    ``row_widths``: the row lengths of the model's matrices (``gguf.row_widths``), to say which
    ones did not fit; None when unknown.

    >>> smol = {"F32": 61, "Q4_K": 16, "Q5_0": 166, "Q6_K": 14, "Q8_0": 15}  # SmolLM2-135M, q4_k_m
    >>> quant_note("q4_k_m", smol, row_widths=[576, 1536])
    'q4_k_m holds Q4_K 16, Q5_0 166, Q6_K 14, Q8_0 15 of 211 quantised tensors: 576-column rows are not divisible by 256, llama.cpp fell back'
    >>> quant_note("q4_k_m", {"F32": 10, "Q4_K": 100, "Q6_K": 20}) is None  # rows that fit: faithful
    True
    >>> quant_note("q4_0", {"F32": 61, "Q4_0": 210, "Q8_0": 1}) is None
    True
    >>> quant_note("q2_k", {"Q3_K": 30, "Q4_0": 180, "Q8_0": 1})
    'q2_k holds Q3_K 30, Q4_0 180, Q8_0 1 of 211 quantised tensors: k-quants need rows divisible by 256, llama.cpp fell back'
    """
    expected = EXPECTED.get(quant)
    held = {t: n for t, n in sorted(tensor_types.items()) if t not in UNQUANTISED and n}
    if expected is None or all(t in expected for t in held):
        return None
    block = K_BLOCK if expected == K_TYPES else LEGACY_BLOCK
    counts = ", ".join(f"{t} {n}" for t, n in held.items())
    odd = sorted({int(w) for w in row_widths or () if int(w) % block})
    if odd:
        why = f"{' and '.join(map(str, odd))}-column rows are not divisible by {block}, llama.cpp fell back"
    elif row_widths is None:
        kind = "k-quants" if block == K_BLOCK else "its blocks"
        why = f"{kind} need rows divisible by {block}, llama.cpp fell back"
    else:
        why = "llama.cpp chose other types for some tensors"
    return f"{quant} holds {counts} of {sum(held.values())} quantised tensors: {why}"
