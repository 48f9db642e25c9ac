"""JudgeConfig validation, the factory's errors, prompts and answer parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemed.data.schema import RubricItem
from edgemed.errors import ConfigError
from edgemed.judges import JudgeConfig, build_judge, build_likert_judge
from edgemed.judges.parsing import extract_json, p_true, read_verdict
from edgemed.judges.prompts import grader_messages, healthbench_template
from tests.judges.judge_servers import CONVERSATION


@pytest.mark.parametrize("raw, message", [
    ({"backend": "vllm"}, "judge.backend"),
    ({"template": "mine"}, "judge.template"),
    ({"concurrency": 0}, "judge.concurrency"),
    ({"max_retries": -1}, "judge.max_retries"),
    ({"timeout_s": 0}, "judge.timeout_s"),
    ({"temperature": "hot"}, "judge.temperature"),
    ({"base_url_typo": "x"}, "judge.base_url_typo: unknown key"),
])
def test_bad_config_names_the_field(raw, message):
    with pytest.raises(ConfigError, match=message):
        JudgeConfig.from_dict(raw)


def test_factory_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown judge.params"):
        build_judge({"backend": "openai", "model": "m", "params": {"n_ctx": 1}, "cache_path": "off"})
    with pytest.raises(ConfigError, match="base_url"):
        build_judge({"backend": "openai", "model": "m", "base_url": "localhost:8000", "cache_path": "off"})
    with pytest.raises(ConfigError, match="did not list a model"):
        build_judge({"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 1,
                     "cache_path": "off"})
    with pytest.raises(ConfigError, match="GGUF file not found"):
        build_judge({"backend": "llamacpp", "model": str(tmp_path / "none.gguf"), "cache_path": "off"})
    with pytest.raises(ConfigError, match="needs an LLM"):
        build_likert_judge({"backend": "proxy"})


def test_default_cache_lives_under_edgemed_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMED_HOME", str(tmp_path))
    judge = build_judge({"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"})
    assert judge.cache.path == tmp_path / "judges" / "cache.sqlite"
    judge.close()


def test_healthbench_template_is_the_official_one():
    template = healthbench_template()
    assert template.startswith("Your job is to look at a conversation and a rubric item")
    messages = grader_messages("healthbench", CONVERSATION, RubricItem("Says {x} and <<y>>", -3))
    text = messages[0]["content"]
    assert "<<conversation>>" not in text and "user: I have crushing chest pain" in text
    assert "[-3] Says {x} and <<y>>" in text


def test_edgemed_prompt_explains_pitfalls_and_examples():
    system = grader_messages("edgemed", CONVERSATION, RubricItem("x", 1))[0]["content"]
    assert "pitfall" in system and "such as" in system
    positive = grader_messages("edgemed", CONVERSATION, RubricItem("Advises 911", 5))[1]["content"]
    pitfall = grader_messages("edgemed", CONVERSATION, RubricItem("Advises waiting", -5))[1]["content"]
    assert "[5] Advises 911" in positive and "PITFALL" not in positive and "PITFALL" in pitfall


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4),
       before=st.text(alphabet="abc xyz.:\n", max_size=20), after=st.text(alphabet="abc xyz.\n", max_size=20),
       fenced=st.booleans())
def test_extract_json_finds_the_object_amid_chatter(obj, before, after, fenced):
    body = json.dumps(obj)
    text = f"{before}```json\n{body}\n```{after}" if fenced else f"{before}{body}{after}"
    assert extract_json(text) == obj


@pytest.mark.parametrize("text", ["", "true", '{"criteria_met": null}', '{"explanation": "yes"}',
                                  '{"criteria_met": 1}', "[true]", '{"criteria_met": tru'])
def test_unreadable_verdicts_are_none(text):
    assert read_verdict(text) is None


def test_p_true_handles_split_words_and_missing_alternatives():
    head = {"token": '{"explanation": "ok", "criteria_met":', "logprob": 0.0}
    split = [head, {"token": " tr", "logprob": -0.1, "top_logprobs": [
        {"token": " tr", "logprob": -0.1}, {"token": " fal", "logprob": -2.4}]}, {"token": "ue}", "logprob": 0.0}]
    assert 0.9 < p_true(split) < 0.95
    only_other = [head, {"token": " maybe", "logprob": -0.1, "top_logprobs": []}]
    assert p_true(only_other) is None and p_true(None) is None and p_true([head]) is None
