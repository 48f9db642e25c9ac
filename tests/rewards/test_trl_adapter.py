"""The trl adapter: trl's reward-function contract, concurrent grading, groups, None and logging.

Judges here are small in-test classes implementing the Judge protocol: a criterion is met when
its keyword appears in the response, so every expected reward can be worked out by reading.
"""

import threading
from collections import defaultdict

import pytest

from edgemed import rewards
from edgemed.errors import ConfigError, DataError
from edgemed.judges import Judgement

PROMPT_A = [{"role": "system", "content": "You are a cardiology assistant."},
            {"role": "user", "content": "I have crushing chest pain. What should I do?"}]
PROMPT_B = [{"role": "user", "content": "Is 150/95 high blood pressure?"}]
RUBRIC_A = [
    {"criterion": "emergency", "points": 5, "tags": ["axis:accuracy", "category:essential"]},
    {"criterion": "aspirin", "points": 3, "tags": ["axis:completeness", "category:important"]},
    {"criterion": "wait", "points": -4, "tags": ["axis:accuracy", "category:pitfall"]},
]
RUBRIC_B = [{"criterion": "hypertension", "points": 5, "tags": ["axis:accuracy"]},
            {"criterion": "doctor", "points": 2, "tags": []}]


class KeywordJudge:
    """met = 1 if the criterion's keyword is in the response; 'maybe' → 0.6; 'FAIL' → None."""

    fingerprint = "keyword"
    concurrency = 3

    def __init__(self):
        self.calls = defaultdict(int)
        self.lock = threading.Lock()

    def grade(self, conversation, items):
        assert conversation[-1]["role"] == "assistant"
        text = conversation[-1]["content"]
        out = []
        for it in items:
            with self.lock:
                self.calls[(text, it.criterion)] += 1
            if "FAIL" in text:
                out.append(Judgement(None, "timeout"))
            elif f"maybe {it.criterion}" in text:
                out.append(Judgement(0.6))
            else:
                out.append(Judgement(float(it.criterion in text)))
        return out


class Recorder:
    def __init__(self):
        self.metrics, self.extra = {}, {}

    def log_metric(self, name, value):
        self.metrics[name] = value

    def log_extra(self, column, values):
        self.extra[column] = values


def call(reward, prompts, completions, rubrics, rec=None, conversational=True):
    """Call like trl's _calculate_rewards does: every dataset column plus trl's own kwargs."""
    rec = rec or Recorder()
    if conversational:
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    return reward(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(prompts),
                  rubrics=rubrics, prompt_id=["x"] * len(prompts), trainer_state=None,
                  log_metric=rec.log_metric, log_extra=rec.log_extra)


def test_contract_name_values_and_conversation():
    reward = rewards.rubric_reward_func({"name": "explicit_signed"}, judge=KeywordJudge())
    assert reward.__name__ == "explicit_signed"
    out = call(reward, [PROMPT_A] * 3, ["Call emergency services and chew aspirin.",
                                        "Call emergency services.", "Just wait and see."], [RUBRIC_A] * 3)
    assert out == pytest.approx([8 / 8, 5 / 8, -4 / 8])


def test_plain_string_prompts_and_completions():
    reward = rewards.rubric_reward_func("explicit", judge=KeywordJudge())
    out = call(reward, ["Is 150/95 high?"], ["Yes, hypertension; see a doctor."], [RUBRIC_B],
               conversational=False)
    assert out == [1.0]


def test_trl_sees_the_reward_name_and_a_sync_callable():
    from trl.trainer.utils import get_callable_name, is_async_callable

    reward = rewards.rubric_reward_func({"name": "complexity"}, judge=KeywordJudge())
    assert get_callable_name(reward) == "complexity"
    assert not is_async_callable(reward)


def test_identical_jobs_are_graded_once():
    judge = KeywordJudge()
    reward = rewards.rubric_reward_func("hybrid", judge=judge)
    call(reward, [PROMPT_A] * 4, ["Call emergency."] * 3 + ["wait"], [RUBRIC_A] * 4)
    assert judge.calls[("Call emergency.", "emergency")] == 1
    assert sum(judge.calls.values()) == 2 * len(RUBRIC_A)


def test_failed_verdicts_are_left_out_counted_and_logged():
    reward = rewards.rubric_reward_func("explicit", judge=KeywordJudge())
    rec = Recorder()
    out = call(reward, [PROMPT_A] * 2, ["FAIL", "emergency aspirin"], [RUBRIC_A] * 2, rec)
    assert out == [None, 1.0]
    m = rec.metrics
    assert m["rewards/explicit/judge_failures"] == 3
    assert m["rewards/explicit/judge_failure_rate"] == 0.5
    assert m["rewards/explicit/frac_none"] == 0.5
    assert m["rewards/explicit/hit_rate/positive"] == 1.0
    assert m["rewards/explicit/hit_rate/pitfall"] == 0.0
    assert m["rewards/explicit/satisfied/axis:accuracy"] == 1.0
    assert m["rewards/explicit/satisfied/category:pitfall"] == 1.0
    assert not any(k.endswith("/emergency") for k in m)  # no per-criterion keys
    assert rec.extra["explicit/ungraded"] == [3, 0]


def test_min_graded_frac_turns_sparse_rows_into_none():
    class HalfBlind(KeywordJudge):
        def grade(self, conversation, items):
            return [Judgement(None) if it.points < 0 else v for it, v in zip(items, super().grade(conversation, items))]

    lenient = rewards.rubric_reward_func({"name": "explicit"}, judge=HalfBlind())
    strict = rewards.rubric_reward_func({"name": "explicit", "min_graded_frac": 0.9}, judge=HalfBlind())
    assert call(lenient, [PROMPT_A], ["emergency"], [RUBRIC_A]) == [5 / 8]
    assert call(strict, [PROMPT_A], ["emergency"], [RUBRIC_A]) == [None]


def test_binarize_gives_the_papers_yes_no():
    soft = rewards.rubric_reward_func("explicit", judge=KeywordJudge())
    hard = rewards.rubric_reward_func({"name": "explicit", "binarize": True}, judge=KeywordJudge())
    text = ["emergency, maybe aspirin"]
    assert call(soft, [PROMPT_A], text, [RUBRIC_A]) == pytest.approx([(5 + 0.6 * 3 + 4) / 12])
    assert call(hard, [PROMPT_A], text, [RUBRIC_A]) == pytest.approx([1.0])


def test_category_tags_reach_explicit_categories():
    reward = rewards.rubric_reward_func("explicit_categories", judge=KeywordJudge())
    assert call(reward, [PROMPT_A], ["emergency"], [RUBRIC_A]) == pytest.approx([(1.0 + 0.8) / 2.5])


def test_rvpo_groups_by_prompt_even_when_rows_interleave():
    reward = rewards.rubric_reward_func({"name": "rvpo", "params": {"k": 0.5}}, judge=KeywordJudge())
    prompts = [PROMPT_A, PROMPT_B, PROMPT_A, PROMPT_B, PROMPT_A]
    rubrics = [RUBRIC_A, RUBRIC_B, RUBRIC_A, RUBRIC_B, RUBRIC_A]
    texts = ["emergency aspirin", "hypertension", "wait", "doctor hypertension", "emergency"]
    rec = Recorder()
    out = call(reward, prompts, texts, rubrics, rec)
    group_a = rewards.rvpo_group([5, 3, -4], [[1, 1, 0], [0, 0, 1], [1, 0, 0]], k=0.5)
    group_b = rewards.rvpo_group([5, 2], [[1, 0], [1, 1]], k=0.5)
    assert out == pytest.approx([group_a[0], group_b[0], group_a[1], group_b[1], group_a[2]])
    assert rec.metrics["rewards/rvpo/groups"] == 2
    assert rec.metrics["rewards/rvpo/mean_group_size"] == 2.5


def test_min_group_spread_silences_noise_only():
    reward = rewards.rubric_reward_func({"name": "explicit", "min_group_spread": 0.15}, judge=KeywordJudge())
    rec = Recorder()
    texts_a = ["emergency aspirin", "emergency maybe aspirin", "emergency aspirin"]   # 1.0, 0.9, 1.0
    texts_b = ["hypertension doctor", "nothing useful", "FAIL"]                       # 1.0, 0.0, None
    out = call(reward, [PROMPT_A] * 3 + [PROMPT_B] * 3, texts_a + texts_b, [RUBRIC_A] * 3 + [RUBRIC_B] * 3, rec)
    mean_a = (1.0 + (5 + 1.8 + 4) / 12 + 1.0) / 3
    assert out == pytest.approx([mean_a] * 3 + [1.0, 0.0, None])
    assert rec.metrics["rewards/explicit/frac_groups_flattened"] == 0.5


def test_implicit_uses_the_likert_judge():
    class Likert:
        concurrency = 2

        def rate(self, conversation, items):
            assert [it.criterion for it in items] == ["emergency", "aspirin", "wait"]
            return None if "FAIL" in conversation[-1]["content"] else 7.0

    rec = Recorder()
    reward = rewards.rubric_reward_func("implicit", judge=Likert())
    assert call(reward, [PROMPT_A] * 2, ["Call 911.", "FAIL"], [RUBRIC_A] * 2, rec) == [pytest.approx(6 / 9), None]
    assert rec.metrics["rewards/implicit/judge_failures"] == 1
    assert rec.metrics["rewards/implicit/frac_none"] == 0.5


def test_dotted_path_reward_gets_its_last_name():
    reward = rewards.rubric_reward_func("edgemed.rewards.paper.hybrid", judge=KeywordJudge())
    assert reward.__name__ == "hybrid"
    assert call(reward, [PROMPT_B], ["hypertension doctor"], [RUBRIC_B]) == [20.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"rubrics": None}, "no 'rubrics' column"),
    ({"rubrics": [[]]}, "non-empty list"),
    ({"rubrics": [[{"criterion": "x", "points": "5"}]]}, r"rubrics\[0\].points"),
    ({"rubrics": [RUBRIC_A, RUBRIC_A]}, "one of each per row"),
])
def test_bad_batches_fail_clearly(kwargs, message):
    reward = rewards.rubric_reward_func("explicit", judge=KeywordJudge())
    with pytest.raises(DataError, match=message):
        reward(prompts=[PROMPT_A], completions=["ok"], **kwargs)


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown reward 'hybird'; known: complexity"):
        rewards.rubric_reward_func("hybird")
    with pytest.raises(ConfigError, match="takes no parameter 'kk'; it takes: k, min_std"):
        rewards.RewardConfig(name="rvpo", params={"kk": 1})
    with pytest.raises(ConfigError, match="'tags' comes from the rubric"):
        rewards.RewardConfig(name="explicit_categories", params={"tags": []})
    with pytest.raises(ConfigError, match=r"^reward\.spread: unknown key \(known: "):
        rewards.RewardConfig.from_dict({"name": "hybrid", "spread": 1})
    with pytest.raises(ConfigError, match="^min_graded_frac: must be <= 1"):
        rewards.RewardConfig(min_graded_frac=2)
    with pytest.raises(ConfigError, match="judge.backend"):
        rewards.RewardConfig(judge={"backend": "gpt"})
    with pytest.raises(ConfigError, match="cannot import module"):
        rewards.get_reward("no_such_pkg.fn")


def test_config_round_trips_through_a_dict():
    cfg = rewards.RewardConfig(name="softmin", weight=0.5, params={"k": 3.0}, judge={"backend": "proxy"},
                               min_group_spread=0.05)
    again = rewards.RewardConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.judge.backend == "proxy" and not again.is_group


def test_empty_batch_needs_no_judge():
    reward = rewards.rubric_reward_func("implicit", judge=object())
    assert reward(prompts=[], completions=[], rubrics=[]) == []


def test_judge_is_built_from_config_at_construction():
    with pytest.raises(ConfigError, match="needs an LLM"):
        rewards.rubric_reward_func({"name": "implicit", "judge": {"backend": "proxy"}})
    reward = rewards.rubric_reward_func({"name": "hybrid", "judge": {
        "backend": "openai", "model": "judge", "base_url": "http://127.0.0.1:9/v1", "cache_path": "off"}})
    assert reward.judge.fingerprint.startswith("criterion|openai|judge")
    reward.close()


def test_with_the_offline_proxy_judge(tmp_path):
    """End to end with a real judge: the better answer earns more, and a re-grade hits the cache."""
    reward = rewards.rubric_reward_func({"name": "complexity", "judge": {
        "backend": "proxy", "cache_path": str(tmp_path / "verdicts.sqlite")}})
    rubric = [{"criterion": "Advises calling emergency services immediately", "points": 5, "tags": ["axis:accuracy"]},
              {"criterion": "Suggests waiting to see if the pain passes", "points": -5, "tags": ["axis:accuracy"]}]
    texts = ["Call emergency services right now; this could be a heart attack.",
             "It is probably nothing. Wait and see if the pain passes on its own."]
    rec = Recorder()
    first = call(reward, [PROMPT_A] * 2, texts, [rubric] * 2, rec)
    assert first[0] > first[1] and all(0 <= r <= 25 for r in first)
    assert rec.metrics["rewards/complexity/judge_failures"] == 0
    assert call(reward, [PROMPT_A] * 2, texts, [rubric] * 2) == first
    assert reward.judge.stats.as_dict()["cache_hits"] == 4
    reward.close()


def test_max_criteria_grades_one_shared_subset_per_group_with_a_pitfall():
    judge = KeywordJudge()
    reward = rewards.rubric_reward_func({"name": "explicit_signed", "max_criteria": 2}, judge=judge)
    rubric = RUBRIC_A + [{"criterion": "ecg", "points": 2, "tags": []}, {"criterion": "nitro", "points": 2, "tags": []}]
    completions = ["emergency aspirin", "wait", "ecg nitro", "nothing"]
    out = call(reward, [PROMPT_A] * 4, completions, [rubric] * 4)
    graded = {crit for (_, crit) in judge.calls}
    assert len(graded) == 2 and "wait" in graded, graded   # k criteria, the rubric's pitfall among them
    for text in completions:                                 # every completion of the group: the same subset
        assert {c for (t, c) in judge.calls if t == text} == graded
    assert len(out) == 4 and all(r is not None for r in out)
    with pytest.raises(ConfigError, match="max_criteria"):
        rewards.rubric_reward_func({"name": "explicit_signed", "max_criteria": -1}, judge=judge)
