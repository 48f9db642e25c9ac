"""`edgemed run` end to end on the default model: outputs, skipping, --from, kill -9 and resume."""

import json
from pathlib import Path

from tests.pipeline.conftest import TINY, run_edgemed, run_until


def stage_times(root: Path) -> dict[str, str]:
    state = json.loads((root / "pipeline.json").read_text())
    return {s: rec["finished"] for s, rec in state["stages"].items()}


def no_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_tiny_pipeline_writes_report_skips_and_reruns(tmp_path):
    # As a user runs it: from a fresh folder, with a RELATIVE runs dir (the converter, the bench
    # workers and the judge all run elsewhere or in other processes).
    cwd = tmp_path / "fresh-cwd"
    cwd.mkdir()
    tiny_args = ["run", "--config", str(TINY), "--runs-dir", "runs"]
    root = cwd / "runs" / "tiny"
    first = run_edgemed(*tiny_args, cwd=cwd)
    assert first.returncode == 0, first.stderr[-4000:]
    for rel in ("train/manifest.json", "train/adapter/adapter_config.json", "merge/config.json",
                "export/trained/manifest.json", "bench/bench.json", "bench/report.md", "report.md"):
        assert (root / rel).is_file(), rel
    assert list((root / "bench").glob("*.png")), "bench plots missing"
    report = (root / "report.md").read_text()
    assert "## Training" in report and "gguf-q8_0" in report and "proxy" in report.lower()
    assert "](bench/" in report  # plots resolve from the run folder
    bench = json.loads((root / "bench" / "bench.json").read_text())
    labels = {t["label"] for t in bench["targets"]}
    assert any("gguf-q8_0" in label for label in labels) and len(labels) >= 2
    assert not no_temp_files(root)

    done = stage_times(root)
    assert set(done) == {"train", "merge", "export", "bench"}
    again = run_edgemed(*tiny_args, cwd=cwd)
    assert again.returncode == 0, again.stderr[-4000:]
    assert stage_times(root) == done, "an up-to-date stage ran again"

    rerun = run_edgemed(*tiny_args, "--from", "bench", cwd=cwd)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    after = stage_times(root)
    assert {s: after[s] for s in ("train", "merge", "export")} == {s: done[s] for s in ("train", "merge", "export")}
    assert after["bench"] != done["bench"]


def test_kill_9_in_train_export_and_bench_then_resume(tmp_path, tiny_args):
    root = tmp_path / "runs" / "tiny"
    gens = root / "bench" / "generations.jsonl"

    # 1. killed after the first checkpoint: no stage is recorded as done, the checkpoint stays.
    run_until(tiny_args, lambda: (root / "train" / "checkpoint-1" / "trainer_state.json").is_file())
    assert (root / "train" / "checkpoint-1").is_dir()
    assert not (root / "train" / "manifest.json").exists()

    # 2. killed during export: training resumed from its checkpoint instead of starting over.
    run_until(tiny_args, lambda: (root / "export" / "trained").is_dir())
    train = json.loads((root / "train" / "manifest.json").read_text())
    assert train["resumed_from"] and train["resumed_from"].endswith("checkpoint-1")
    assert train["steps"] == 2

    # 3. killed once the bench has logged an answer.
    run_until(tiny_args, lambda: gens.is_file() and gens.read_text().count("\n") >= 1)
    before = [json.loads(l) for l in gens.read_text().splitlines() if l.strip().endswith("}")]
    assert before

    # 4. the last run finishes; finished work is neither lost nor recomputed, nothing half-written is left.
    final = run_edgemed(*tiny_args)
    assert final.returncode == 0, final.stderr[-4000:]
    after = [json.loads(l) for l in gens.read_text().splitlines()]
    keys = [(r.get("key"), r["prompt_id"]) for r in after]
    assert len(keys) == len(set(keys)), "an answer was generated twice"
    assert all(r in after for r in before), "an answer written before the kill was lost"
    manifest = json.loads((root / "export" / "trained" / "manifest.json").read_text())
    for artifact in manifest["artifacts"]:
        assert (root / "export" / "trained" / artifact["path"]).exists()
    assert (root / "report.md").is_file() and not no_temp_files(root)
