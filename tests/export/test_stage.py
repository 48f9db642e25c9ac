"""End to end on the default model (SmolLM2-135M): each format builds, loads in its runtime,
passes parity at its thresholds, the manifest matches the files, and a re-run rebuilds nothing.

Built once per module (one f32 conversion for all GGUF quants, one fp32 ONNX export for int8/int4)
with the full parity setting (8 prompts × 64 teacher-forced tokens, 32 greedy) and the default
thresholds: a shorter setting is too noisy for the q8_0 bound (top-1 over the first 16 tokens of
the 8 prompts is 0.93 while over 64 it is 0.96).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemed.export import stage
from edgemed.export.config import DEFAULT_THRESHOLDS, ExportConfig
from edgemed.export.manifest import QUANTS, artifact_bytes, artifact_digest, load_manifest

# The builds the acceptance criteria name run in the default suite; the other quants (slower to
# check, further from fp32 on this 576-wide model) run in the slow suite.
CORE_BUILDS = ["gguf:f16", "gguf:q8_0", "gguf:q4_k_m", "onnx:fp32", "onnx:int8"]
# gguf-lora builds need an adapter (--adapter): tests/export/test_qwen3_export.py.
ALL_BUILDS = [f"{fmt}:{q}" for fmt, quants in QUANTS.items() for q in quants if fmt != "gguf-lora"]


def build(root: Path, builds: list[str]):
    profile = root / "test-device.toml"
    lines = ['name = "test-cpu"', f"builds = {builds!r}".replace("'", '"'),
             "[runtime.gguf]", "n_threads = 2", "n_gpu_layers = 0", "[runtime.onnx]",
             'execution_provider = "CPUExecutionProvider"']
    profile.write_text("\n".join(lines) + "\n")
    config = ExportConfig(model="default", out=str(root / "out"), profile=str(profile),
                          heldout_docs=4)  # fewer held-out fidelity documents: this fixture builds 5 formats
    return config, stage.run(config)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return build(tmp_path_factory.mktemp("export"), CORE_BUILDS)


def assert_all_pass(manifest, builds):
    assert [a.name for a in manifest.artifacts] == [b.replace(":", "-") for b in builds]
    for a in manifest.artifacts:
        # 4 held-out documents (about 1,000 positions) cannot always decide a bound a faithful build
        # sits near (q8_0 ≈ 0.955 against 0.94): undecided is kept; no build may fail
        assert a.usable, (a.name, a.status, a.parity.gates)
        assert a.parity.passed == (a.status == "passed")
        assert not [g for g in a.parity.gates.values() if g["verdict"] == "missed"], a.parity.gates
        assert a.parity.tokenizer_equal and a.parity.n_prompts == 8
        assert a.parity.thresholds == DEFAULT_THRESHOLDS[a.quant]


def test_core_formats_build_and_pass(export):
    _, manifest = export
    assert_all_pass(manifest, CORE_BUILDS)
    fp = {a.quant: a.parity for a in manifest.artifacts}
    # fp32 ONNX and f16 GGUF are near-exact; the 4-bit builds are measurably further away.
    assert fp["fp32"].top1_agreement >= 0.99 and fp["fp32"].kl_mean < 1e-3
    assert fp["q8_0"].top1_agreement >= 0.95  # the acceptance bound, stated here too
    assert fp["f16"].kl_mean < fp["q8_0"].kl_mean < fp["q4_k_m"].kl_mean


@pytest.mark.slow
def test_every_format_builds_and_passes(tmp_path):
    _, manifest = build(tmp_path, ALL_BUILDS)
    assert_all_pass(manifest, ALL_BUILDS)
    fp = {a.quant: a.parity for a in manifest.artifacts}
    assert fp["q8_0"].kl_mean < fp["q4_k_m"].kl_mean and fp["q8_0"].kl_mean < fp["q4_0"].kl_mean
    assert_onnx_generates(manifest.artifact("onnx-int4").abspath)


def test_manifest_matches_files(export):
    config, manifest = export
    on_disk = load_manifest(Path(config.out))
    assert on_disk.to_dict()["artifacts"] == manifest.to_dict()["artifacts"]
    assert on_disk.source.architecture == "LlamaForCausalLM" and on_disk.source.n_params > 100_000_000
    assert {"llama_cpp_python", "onnxruntime", "optimum", "gguf"} <= set(on_disk.tools)
    for a in on_disk.artifacts:
        assert a.abspath.exists(), a.path
        assert artifact_bytes(a.abspath) == a.bytes and artifact_digest(a.abspath) == a.sha256
        assert a.runtime, a.name
    assert not (Path(config.out) / stage.BUILD_DIR).exists()
    assert sorted(p.name for p in Path(config.out).iterdir()) == sorted(
        [a.name for a in on_disk.artifacts] + ["manifest.json"])


def test_gguf_records_tensor_types_and_modelfile(export):
    config, manifest = export
    q4 = manifest.artifact("gguf-q4_k_m")
    # hidden 576 is not a multiple of 256: llama.cpp falls back for some rows, and we record it.
    assert q4.tensor_types.get("Q4_K", 0) > 0 and len(q4.tensor_types) > 2
    assert manifest.artifact("gguf-q8_0").tensor_types.keys() == {"F32", "Q8_0"}
    # ... and says so in one line, in the manifest and on top of the Modelfile
    assert q4.quant_note.startswith("q4_k_m holds Q4_K ") and "576-column rows are not divisible by 256" in q4.quant_note
    assert manifest.artifact("gguf-q8_0").quant_note is None
    modelfile = (Path(config.out) / q4.modelfile).read_text()
    assert modelfile.splitlines()[:2] == [f"# {q4.quant_note}", f"FROM ./{q4.abspath.name}"]
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "<|im_start|>assistant" in modelfile


def test_gguf_chat_uses_template_and_stops_at_eos(export):
    from llama_cpp import Llama

    _, manifest = export
    llm = Llama(model_path=str(manifest.artifact("gguf-q8_0").abspath), n_ctx=1024, n_threads=2,
                verbose=False)
    try:
        assert llm.metadata["tokenizer.ggml.eos_token_id"] == "2"
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": "What are common symptoms of a heart attack?"}],
            max_tokens=300, temperature=0.0, repeat_penalty=1.1)  # llama.cpp's CLI default;
        # without it greedy decoding of a 135M model can loop past 400 tokens
    finally:
        llm.close()
    choice = out["choices"][0]
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "stop", text
    assert len(text.split()) > 5 and "<|im_" not in text and "\nuser" not in text


def assert_onnx_generates(folder: Path) -> None:
    from optimum.onnxruntime import ORTModelForCausalLM
    from transformers import AutoTokenizer

    model = ORTModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok.apply_chat_template([{"role": "user", "content": "Is 150/95 high?"}],
                                  add_generation_prompt=True, return_tensors="pt")
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4 and model.use_cache


def test_onnx_loads_with_optimum(export):
    _, manifest = export
    for name in ("onnx-fp32", "onnx-int8"):
        assert_onnx_generates(manifest.artifact(name).abspath)


def test_rerun_skips_everything(export):
    config, manifest = export
    before = {a.name: (a.abspath.stat().st_mtime_ns, a.sha256) for a in manifest.artifacts}
    again = stage.run(config)
    assert {a.name: (a.abspath.stat().st_mtime_ns, a.sha256) for a in again.artifacts} == before
    assert [a.build_seconds for a in again.artifacts] == [a.build_seconds for a in manifest.artifacts]
