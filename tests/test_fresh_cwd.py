"""The stage commands as a stranger types them: from a fresh folder, with relative --out paths."""

import json

from tests.pipeline.conftest import run_edgemed


def test_export_then_bench_with_relative_paths(tmp_path):
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    exp = run_edgemed("export", "--model", "default", "--formats", "gguf:q8_0", "--out", "rel/exp",
                      "--n-prompts", "1", "--tf-tokens", "8", "--greedy-tokens", "4", "--allow-degraded", cwd=cwd)
    assert exp.returncode == 0, exp.stderr[-3000:]
    manifest = json.loads((cwd / "rel" / "exp" / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["gguf-q8_0"]
    assert (cwd / "rel" / "exp" / manifest["artifacts"][0]["path"]).is_file()

    # --include-failed: this test is about paths; 8 teacher-forced tokens are too few to judge parity
    bench = run_edgemed("bench", "--manifest", "rel/exp", "--out", "rel/bench", "--no-quality", "--no-base",
                        "--include-failed",
                        "--n-prompt", "16", "--n-gen", "4", "--repetitions", "1", cwd=cwd)
    assert bench.returncode == 0, bench.stderr[-3000:]
    rows = json.loads((cwd / "rel" / "bench" / "bench.json").read_text())["targets"]
    assert any("gguf-q8_0" in t["label"] and (t.get("latency") or {}).get("tg") for t in rows)
