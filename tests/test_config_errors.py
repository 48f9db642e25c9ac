"""One config reader: the same mistake reads the same way, ``error: FILE: KEY: message``, in every stage.

Each case writes a config file with one mistake and runs the stage's own command on it, so the
test covers the whole path a user takes: the option, the stage's loader, the reader, the CLI line.
Judge configs have no required field (every JudgeConfig field has a default), so they have no
"missing" case.
"""

from __future__ import annotations

import pytest

from edgemed.cli import main
from edgemed.config_reader import MISSING_KEY, UNKNOWN_KEY


def train(path, tmp_path):
    return ["train", "--config", str(path), "--check"]


def export(path, tmp_path):
    return ["export", "--profile", str(path), "--out", str(tmp_path / "out")]


def bench(path, tmp_path):
    return ["bench", "--suite", str(path), "--out", str(tmp_path / "bench")]


def pipeline(path, tmp_path):
    return ["run", "--config", str(path), "--runs-dir", str(tmp_path / "runs")]


def judge(path, tmp_path):
    return ["judge", "eval", "--config", str(path), "--limit", "1"]


WRONG = "expected int, got 'many'"
CASES = [
    # stage, file name, text, key, message
    (train, "t.yaml", "grpo:\n  max_step: 3\n", "grpo.max_step", UNKNOWN_KEY),
    (train, "t.yaml", "grpo:\n  max_steps: many\n", "grpo.max_steps", WRONG),
    (train, "t.yaml", "rewards:\n  - weight: 1.0\n", "rewards[0].name", MISSING_KEY),
    (export, "d.toml", 'builds = ["gguf:q8_0"]\nthreads = 4\n', "threads", UNKNOWN_KEY),
    (export, "d.toml", 'builds = ["gguf:q8_0"]\n[thresholds.q8_0]\nkl_mean = "low"\n',
     "thresholds.q8_0.kl_mean", "expected float, got 'low'"),
    (export, "d.toml", 'name = "pi"\n', "builds", MISSING_KEY),
    (bench, "s.yaml", "latency:\n  n_promt: 5\n", "latency.n_promt", UNKNOWN_KEY),
    (bench, "s.yaml", "latency:\n  repetitions: many\n", "latency.repetitions", WRONG),
    (bench, "s.yaml", "manifests:\n  - label: base\n", "manifests[0].path", MISSING_KEY),
    (pipeline, "p.yaml", "nmae: x\n", "nmae", UNKNOWN_KEY),
    (pipeline, "p.yaml", "stages: [bench]\nbench:\n  latency: {repetitions: many}\n",
     "bench.latency.repetitions", WRONG),
    (pipeline, "p.yaml", "stages: [bench]\nbench:\n  manifests:\n    - label: base\n",
     "bench.manifests[0].path", MISSING_KEY),
    (judge, "j.yaml", "judge:\n  concurency: 3\n", "judge.concurency", UNKNOWN_KEY),
    (judge, "j.yaml", "judge:\n  concurrency: many\n", "judge.concurrency", WRONG),
]


@pytest.mark.parametrize("stage, name, text, key, message", CASES,
                         ids=[f"{c[0].__name__}-{c[3]}" for c in CASES])
def test_every_stage_reports_config_mistakes_alike(tmp_path, capsys, stage, name, text, key, message):
    path = tmp_path / name
    path.write_text(text)
    assert main(stage(path, tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    expected = f"error: {path}: {key}: {message}"
    if message == UNKNOWN_KEY:
        assert err[0].startswith(expected + " (known: "), err[0]
    else:
        assert err[0] == expected


def test_train_override_mistakes_read_alike(capsys):
    assert main(["train", "--config", "smollm2_heart_grpo_cpu", "--set", "grpo.max_steps=many", "--check"]) == 2
    assert capsys.readouterr().err.strip() == f"error: --set: grpo.max_steps: {WRONG}"
