"""Device profiles and build specs: every shipped profile loads, bad input names the field."""

from __future__ import annotations

import pytest

from edgemed.errors import ConfigError
from edgemed.export.config import DEVICES_DIR, ExportConfig, load_device_profile, parse_builds


@pytest.mark.parametrize("name", ["cpu-x86-64", "cpu-arm64", "cuda-consumer-8gb"])
def test_shipped_profiles_load(name):
    t = load_device_profile(DEVICES_DIR / f"{name}.toml")
    assert t.name == name and t.builds and "gguf" in t.runtime
    for b in t.builds:
        assert set(t.thresholds_for(b.quant)) == {"top1_agreement", "kl_mean", "greedy_match_len_mean"}


def test_formats_override_profile():
    cfg = ExportConfig(formats="gguf:q4_k_m,onnx:int4")
    assert [b.name for b in cfg.build_list()] == ["gguf-q4_k_m", "onnx-int4"]


@pytest.mark.parametrize("text, message", [
    ("gguf:q3_k_s", "unknown gguf quant 'q3_k_s'"),
    ("onnx:q8_0", "unknown onnx quant 'q8_0'"),
    ("tflite:int8", "unknown format 'tflite'"),
    ("q4_k_m", "must be FORMAT:QUANT"),
])
def test_unknown_builds(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_builds(text)


@pytest.mark.parametrize("body, field", [
    ('builds = ["gguf:q9"]', "builds[0]"),
    ('builds = ["gguf:q8_0"]\n[thresholds.q8_0]\ntop1 = 0.9', "thresholds.q8_0.top1"),
    ('builds = ["gguf:q8_0"]\nonnx_int8_preset = "sse"', "onnx_int8_preset"),
    ('builds = ["gguf:q8_0"]\nbogus = 1', "bogus"),
    ('builds = "gguf:q8_0"', "builds"),
    ('name = "pi"', "builds"),
    ('builds = ["gguf:q8_0"]\n[runtime.tflite]\nthreads = 1', "runtime.tflite"),
])
def test_bad_profile_names_file_and_field(tmp_path, body, field):
    path = tmp_path / "dev.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_device_profile(path)
    assert str(path) in str(e.value) and f": {field}:" in str(e.value)


def test_unknown_profile_lists_known():
    with pytest.raises(ConfigError, match="cpu-arm64"):
        load_device_profile("toaster")


def test_threshold_override(tmp_path):
    path = tmp_path / "strict.toml"
    path.write_text('builds = ["gguf:q8_0"]\n[thresholds.q8_0]\ntop1_agreement = 0.99\n')
    t = load_device_profile(path)
    assert t.thresholds_for("q8_0")["top1_agreement"] == 0.99
    from edgemed.export.config import DEFAULT_THRESHOLDS

    assert t.thresholds_for("q8_0")["kl_mean"] == DEFAULT_THRESHOLDS["q8_0"]["kl_mean"]  # the rest kept


def test_default_top1_and_kl_bounds_are_the_ones_chosen_on_the_choosing_documents():
    # benchmarks/fidelity_bounds.py chose them (never reading a held-out figure); the table copies them
    import json
    from pathlib import Path

    from edgemed.export.config import DEFAULT_THRESHOLDS

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "fidelity_bounds.json"
    chosen = json.loads(results.read_text())["bounds"]
    assert set(chosen) == set(DEFAULT_THRESHOLDS)
    for quant, bounds in chosen.items():
        for key in ("top1_agreement", "kl_mean"):
            assert DEFAULT_THRESHOLDS[quant][key] == bounds[key], (quant, key)
