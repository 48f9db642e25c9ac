"""Qwen3 after training: `edgemed export` of the merged model (GGUF f16/q8_0/q4_0, ONNX fp32, parity),
the LoRA adapter as a GGUF LoRA on top of the base (`--adapter`, parity against the merged model),
and `edgemed bench` latency rows for both, the adapter build loaded as base + adapter.

Parity is shortened (2 prompts, 32 teacher-forced and 16 greedy tokens, 2 held-out documents) to keep
this in the default suite; the tiny Qwen3's LM head is wide enough that its next-token choices are
peaked, so top-1 and KL still tell a faithful build from a broken one. The adapter export reads the
whole held-out set (over 4,096 positions), as a real export does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemed.cli import main
from edgemed.export.manifest import load_manifest

PARITY = ["--n-prompts", "2", "--tf-tokens", "32", "--greedy-tokens", "16", "--threads", "2"]
QUICK_HELDOUT = ["--heldout-docs", "2"]


def profile(tmp: Path) -> Path:
    """cpu-x86-64's runtime hints; the greedy bounds fitted to 16 greedy tokens instead of 32."""
    path = tmp / "test-qwen3.toml"
    path.write_text('builds = ["gguf:f16"]\n[runtime.gguf]\nn_threads = 1\nn_gpu_layers = 0\nn_ctx = 1024\n'
                    "[thresholds.fp32]\ngreedy_match_len_mean = 16\n[thresholds.f16]\ngreedy_match_len_mean = 12\n")
    return path


def bench_latency(manifest_dir: Path, out: Path, *artifacts: str) -> dict:
    """`edgemed bench`, latency only, one thread, in process (the tiny model takes milliseconds)."""
    argv = ["bench", "--manifest", f"qwen3={manifest_dir}", "--out", str(out), "--no-quality", "--no-base",
            "--in-process", "--threads", "1", "--n-prompt", "16", "--n-gen", "4", "--repetitions", "2"]
    for name in artifacts:
        argv += ["--artifact", name]
    assert main(argv) == 0
    return json.loads((out / "bench.json").read_text())


def gguf_tensor_names(path: Path) -> set[str]:
    from gguf import GGUFReader

    return {t.name for t in GGUFReader(path).tensors}


@pytest.fixture(scope="module")
def merged(qwen3_lora_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qwen3-merge") / "merge"
    assert main(["train", "merge", str(qwen3_lora_run / "adapter"), str(out), "--dtype", "float32"]) == 0
    return out


@pytest.fixture(scope="module")
def exported(merged, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("qwen3-export")
    out = tmp / "export"
    assert main(["export", "--model", str(merged), "--profile", str(profile(tmp)), "--out", str(out),
                 "--formats", "gguf:f16,gguf:q8_0,gguf:q4_0,onnx:fp32", *PARITY, *QUICK_HELDOUT]) == 0
    return out


def test_merged_qwen3_exports_and_passes_parity(exported):
    manifest = load_manifest(exported)
    assert manifest.source.architecture == "Qwen3ForCausalLM"
    assert [a.name for a in manifest.artifacts] == ["gguf-f16", "gguf-q8_0", "gguf-q4_0", "onnx-fp32"]
    fig = {a.quant: a.parity for a in manifest.artifacts}
    # On the quick held-out subset a faithful f16 (one miss in a few hundred positions) can straddle
    # its 0.99 bound: undecided, kept. None may fail.
    assert all(a.usable and a.parity.tokenizer_equal for a in manifest.artifacts), \
        [(a.name, a.status) for a in manifest.artifacts]
    assert fig["fp32"].top1_agreement == 1.0 and fig["f16"].top1_agreement >= 0.98
    assert fig["f16"].kl_mean < fig["q8_0"].kl_mean < fig["q4_0"].kl_mean  # the quants are really different
    f16 = manifest.artifact("gguf-f16").abspath
    names = gguf_tensor_names(f16)
    # Qwen3's per-head q/k norms made it into the file, and the untied LM head as its own tensor.
    assert {"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight", "output.weight"} <= names
    from edgemed.export.gguf import read_tokenizer_meta

    meta = read_tokenizer_meta(f16)
    assert meta["architecture"] == "qwen3" and "enable_thinking" in meta["chat_template"]
    modelfile = (exported / "gguf-q8_0" / "Modelfile").read_text()
    assert 'TEMPLATE """' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile


def test_tied_head_qwen3_converts_without_output_tensor(default_model_dir, tmp_path):
    from tests.tiny_qwen3 import build_tiny_qwen3

    model = build_tiny_qwen3(tmp_path / "tied", default_model_dir, tie_word_embeddings=True)
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--profile", str(profile(tmp_path)), "--out", str(out),
                 "--formats", "gguf:f16", *PARITY, *QUICK_HELDOUT]) == 0
    a = load_manifest(out).artifact("gguf-f16")
    assert a.usable and a.parity.top1_agreement >= 0.98, a.status  # undecided on the quick subset: kept
    assert "output.weight" not in gguf_tensor_names(a.abspath)  # llama.cpp reuses token_embd


def test_bench_latency_rows_for_qwen3_builds(exported, tmp_path):
    report = bench_latency(exported, tmp_path / "bench", "gguf-q8_0", "gguf-q4_0", "onnx-fp32")
    rows = {(r["target"], r["test"]): r for r in report["rows"]}
    assert set(rows) == {(f"qwen3/{n}", t) for n in ("gguf-q8_0", "gguf-q4_0", "onnx-fp32") for t in ("pp16", "tg4")}
    assert all(r["avg_ts"] > 0 for r in rows.values())


# --- the adapter as an edge artifact ---------------------------------------------------------------

@pytest.fixture(scope="module")
def adapter_export(qwen3_lora_run, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("qwen3-adapter")
    out = tmp / "export"
    # No --model: the base the adapter was trained on (edgemed_adapter.json) is used.
    # q8_0: issue 27's faithful q8_0 LoRA build failed when judged by agreement with the merged q8_0
    assert main(["export", "--adapter", str(qwen3_lora_run / "adapter"), "--profile", str(profile(tmp)),
                 "--out", str(out), "--formats", "gguf:q8_0", *PARITY]) == 0
    return out


def test_adapter_exports_as_gguf_lora_with_modelfile(adapter_export, tiny_qwen3_dir):
    manifest = load_manifest(adapter_export)
    assert manifest.source.path == str(tiny_qwen3_dir)
    assert [a.name for a in manifest.artifacts] == ["gguf-q8_0", "gguf-lora-q8_0"]
    a = manifest.artifact("gguf-lora-q8_0")
    assert a.format == "gguf-lora" and a.status == "passed" and a.parity.tokenizer_equal, (a.parity, a.lora)
    # against the merged model in PyTorch, over the whole held-out set …
    assert a.parity.heldout.n_positions >= 4096 and a.parity.heldout.top1_ci_low >= 0.95
    # … and like with like: as faithful to it as the merged q8_0 GGUF is, never by agreement with it
    assert a.lora["merged_gguf"]["verdict"] == "met" and a.lora["merged_gguf"]["top1_ci_low"] >= 0.95
    folder = a.abspath
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile", "adapter.gguf", "base.gguf"]
    assert (folder / "base.gguf").read_bytes() == manifest.artifact("gguf-q8_0").abspath.read_bytes()
    lines = (folder / "Modelfile").read_text().splitlines()
    assert lines[:2] == ["FROM ./base.gguf", "ADAPTER ./adapter.gguf"]
    from gguf import GGUFReader

    reader = GGUFReader(folder / "adapter.gguf")
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert any(t.name.endswith(".lora_a") for t in reader.tensors)


def test_adapter_changes_what_the_base_computes(adapter_export):
    from edgemed.export.lora import lora_files
    from edgemed.export.parity import LlamaCppRuntime

    base, adapter = lora_files(load_manifest(adapter_export).artifact("gguf-lora-q8_0").abspath)
    ids = list(range(300, 340))
    plain, with_adapter = LlamaCppRuntime(base, 1, 64), LlamaCppRuntime(base, 1, 64, lora_path=adapter)
    try:
        assert abs(plain.logits(ids) - with_adapter.logits(ids)).max() > 1e-3
    finally:
        plain.close(), with_adapter.close()


def test_bench_runs_base_plus_adapter_as_one_build(adapter_export, tmp_path):
    report = bench_latency(adapter_export, tmp_path / "bench", "gguf-lora-q8_0")
    targets = {t["label"]: t for t in report["targets"]}
    assert targets["qwen3/gguf-lora-q8_0"]["backend"] == "llama.cpp"
    rows = [r for r in report["rows"] if r["target"] == "qwen3/gguf-lora-q8_0"]
    assert {r["test"] for r in rows} == {"pp16", "tg4"} and all(r["avg_ts"] > 0 for r in rows)


def test_export_of_an_adapter_folder_hints_at_adapter(qwen3_lora_run, tmp_path, capsys):
    adapter = qwen3_lora_run / "adapter"
    assert main(["export", "--model", str(adapter), "--out", str(tmp_path / "x"), "--formats", "gguf:f16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"edgemed export --adapter {adapter} --model BASE" in err[0]


def test_gguf_lora_without_adapter_is_refused(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "x"), "--formats", "gguf-lora:f16"]) == 2
    assert "need --adapter" in capsys.readouterr().err
