"""The held-out fidelity set is what it claims: disjoint from the importance-matrix calibration text
and from the choosing set, prompts and documents (no shared document, id or 13-word sequence), big enough, and measured
on the answer tokens of each chat."""

from __future__ import annotations

import pytest

from edgemed.data.rar import load_rar_medicine
from edgemed.export import heldout, imatrix
from edgemed.export.heldout import NGRAM_WORDS, heldout_documents, ngrams
from edgemed.export.parity import HEART_PROMPTS


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


def test_held_out_calibration_and_choosing_sets_are_disjoint():
    held = heldout_documents()
    calibration = [r for r in load_rar_medicine("edgemed-heart")
                   if r.reference_answer and r.split != imatrix.HELD_OUT_SPLIT]
    assert imatrix.heart_pairs() == [(r.user_text, r.reference_answer) for r in calibration]

    # no shared document or id: held-out rubric records are the test split, calibration the rest
    ids = [d.doc_id for d in held]
    assert len(set(ids)) == len(ids)
    held_rubric_ids = {i.split(":", 1)[1] for i in ids if i.startswith("edgemed-heart:")}
    assert held_rubric_ids and held_rubric_ids.isdisjoint(r.prompt_id for r in calibration)
    assert {r.split for r in load_rar_medicine("edgemed-heart") if r.prompt_id in held_rubric_ids} == {"test"}

    # no shared text, whole or as a run of 13 words, between any two of the three sets
    calibration_text = imatrix.calibration_text("heart")  # what llama-imatrix reads, pairs joined
    held_texts = [t for d in held for t in (d.question, d.answer)]
    choosing_docs = heldout.choosing_documents()
    assert {d.doc_id for d in choosing_docs}.isdisjoint(ids) and len(choosing_docs) == heldout.CHOOSING_DOCS
    choosing = list(HEART_PROMPTS) + [t for d in choosing_docs for t in (d.question, d.answer)]
    sets = {"held-out": held_texts, "calibration": [calibration_text], "choosing": choosing}
    for a, b in (("held-out", "calibration"), ("held-out", "choosing"), ("calibration", "choosing")):
        shared = ngrams(sets[a]) & ngrams(sets[b])
        assert not shared, (a, b, NGRAM_WORDS, sorted(shared)[:3])
    assert not any(t in calibration_text for t in held_texts + choosing)
    assert not any(p in t for p in choosing for t in held_texts)


def test_held_out_set_mixes_rubric_answers_and_healthbench_ideal_completions():
    held = heldout_documents()
    sources = [d.doc_id.split(":")[0] for d in held]
    assert sources == sorted(sources, key=["edgemed-heart", "healthbench"].index)
    assert sources.count("edgemed-heart") == 7 and sources.count("healthbench") >= 10
    assert all(d.question.strip() and d.answer.strip() for d in held)
    assert heldout.documents_digest() == heldout.documents_digest(held)


def test_at_least_4096_answer_positions_in_the_chat_template(tokenizer):
    held = heldout_documents()
    encoded = [heldout.encode(tokenizer, d) for d in held]
    assert all(len(ids) <= heldout.MAX_DOC_TOKENS for ids, _ in encoded)
    assert sum(len(ids) - start for ids, start in encoded) >= heldout.MIN_POSITIONS
    ids, start = encoded[0]
    # the scored tokens are the assistant's answer: the prompt (with its generation header) ends first
    prompt = tokenizer.decode(ids[:start])
    assert prompt.endswith("<|im_start|>assistant\n") and held[0].question in prompt
    assert tokenizer.decode(ids[start:]).startswith(held[0].answer[:40])
