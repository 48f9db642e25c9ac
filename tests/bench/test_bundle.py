"""Bench bundles on the full side (issue #15, item 3): a tampered or truncated build is refused in one
line naming the file, a killed device run resumes, results of another bundle are refused, not mixed.

The bundles here hold only the shipped Q4_1 GGUF (98 MB) so that copies stay cheap; the slim venv and
the ONNX build are covered by test_device.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import edgemed.bench.device.run as device_stage
from edgemed.cli import main
from edgemed.io import read_jsonl_tolerant

GGUF = "reference/gguf-q4_1-shipped"


def suite_file(path, n_prompts: int, max_new_tokens: int = 8):
    path.write_text(f"references: [default]\nquality: {{n_prompts: {n_prompts}, max_new_tokens: {max_new_tokens}}}\n"
                    "latency: {n_prompt: 16, n_gen: 4, repetitions: 1, warmup: 0, threads: 1, bandwidth_mib: 16, "
                    "bandwidth_repeats: 1}\njudge: {backend: proxy}\n")
    return path


def pack(tmp_path, name: str, n_prompts: int, max_new_tokens: int = 8):
    out = tmp_path / name
    assert main(["bench", "pack", "--suite", str(suite_file(tmp_path / f"{name}.yaml", n_prompts, max_new_tokens)),
                 "--out", str(out)]) == 0
    return out


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return pack(tmp_path_factory.mktemp("bundle"), "bundle", n_prompts=4, max_new_tokens=48)


def test_a_truncated_or_tampered_build_is_refused_naming_the_file(bundle, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (gguf,) = (copy / "builds" / "reference__gguf-q4_1-shipped").glob("*.gguf")
    data = gguf.read_bytes()
    gguf.write_bytes(data[: len(data) // 2])  # a copy cut short
    results = tmp_path / "results"
    assert main(["bench", "device", str(copy), "--out", str(results)]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: {gguf}: sha256 mismatch: the file has {len(data) // 2:,} bytes, "
                           f"bundle.json expects {len(data):,}") and "truncated" in line
    assert not results.exists()  # nothing is run, nothing is written

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # same size, one byte changed
    gguf.write_bytes(bytes(flipped))
    assert main(["bench", "device", str(copy), "--out", str(results)]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: {gguf}: sha256 mismatch: the file hashes to ") and "damaged" in line
    assert not results.exists()


def test_a_runtime_the_device_lacks_is_named_before_any_work(bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(device_stage.RUNTIME_MODULES, "gguf", ("no_such_runtime",))
    assert main(["bench", "device", str(bundle), "--out", str(tmp_path / "r")]) == 4
    (line,) = error_lines(capsys)
    assert f"{GGUF} needs no_such_runtime" in line and "--build" in line and "pip install 'edgemed[device]'" in line
    assert main(["bench", "device", str(bundle), "--out", str(tmp_path / "r"), "--build", "nope/x"]) == 2
    assert "not in the bundle: ['nope/x']" in error_lines(capsys)[0]


def test_a_killed_device_run_resumes_and_is_graded_only_when_finished(bundle, tmp_path, capsys):
    results, bench = tmp_path / "results", tmp_path / "bench"
    proc = subprocess.Popen([sys.executable, "-m", "edgemed.cli", "bench", "device", str(bundle), "--out",
                             str(results), "--name", "box"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gens = results / "generations.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and len(read_jsonl_tolerant(gens)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker too
    proc.wait()
    done = len(read_jsonl_tolerant(gens))
    assert 2 <= done < 4, "the kill should land mid-generation"
    assert json.loads((results / "device.json").read_text())["complete"] is False

    # an unfinished run is not graded
    assert main(["bench", "grade", str(results), "--out", str(bench)]) == 2
    (line,) = error_lines(capsys)
    assert "the device run has not finished" in line and GGUF in line

    before = gens.read_bytes()
    with open(gens, "ab") as f:  # what a kill during a write leaves behind
        f.write(b'{"target": "reference/gguf-q4_1-shipped", "key": "torn", "prom')
    assert main(["bench", "device", str(bundle), "--out", str(results)]) == 0  # keeps its name, box
    assert gens.read_bytes().startswith(before)  # finished answers kept byte for byte
    info = json.loads((results / "device.json").read_text())
    assert info["complete"] and info["builds"][GGUF]["answers"] == 4
    assert len(read_jsonl_tolerant(gens)) == 4

    assert main(["bench", "grade", str(results), "--out", str(bench)]) == 0
    report = json.loads((bench / "bench.json").read_text())
    (t,) = report["targets"]
    assert t["label"] == f"box/{GGUF}" and t["quality"]["n_graded"] == 4 and t["latency"]["pp"]["avg_ts"] > 0


def test_results_of_another_bundle_are_refused_not_mixed(bundle, tmp_path, capsys):
    small = pack(tmp_path, "small", n_prompts=1)
    capsys.readouterr()
    # packing the same bundle again keeps it; --json prints its bundle.json
    assert main(["bench", "pack", "--suite", str(tmp_path / "small.yaml"), "--out", str(small), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((small / "bundle.json").read_text())
    assert printed["bundle_id"] == written["bundle_id"] and printed["builds"] == written["builds"]
    results = tmp_path / "results"
    assert main(["bench", "device", str(small), "--out", str(results), "--name", "a"]) == 0
    logs = {p.name: p.read_bytes() for p in results.glob("*.jsonl")}
    capsys.readouterr()

    # the same results folder with another bundle (other prompts): refused before any work
    assert main(["bench", "device", str(bundle), "--out", str(results)]) == 2
    (line,) = error_lines(capsys)
    small_id = json.loads((small / "bundle.json").read_text())["bundle_id"]
    assert line.startswith(f"error: {results}: holds results of another bundle ({small_id}") and "new --out" in line
    assert {p.name: p.read_bytes() for p in results.glob("*.jsonl")} == logs

    # grading two devices' results of different bundles into one report: refused
    other = tmp_path / "other"
    shutil.copytree(results, other)
    for name in ("bundle.json", "device.json"):
        data = json.loads((other / name).read_text())
        data.update(bundle_id="0123456789abcdef", name="b")
        (other / name).write_text(json.dumps(data))
    assert main(["bench", "grade", str(results), str(other), "--out", str(tmp_path / "bench")]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: {other}: holds results of bundle 0123456789abcdef")

    # packing into a folder that holds another bundle: refused
    assert main(["bench", "pack", "--suite", str(tmp_path / "small.yaml"), "--n-prompts", "2",
                 "--out", str(small)]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: {small}: holds another bundle ({small_id}")
