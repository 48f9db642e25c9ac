"""What a GGUF build really holds: the one-line note, where it is carried (manifest, Modelfile)."""

from __future__ import annotations

import json

import pytest

from edgemed.export.manifest import Artifact, Manifest, Source, load_manifest
from edgemed.export.modelfile import render_modelfile
from edgemed.export.quant_note import quant_note

# SmolLM2-135M (hidden 576, intermediate 1536) as llama.cpp quantises it (benchmarks/results/gguf_imatrix.json)
SMOL = {
    "q4_k_m": {"F32": 61, "Q4_K": 16, "Q5_0": 166, "Q6_K": 14, "Q8_0": 15},
    "q5_k_m": {"F32": 61, "Q5_1": 166, "Q5_K": 16, "Q6_K": 14, "Q8_0": 15},
    "q3_k_m": {"F32": 61, "Q4_0": 120, "Q4_K": 29, "Q5_0": 58, "Q5_1": 2, "Q5_K": 1, "Q8_0": 1},
    "q2_k": {"F32": 61, "Q3_K": 30, "Q4_0": 180, "Q8_0": 1},
    "q4_0": {"F32": 61, "Q4_0": 210, "Q8_0": 1},
    "q4_0+imatrix": {"F32": 61, "Q4_0": 207, "Q4_1": 3, "Q8_0": 1},
    "q8_0": {"F32": 61, "Q8_0": 211},
    "f16": {"F32": 61, "F16": 211},
}
WIDTHS = [576, 1536]


def test_the_issue_example_word_for_word():
    assert quant_note("q4_k_m", SMOL["q4_k_m"], WIDTHS) == (
        "q4_k_m holds Q4_K 16, Q5_0 166, Q6_K 14, Q8_0 15 of 211 quantised tensors: 576-column rows are "
        "not divisible by 256, llama.cpp fell back")


@pytest.mark.parametrize("quant", ["q4_k_m", "q5_k_m", "q3_k_m", "q2_k"])
def test_every_k_quant_of_the_default_model_says_what_it_holds(quant):
    note = quant_note(quant, SMOL[quant], WIDTHS)
    assert note.startswith(f"{quant} holds ") and " of 211 quantised tensors: 576-column rows" in note
    assert "F32" not in note and "1536" not in note  # norms are not quantised; 1536 = 6 x 256 fits


@pytest.mark.parametrize("quant", ["q4_0", "q4_0+imatrix", "q8_0", "f16"])
def test_faithful_builds_have_no_note(quant):
    assert quant_note(quant.split("+")[0], SMOL[quant], WIDTHS) is None


def test_k_quants_on_rows_that_fit_have_no_note():
    assert quant_note("q4_k_m", {"F32": 113, "Q4_K": 170, "Q6_K": 27}, [1024, 3072]) is None  # Qwen3-0.6B


def test_the_reason_follows_what_is_known():
    assert quant_note("q4_k_m", SMOL["q4_k_m"]).endswith(  # widths unknown (a manifest from before)
        ": k-quants need rows divisible by 256, llama.cpp fell back")
    assert quant_note("q4_k_m", {"Q4_K": 10, "Q8_0": 1}, [1024]).endswith(  # rows fit, yet other types
        ": llama.cpp chose other types for some tensors")
    assert quant_note("q4_k_m", SMOL["q4_k_m"], [576, 1000, 1536]).split(": ")[1].startswith(
        "576 and 1000-column rows")


def test_unknown_quants_and_empty_counts_have_no_note():
    assert quant_note("int4", {"int4": 60, "int8": 91}) is None  # an ONNX build: not llama.cpp's business
    assert quant_note("q4_k_m", {}) is None


def test_manifest_carries_the_note_and_fills_it_in_for_older_files(tmp_path):
    m = Manifest(tmp_path / "manifest.json", Source("default", "/m", "ab", "LlamaForCausalLM", 1), {})
    note = quant_note("q4_k_m", SMOL["q4_k_m"], WIDTHS)
    m.put(Artifact("gguf-q4_k_m", "gguf", "q4_k_m", "gguf-q4_k_m/m.gguf", 1, "ab", "passed",
                   tensor_types=SMOL["q4_k_m"], quant_note=note))
    m.put(Artifact("gguf-q8_0", "gguf", "q8_0", "gguf-q8_0/m.gguf", 1, "ab", "passed", tensor_types=SMOL["q8_0"]))
    m.write()
    raw = json.loads(m.path.read_text())
    assert raw["artifacts"][0]["quant_note"] == note and "quant_note" not in raw["artifacts"][1]
    assert load_manifest(tmp_path).artifact("gguf-q4_k_m").quant_note == note

    del raw["artifacts"][0]["quant_note"]  # written before builds carried their note
    m.path.write_text(json.dumps(raw))
    back = load_manifest(tmp_path)
    assert back.artifact("gguf-q4_k_m").quant_note.startswith("q4_k_m holds Q4_K 16, Q5_0 166")
    assert back.artifact("gguf-q8_0").quant_note is None


def test_modelfile_opens_with_the_note():
    note = quant_note("q4_k_m", SMOL["q4_k_m"], WIDTHS)
    lines = render_modelfile("m.gguf", None, ["<|im_end|>"], note=note).splitlines()
    assert lines[:2] == [f"# {note}", "FROM ./m.gguf"]
    assert render_modelfile("m.gguf", None, []).splitlines()[0] == "FROM ./m.gguf"


def test_export_summary_names_what_the_build_holds(tmp_path, capsys):
    from edgemed.export.cli import print_summary

    m = Manifest(tmp_path / "manifest.json", Source("default", "/m", "ab", "LlamaForCausalLM", 1), {})
    note = quant_note("q4_k_m", SMOL["q4_k_m"], WIDTHS)
    m.put(Artifact("gguf-q4_k_m", "gguf", "q4_k_m", "gguf-q4_k_m/m.gguf", 1, "ab", "passed",
                   tensor_types=SMOL["q4_k_m"], quant_note=note))
    m.put(Artifact("gguf-q8_0", "gguf", "q8_0", "gguf-q8_0/m.gguf", 1, "ab", "passed", tensor_types=SMOL["q8_0"]))
    print_summary(m)
    out = capsys.readouterr().out
    assert f"note: gguf-q4_k_m: {note}\n" in out and "note: gguf-q8_0" not in out
    print_summary(m, as_json=True)
    rows = json.loads(capsys.readouterr().out)["artifacts"]
    assert [r["quant_note"] for r in rows] == [note, None]
