"""Config errors fail fast, with the file and key named, and before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemed.errors import ConfigError
from edgemed.train.config import config_path, load_train_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Any attempt to resolve or load a model fails the test."""
    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the config error was raised")

    monkeypatch.setattr("edgemed.models.resolve_model", boom)
    monkeypatch.setattr("edgemed.models.load_model", boom)


def rar_line(pid: str, question: str, split: str = "train", n_items: int = 4) -> str:
    rubric = [{"title": f"t{i}", "description": f"Important Criteria: Explains point {i} about the heart.",
               "weight": 3} for i in range(n_items)]
    return json.dumps({"id": pid, "question": question, "split": split, "rubric": rubric}) + "\n"


def test_packaged_configs_load_by_name_and_by_path():
    by_name = load_train_config("smollm2_heart_grpo_cpu")
    by_path = load_train_config(str(config_path("smollm2_heart_grpo_cpu")))
    assert by_name == by_path
    assert by_name.model.spec == "default" and by_name.judge.backend == "proxy"
    qlora = load_train_config("qwen3_heart_grpo_qlora")
    assert (qlora.model.load_in_4bit, qlora.lora.r, qlora.lora.alpha, qlora.grpo.num_generations,
            qlora.grpo.learning_rate, qlora.grpo.max_completion_length, qlora.judge.backend) == \
        (True, 16, 32, 6, 5e-6, 1024, "openai")
    assert qlora.rewards[0]["name"] == "complexity"


def test_packaged_configs_carry_their_run_command():
    for name in ("smollm2_heart_grpo_cpu", "qwen3_heart_grpo_qlora"):
        header = config_path(name).read_text().splitlines()[:12]
        assert any(f"edgemed train --config {name}" in line for line in header), name


def test_unknown_yaml_key_names_key_and_file(tmp_path):
    cfg = write(tmp_path / "bad.yaml", "grpo:\n  num_generation: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: grpo\.num_generation: unknown key \(known: "):
        load_train_config(str(cfg))


def test_wrong_type_names_key(tmp_path):
    cfg = write(tmp_path / "bad.yaml", "lora:\n  r: sixteen\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: lora\.r: expected int, got 'sixteen'"):
        load_train_config(str(cfg))


def test_unknown_reward_fails_at_load(no_model_load):
    with pytest.raises(ConfigError, match=r"rewards\[0\]: unknown reward 'complexityy'"):
        load_train_config("smollm2_heart_grpo_cpu", {"rewards": [{"name": "complexityy"}]})


def test_dotted_path_reward_must_import(no_model_load):
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg'"):
        load_train_config("smollm2_heart_grpo_cpu", {"rewards": [{"name": "no_such_pkg.mine"}]})


def test_openai_judge_without_url_fails(no_model_load):
    with pytest.raises(ConfigError, match="judge.base_url must be an http"):
        load_train_config("smollm2_heart_grpo_cpu", {"judge.backend": "openai", "judge.base_url": ""})
    with pytest.raises(ConfigError, match="judge.base_url must be an http"):
        load_train_config("smollm2_heart_grpo_cpu", {"rewards": [
            {"name": "hybrid", "judge": {"backend": "openai", "base_url": ""}}]})


def test_batch_not_multiple_of_group_fails():
    with pytest.raises(ConfigError, match="multiple of grpo.num_generations"):
        load_train_config("smollm2_heart_grpo_cpu", {"grpo.per_device_train_batch_size": 6})


def test_eval_leak_fails_before_model_load(tmp_path, heart, no_model_load):
    from edgemed.train.recipe import train

    leaked = heart.records[0]
    data = write(tmp_path / "mix.jsonl",
                 rar_line("ok-1", "How does a beta blocker work?")
                 + rar_line(leaked.prompt_id, "Some other wording"))
    cfg = load_train_config("smollm2_heart_grpo_cpu", {"data.source": str(data),
                                                       "output_dir": str(tmp_path / "run")})
    with pytest.raises(ConfigError, match=rf"eval subset .*{leaked.prompt_id}"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_eval_leak_by_text_is_caught(tmp_path, heart):
    from edgemed.train.prompts import build_training_prompts

    leaked = heart.records[0]
    data = write(tmp_path / "mix.jsonl", rar_line("renamed-1", leaked.user_text.upper()))
    cfg = load_train_config("smollm2_heart_grpo_cpu", {"data.source": str(data)})
    with pytest.raises(ConfigError, match="renamed-1"):
        build_training_prompts(cfg.data, cfg.seed)


def test_prompts_use_train_split_and_rubric_size(tmp_path):
    from edgemed.train.prompts import build_training_prompts

    data = write(tmp_path / "d.jsonl",
                 rar_line("a", "Is a resting pulse of 50 fine for a runner?")
                 + rar_line("b", "What is a statin for?", n_items=2)
                 + rar_line("c", "What does an echocardiogram show?", split="test"))
    cfg = load_train_config("smollm2_heart_grpo_cpu", {"data.source": str(data)})
    prompts = build_training_prompts(cfg.data, cfg.seed)
    assert prompts.prompt_ids == ["a"]
    assert prompts.counts["dropped_small_rubric"] == 1
    row = prompts.rows[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert {"criterion", "points", "tags"} <= set(row["rubrics"][0])


def test_long_prompts_can_be_left_out(tmp_path):
    from edgemed.train.prompts import build_training_prompts

    data = write(tmp_path / "d.jsonl", rar_line("short", "Is a resting pulse of 50 fine?")
                 + rar_line("long", "My history: " + "palpitations at night. " * 200))
    cfg = load_train_config("smollm2_heart_grpo_cpu", {"data.source": str(data), "data.max_prompt_chars": 500})
    prompts = build_training_prompts(cfg.data, cfg.seed)
    assert prompts.prompt_ids == ["short"] and prompts.counts["dropped_long_prompt"] == 1
    with pytest.raises(ConfigError, match="max_prompt_chars"):
        load_train_config("smollm2_heart_grpo_cpu", {"data.max_prompt_chars": 0})


def test_cli_config_error_is_one_line_exit_2(capsys):
    from edgemed.cli import main

    assert main(["train", "--config", "smollm2_heart_grpo_cpu", "--set", "grpo.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --set: grpo.nope: unknown key (known: beta, ")
