"""The slim device path end to end (issue #15, item 4): pack on the full side, run `edgemed bench device`
in a fresh venv holding only ``edgemed[device]`` (no torch), grade back on the full side.

The slim venv is made once per dependency list (tests/slim_venv.py: keyed on pyproject's base and
``device`` dependencies, the Python and the cached llama-cpp-python wheel) under
$EDGEMED_HOME/test-fixtures: about a minute the first time (pip resolves the device extra from PyPI
or its cache), then only this tree's edgemed wheel is reinstalled (seconds).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from edgemed.cli import main
from edgemed.io import cache_dir, read_jsonl_tolerant
from tests import slim_venv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_SUITE = """\
references: [default]
quality: {n_prompts: 2, max_new_tokens: 8}
latency: {n_prompt: 16, n_gen: 4, repetitions: 2, warmup: 1, threads: 1, bandwidth_mib: 32, bandwidth_repeats: 2}
judge: {backend: proxy}
"""


@pytest.fixture(scope="module")
def slim_python(tmp_path_factory):
    if slim_venv.llama_wheel() is None:
        pytest.fail("no cached portable llama-cpp-python wheel: `make install` builds it "
                    "(scripts/install_llama_cpp.sh); the slim path must be proven, not skipped")
    return slim_venv.cached(cache_dir("test-fixtures"), tmp_path_factory.mktemp("wheel"))


def slim_env(home) -> dict[str, str]:
    """The device's environment: its own edgemed home, no source tree or full venv on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(EDGEMED_HOME=str(home), HF_HUB_OFFLINE="1",
               PATH=os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p))
    return env


def test_slim_venv_has_no_training_stack(slim_python):
    proc = subprocess.run([str(slim_python), "-c", "import torch"], capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr
    assert slim_venv.importable(slim_python) == []
    assert slim_venv.importable(slim_python, ("llama_cpp", "onnxruntime", "tokenizers", "edgemed")) == [
        "llama_cpp", "onnxruntime", "tokenizers", "edgemed"]


def test_pack_device_in_slim_venv_grade(slim_python, export_manifest, tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    bundle, results, bench = tmp_path / "bundle", tmp_path / "results-slim", tmp_path / "bench"

    # full side: the shipped GGUF (the suite's reference) and the ONNX export
    assert main(["bench", "pack", "--manifest", f"export={export_manifest}", "--suite", str(suite),
                 "--out", str(bundle)]) == 0
    assert "copy it to the device" in capsys.readouterr().out
    packed = json.loads((bundle / "bundle.json").read_text())
    assert [(b["label"], b["format"]) for b in packed["builds"]] == [("export/onnx-fp32", "onnx"),
                                                                    ("reference/gguf-q4_1-shipped", "gguf")]

    # the device: the slim venv, from another folder, with its own home
    away = tmp_path / "device"
    away.mkdir()
    edgemed = slim_python.parent / "edgemed"
    proc = subprocess.run([str(edgemed), "bench", "device", str(bundle), "--out", str(results), "--name", "slim"],
                          cwd=away, env=slim_env(away / "home"), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((results / "device.json").read_text())
    assert info["complete"] and info["name"] == "slim" and info["bundle_id"] == packed["bundle_id"]
    m = info["machine"]
    assert m["cpu_info"] and m["cores_physical"] >= 1 and m["memory_bytes"] > 0 and m["os"] and "accelerator" in m
    assert {label: (b["answers"], b["latency_tests"]) for label, b in info["builds"].items()} == {
        "export/onnx-fp32": (2, ["pp16", "tg4"]), "reference/gguf-q4_1-shipped": (2, ["pp16", "tg4"])}
    assert all(g["response"] for g in read_jsonl_tolerant(results / "generations.jsonl"))

    # host side: grade with the bundle's judge (the proxy), the usual reports
    assert main(["bench", "grade", str(results), "--out", str(bench)]) == 0
    report = json.loads((bench / "bench.json").read_text())
    assert list(report["devices"]) == ["slim"] and report["bundle"]["bundle_id"] == packed["bundle_id"]
    by_label = {t["label"]: t for t in report["targets"]}
    assert set(by_label) == {"slim/export/onnx-fp32", "slim/reference/gguf-q4_1-shipped"}
    for t in by_label.values():
        assert t["quality"]["n_graded"] == 2 and t["latency"]["tg"]["avg_ts"] > 0
    assert {r["target"] for r in report["rows"]} == set(by_label)
    md = (bench / "report.md").read_text()
    assert "device **slim**" in md and "proxy judge" in md
    for name in ("quality_vs_speed.png", "latency.png"):
        assert (bench / name).read_bytes()[:8] == PNG_MAGIC
