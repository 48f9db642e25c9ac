"""The held-out fidelity text: heart questions with written answers that no export choice was made on.

The *choosing* set is what recipes and bounds are picked on: ``parity.HEART_PROMPTS`` (8 prompts,
512 positions of the model's own greedy continuation) and the choosing documents
(``choosing_documents``: the first ``CHOOSING_DOCS`` single-turn HealthBench records *outside* the
heart subset with a physician-written ideal completion: text of the held-out set's kind, another
topic). The top-1 and KL gates read the held-out set, measured the way llama.cpp's
``llama-perplexity --kl-divergence`` measures a quant (``fidelity.py``):

- **Documents**: the packaged heart rubric set's ``test`` split (question + reference answer) and
  the single-turn records of HealthBench's heart subset (rule ``heart-keywords-v1``) that carry a
  physician-written ideal completion, in that order. A document sharing any 13-word sequence
  (``NGRAM_WORDS``) with the importance-matrix calibration text or the choosing set is dropped, and
  ``tests/export/test_heldout.py`` proves the three sets share no document, id or such sequence.
- **Text**: each document as one chat (user question, assistant answer) in the model's chat
  template, cut at ``MAX_DOC_TOKENS`` tokens (llama-perplexity's default context).
- **Positions**: every token of the assistant's answer, teacher-forced (about 6,100 with SmolLM2's
  tokenizer; at least ``MIN_POSITIONS``): the fp32 model's next-token probabilities there are the
  reference, kept as float16 in a memory-mapped file under the export's build folder (600 MB for a
  49k-token vocabulary: disk, not memory; ``fidelity.ReferenceRows`` says what float16 costs).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgemed.export import fidelity

log = logging.getLogger(__name__)

MAX_DOC_TOKENS = 512   # one chat per context, as llama-perplexity's default -c 512
MIN_POSITIONS = 4096   # the set's floor: a top-1 near 0.85 then has a standard error near 0.0056
NGRAM_WORDS = 13       # "long n-gram" overlap, the length GPT-3's contamination check used
CHOOSING_DOCS = 24     # choosing documents: about as many positions as the held-out set
HEART_RULE = "heart-keywords-v1"


class Document(NamedTuple):
    """One held-out chat: ``doc_id`` names its source (``edgemed-heart:ID``, ``healthbench:ID``)."""

    doc_id: str
    question: str
    answer: str


@functools.lru_cache(maxsize=1)
def heldout_documents() -> tuple[Document, ...]:
    """The held-out documents, in a fixed order, without any that overlap the other two sets
    (read once per process: every artifact's inputs key hashes them).

    >>> docs = heldout_documents()
    >>> docs[0].doc_id, sum(d.doc_id.startswith("healthbench:") for d in docs) > 10
    ('edgemed-heart:ehr-010', True)
    """
    from edgemed.data.healthbench import load_healthbench
    from edgemed.data.heart import heart_subset
    from edgemed.data.rar import load_rar_medicine
    from edgemed.export.imatrix import HELD_OUT_SPLIT

    docs = [Document(f"edgemed-heart:{r.prompt_id}", r.user_text, r.reference_answer)
            for r in load_rar_medicine("edgemed-heart") if r.split == HELD_OUT_SPLIT and r.reference_answer]
    docs += ideal_chats(heart_subset(load_healthbench(), HEART_RULE).records)
    seen = ngrams(calibration_texts() + choosing_texts())
    kept = [d for d in docs if not ngrams([d.question, d.answer]) & seen]
    if len(kept) < len(docs):
        log.info("held-out fidelity set: %d documents dropped for sharing a %d-word sequence with the "
                 "calibration text or the choosing prompts", len(docs) - len(kept), NGRAM_WORDS)
    return tuple(kept)


@functools.lru_cache(maxsize=1)
def choosing_documents() -> tuple[Document, ...]:
    """The choosing documents: the first ``CHOOSING_DOCS`` single-turn HealthBench records outside the
    heart subset that carry an ideal completion, skipping any that share a ``NGRAM_WORDS``-word
    sequence with the held-out documents or the calibration text. Bounds are chosen on these
    (``benchmarks/fidelity_bounds.py``); the gates then read the held-out set.

    >>> docs = choosing_documents()
    >>> len(docs), docs[0].doc_id.startswith("healthbench:")
    (24, True)
    >>> {d.doc_id for d in docs}.isdisjoint(d.doc_id for d in heldout_documents())
    True
    """
    from edgemed.data.healthbench import load_healthbench
    from edgemed.data.heart import heart_subset

    records = load_healthbench()
    heart = {r.prompt_id for r in heart_subset(records, HEART_RULE).records}
    seen = ngrams(calibration_texts() + [t for d in heldout_documents() for t in (d.question, d.answer)])
    out = []
    for doc in ideal_chats([r for r in records if r.prompt_id not in heart]):
        if not ngrams([doc.question, doc.answer]) & seen:
            out.append(doc)
        if len(out) == CHOOSING_DOCS:
            break
    return tuple(out)


def ideal_chats(records) -> list[Document]:
    """The single-turn HealthBench ``records`` that carry a physician-written ideal completion, as
    (question, ideal answer) documents, in order: what both the held-out and the choosing documents
    are made of (heart records for the one, the rest for the other)."""
    from edgemed.data.healthbench import load_ideal_completions

    ideal = load_ideal_completions()
    return [Document(f"healthbench:{r.prompt_id}", r.user_text, ideal[r.prompt_id]) for r in records
            if r.prompt_id in ideal and [m["role"] for m in r.prompt] == ["user"]]


def calibration_texts() -> list[str]:
    """The importance-matrix calibration text, as its questions and answers."""
    from edgemed.export.imatrix import heart_pairs

    return [t for pair in heart_pairs() for t in pair]


def choosing_texts() -> list[str]:
    """The choosing set: the parity prompts recipes and thresholds were picked on."""
    from edgemed.export.parity import HEART_PROMPTS

    return list(HEART_PROMPTS)


def ngrams(texts: list[str], n: int = NGRAM_WORDS) -> set[tuple[str, ...]]:
    """Every run of ``n`` lower-cased words in ``texts`` (punctuation ignored).

    >>> sorted(ngrams(["Chest pain, at rest!"], 3))
    [('chest', 'pain', 'at'), ('pain', 'at', 'rest')]
    """
    out: set[tuple[str, ...]] = set()
    for text in texts:
        words = re.findall(r"\w+", text.lower())
        out.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return out


def documents_digest(docs: tuple[Document, ...] | None = None) -> str:
    """sha256 of the documents (ids and texts): part of every artifact's inputs key."""
    h = hashlib.sha256()
    for d in heldout_documents() if docs is None else docs:
        h.update("\0".join(d).encode() + b"\n")
    return h.hexdigest()


def encode(tokenizer, doc: Document) -> tuple[list[int], int]:
    """``(ids, start)``: the chat-rendered document's token ids (at most ``MAX_DOC_TOKENS``) and the
    index of the answer's first token (where the prompt with its generation header ends)."""
    from edgemed.export.imatrix import chat_pair
    from edgemed.export.parity import common_prefix_len

    render = chat_pair(tokenizer)
    if render is None:  # no chat template: plain lines, with the tokenizer's own BOS
        prompt, full, special = f"{doc.question}\n", f"{doc.question}\n{doc.answer}", True
    else:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": doc.question}],
                                               tokenize=False, add_generation_prompt=True)
        full, special = render(doc.question, doc.answer), False
    ids = tokenizer(full, add_special_tokens=special).input_ids[:MAX_DOC_TOKENS]
    start = common_prefix_len(tokenizer(prompt, add_special_tokens=special).input_ids, ids)
    return ids, max(start, 1)


@dataclass
class Reference:
    """The fp32 model on the held-out documents: token ids and its distribution at every answer position."""

    doc_ids: list[str]
    ids: list[list[int]]
    starts: list[int]                 # first answer token of each document
    rows: fidelity.ReferenceRows | None = None  # n_positions rows, documents in order (probs: a memory map)

    @property
    def n_positions(self) -> int:
        return sum(len(i) - s for i, s in zip(self.ids, self.starts))

    @property
    def max_len(self) -> int:
        return max(map(len, self.ids))

    def spans(self):
        """Per document: (ids, first answer index, its slice of ``rows``)."""
        row = 0
        for ids, start in zip(self.ids, self.starts):
            n = len(ids) - start
            yield ids, start, slice(row, row + n)
            row += n


def torch_reference(model_dir: Path, out: Path, threads: int = 2, n_docs: int | None = None,
                    documents: tuple[Document, ...] | None = None) -> Reference:
    """Run the fp32 PyTorch model over the held-out documents (or ``documents``; the first
    ``n_docs``, or all); its probabilities go to ``out`` (.npy)."""
    import torch

    from edgemed.models import load_model

    torch.set_num_threads(threads)
    model, tok = load_model(str(model_dir), dtype="float32")
    docs = (heldout_documents() if documents is None else documents)[:n_docs]
    encoded = [encode(tok, d) for d in docs]
    ref = Reference([d.doc_id for d in docs], [e[0] for e in encoded], [e[1] for e in encoded])
    log.info("fidelity reference: PyTorch fp32 on %d %s documents, %d answer positions", len(docs),
             "held-out" if documents is None else "given", ref.n_positions)
    if ref.n_positions < MIN_POSITIONS and n_docs is None and documents is None:
        log.warning("held-out fidelity set has %d positions with this tokenizer (< %d): its intervals "
                    "are wider than intended", ref.n_positions, MIN_POSITIONS)
    out.parent.mkdir(parents=True, exist_ok=True)
    probs = None
    with torch.inference_mode():
        for ids, start, rows in ref.spans():
            logits = _answer_logits(model, torch.tensor([ids]), len(ids) - start + 1)
            p = torch.softmax(logits.float(), -1).half().numpy()
            if probs is None:
                probs = np.lib.format.open_memmap(out, mode="w+", dtype=np.float16,
                                                  shape=(ref.n_positions, p.shape[1]))
            probs[rows] = p
    probs.flush()
    ref.rows = fidelity.summarize_reference(probs, np.concatenate([ids[start:] for ids, start, _ in ref.spans()]))
    return ref


def _answer_logits(model, ids, keep: int):
    """Logits at the last ``keep`` positions but the final one: those that predict the answer. The LM
    head runs only there where the model takes ``logits_to_keep`` (transformers' own causal LMs)."""
    try:
        logits = model(ids, logits_to_keep=keep).logits[0]
    except TypeError:  # a model class without logits_to_keep
        logits = model(ids).logits[0]
    return logits[-keep:-1]


def position_figures(runtime, ref: Reference) -> fidelity.PositionFigures:
    """Per-position KLD, Δp and same-top of one runtime (``parity.Runtime``) against ``ref``, the
    documents joined in order (two builds measured against one ``ref`` pair position by position)."""
    parts = []
    for ids, start, rows in ref.spans():
        got = runtime.logits(ids)[start - 1:len(ids) - 1]
        parts.append(fidelity.compare(ref.rows.rows(rows), got, np.asarray(ids[start:])))
    return fidelity.join(parts)


def measure(runtime, ref: Reference) -> fidelity.Statistics:
    """llama.cpp's fidelity statistics of one runtime (``parity.Runtime``) against ``ref``."""
    return fidelity.summarize(position_figures(runtime, ref)).rounded()
