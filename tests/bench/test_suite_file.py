"""A user's own suite file, given by a relative path, is the same file every time the config is loaded."""

from __future__ import annotations

from edgemed.bench.config import load_config


def test_relative_suite_path_survives_reload(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text("quality:\n  n_prompts: 3\n")
    cfg = load_config({"suite": "my.yaml", "out": "b"})
    assert cfg.suite == str(tmp_path / "my.yaml") and cfg.quality.n_prompts == 3
    monkeypatch.chdir("/")  # the stage and its workers load it again, from anywhere
    again = load_config(cfg)
    assert again.suite == cfg.suite and again.quality.n_prompts == 3
    assert load_config({"suite": "smoke"}).suite == "smoke"  # packaged suites keep their name
