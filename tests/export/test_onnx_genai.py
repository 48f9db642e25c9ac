"""onnx-genai builds: onnxruntime-genai's model builder + per-layer MatMulNBits, with the same parity
checks and manifest entries as every other build, and a bench runner on the genai runtime.

The tiny random Llama runs in the default suite (file handling, parity wiring, the runner); the
default model (SmolLM2-135M) in the slow suite, where the figures mean something.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemed.bench.runners import open_runner
from edgemed.bench.targets import Target
from edgemed.errors import ModelError
from edgemed.export import onnx_genai, stage
from edgemed.export.config import DEFAULT_THRESHOLDS, ExportConfig
from edgemed.export.manifest import load_manifest

BUILDS = "onnx-genai:fp32,onnx-genai:int4"


@pytest.fixture(scope="module")
def tiny_export(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("genai") / "out"
    config = ExportConfig(model=str(tiny_model_dir), out=str(out), formats=BUILDS, n_prompts=2,
                          tf_tokens=8, greedy_tokens=4, allow_degraded=True)
    return config, stage.run(config)


def test_builds_are_recorded_like_every_other_build(tiny_export):
    _, manifest = tiny_export
    assert [a.name for a in manifest.artifacts] == ["onnx-genai-fp32", "onnx-genai-int4"]
    reread = load_manifest(manifest.path)
    for a in reread.artifacts:
        folder = a.abspath
        assert {"model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json"} <= {
            p.name for p in folder.iterdir()}
        assert a.parity is not None and a.parity.n_prompts == 2 and a.parity.tokenizer_equal
        assert a.parity.thresholds == DEFAULT_THRESHOLDS[a.quant]
        assert a.inputs_key and a.bytes > 0 and a.build_seconds > 0
    fp32, int4 = reread.artifacts
    # The builder's fp32 graph is the PyTorch model: same argmax everywhere, KL ~ 0.
    # (Its status says "failed" only because 4 greedy tokens cannot reach the fp32 bound of 24.)
    assert fp32.parity.top1_agreement >= 0.99 and fp32.parity.kl_mean < 1e-3
    assert fp32.parity.greedy_match_len_mean == 4.0
    # The int4 recipe: MLP up projections at 4 bits; attention, gate/down projections, LM head at 8.
    assert int4.tensor_types == {"int4": 2, "int8": 9} == onnx_genai.matmul_types(int4.abspath)
    assert int4.bytes < fp32.bytes
    # Its blocks are asymmetric: a zero point each, 4-bit and 8-bit alike.
    import onnx

    graph = onnx.load(str(int4.abspath / onnx_genai.ONNX_FILE), load_external_data=False).graph
    zero_points = {}
    for n in graph.node:
        if n.op_type == "MatMulNBits":
            bits = next(a.i for a in n.attribute if a.name == "bits")
            zero_points.setdefault(bits, set()).add(len(n.input) > 3 and bool(n.input[3]))
    assert zero_points == {4: {True}, 8: {True}}, zero_points


def test_rerun_skips_and_recipe_change_rebuilds(tiny_export, monkeypatch):
    config, manifest = tiny_export
    before = {a.name: a.sha256 for a in manifest.artifacts}
    again = stage.run(config)
    assert {a.name: a.sha256 for a in again.artifacts} == before
    key = again.artifact("onnx-genai-int4").inputs_key
    monkeypatch.setitem(onnx_genai.RECIPES, "int4", {**onnx_genai.RECIPES["int4"], "keep": {}})
    work_key = stage.inputs_key(again.source, stage.BuildSpec("onnx-genai", "int4"), stage.tool_versions(),
                                config, config.device_profile())
    assert work_key != key  # a changed recipe is a changed build


def test_runner_times_and_answers_on_the_genai_runtime(tiny_export):
    _, manifest = tiny_export
    a = manifest.artifact("onnx-genai-int4")
    target = Target("t/" + a.name, "t", a.name, a.format, a.quant, str(a.abspath), a.bytes, a.bytes,
                    a.sha256, 1)
    with open_runner(target, threads=2, device="cpu") as runner:
        assert runner.backend == "onnxruntime-genai" == target.backend
        assert runner.info["runtime_version"] == f"onnxruntime-genai {onnx_genai.GENAI_VERSION}"
        assert runner.prefill(16) > 0 and runner.decode(8) > 0
        answer = runner.chat([{"role": "user", "content": "Is 150/95 high blood pressure?"}], 6)
        assert 0 < answer.n_gen <= 6 and answer.n_prompt > 5


def test_unsupported_architecture_fails_before_building(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for f in tiny_model_dir.iterdir():
        (model / f.name).symlink_to(f)
    (model / "config.json").unlink()
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ModelError, match="not supported by onnxruntime-genai's model builder"):
        stage.run(ExportConfig(model=str(model), out=str(tmp_path / "out"), formats="onnx-genai:int4"))
    assert not (tmp_path / "out" / "onnx-genai-int4").exists()


@pytest.mark.slow
def test_default_model_int4_is_fast_and_faithful(tmp_path):
    """SmolLM2-135M: the mixed int4 build keeps top-1 >= 0.85 with fp32 on held-out heart text, at the
    lower end of its 95 % interval (0.862 in genai_frontier.json)."""
    manifest = stage.run(ExportConfig(model="default", out=str(tmp_path / "out"), formats="onnx-genai:int4"))
    int4 = manifest.artifact("onnx-genai-int4")
    assert int4.status == "passed" and int4.parity.tokenizer_equal
    assert int4.parity.heldout.top1_ci_low >= 0.85, int4.parity.heldout
