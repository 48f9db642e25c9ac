"""What `edgemed run` prints (issue 26): a page a person reads; the libraries' output in the stage logs.

One tiny pipeline, non-TTY as CI and `make run | tee` see it: start and end lines per stage, the
report's first lines and its path; trl's per-step dicts and llama.cpp's loader dump only in
``runs/<name>/logs/<stage>.log``. Then ``--json`` on the finished run: stdout is one JSON document.
"""

import json

import yaml

from tests.pipeline.conftest import TINY, run_edgemed

STAGES = ("train", "merge", "export", "bench")
# Output that belongs in the stage logs, never on the terminal.
THIRD_PARTY = ("'loss':", "'grad_norm':", "llama_model_loader", "llama_model_quantize", "print_info:",
               "INFO root:", "Quantization parameters")


def smaller_tiny(tmp_path):
    """tiny.yaml cut further (1 step, 2 short parity prompts, 1 bench build and prompt): every stage and
    its libraries still run, on less CPU. Parity this short may fail; the build is benched anyway."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["train"].update({"grpo.max_steps": 1})
    cfg["export"].update({"n_prompts": 2, "tf_tokens": 16, "greedy_tokens": 8})
    cfg["bench"].update({"include_base": False, "include_failed": True,
                         "quality": {"n_prompts": 1, "max_new_tokens": 8}})
    cfg["bench"]["latency"].update({"n_prompt": 8, "n_gen": 2})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_tiny_run_prints_a_page_and_keeps_library_output_in_stage_logs(tmp_path):
    root = tmp_path / "runs" / "tiny"
    args = ["run", "--config", str(smaller_tiny(tmp_path)), "--runs-dir", str(tmp_path / "runs")]
    first = run_edgemed(*args)
    assert first.returncode == 0, first.stderr[-4000:]
    terminal = first.stdout.splitlines() + first.stderr.splitlines()
    page = "\n".join(terminal)
    assert len(terminal) < 60, page
    for stage in STAGES:
        assert any(ln.startswith(f"{stage}: ") and f"(log: {root / 'logs' / stage}.log)" in ln
                   for ln in first.stderr.splitlines()), f"no start line for {stage}:\n{page}"
        assert any(ln.startswith(f"{stage}: done in ") for ln in first.stderr.splitlines()), page
        assert (root / "logs" / f"{stage}.log").is_file(), stage
    assert not [marker for marker in THIRD_PARTY if marker in page], page
    assert "train: done in" in page and "reward" in page.split("train: done in")[1].splitlines()[0]
    assert "".join(first.stdout.split()).endswith(f"report:{root / 'report.md'}")  # rich wraps at 80 columns

    logs = {stage: (root / "logs" / f"{stage}.log").read_text() for stage in STAGES}
    assert "'loss':" in logs["train"] and "'completions/mean_length':" in logs["train"]  # trl's dicts
    assert "llama_model_loader" in logs["export"]  # llama.cpp's C-level output (quantizer, loader)
    assert all(f"{stage}: done in" in logs[stage] for stage in STAGES)  # the log holds the lines too

    again = run_edgemed(*args, "--json")
    assert again.returncode == 0, again.stderr[-4000:]
    summary = json.loads(again.stdout)  # machine-only: nothing else on stdout
    assert summary["skipped"] == list(STAGES)
    assert [f"{s}: up to date, skipped" for s in STAGES] == again.stderr.splitlines()[1:]
