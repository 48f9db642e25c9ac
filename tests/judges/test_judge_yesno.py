"""The local yes/no LLM judge on the installed Qwen2.5-Coder-1.5B GGUF: verdicts, prefix reuse, failures."""

from __future__ import annotations

import pytest

from edgemed.data.schema import RubricItem
from edgemed.judges.judge_model import installed
from edgemed.judges.yesno import YesNoJudge, prompt_parts

pytestmark = pytest.mark.skipif(not installed(), reason="the local judge GGUF is not installed (make judge-model)")

CONV = [{"role": "user", "content": "I have had crushing chest pain spreading to my left arm for 20 minutes."},
        {"role": "assistant", "content": "This could be a heart attack. Call 911 right now and chew one 325 mg "
                                         "aspirin if you are not allergic. Do not drive yourself."}]


@pytest.fixture(scope="module")
def judge():
    from edgemed.judges.judge_model import require_judge_model

    j = YesNoJudge(require_judge_model(), n_threads=2, n_ctx=1024)
    yield j
    j.close()


def test_clear_cases_and_prefix_reuse(judge):
    items = [RubricItem("Advises calling emergency services immediately.", 10),
             RubricItem("Recommends waiting at home to see whether the pain passes.", -8)]
    before = judge.prefix_tokens_reused
    verdicts = judge.grade(CONV, items)
    assert [v.met for v in verdicts] == [1.0, 0.0], [v.explanation for v in verdicts]
    prefix, _ = prompt_parts(CONV, items[0])
    # the second criterion reused at least the whole conversation from the KV cache
    assert judge.prefix_tokens_reused - before >= len(prefix) // 6


def test_a_prompt_beyond_the_context_is_a_failure_not_a_verdict(judge):
    long_conv = [CONV[0], {"role": "assistant", "content": "word " * 3000}]
    [verdict] = judge.grade(long_conv, [RubricItem("Advises calling 911.", 5)])
    assert verdict.met is None and "n_ctx" in verdict.explanation
    [again] = judge.grade(CONV, [RubricItem("Advises calling emergency services immediately.", 10)])
    assert again.met == 1.0  # the context was rewound and still works


def test_one_batch_per_answer_agrees_with_one_criterion_at_a_time(judge):
    from edgemed.judges.judge_model import require_judge_model

    items = [RubricItem("Advises calling emergency services immediately.", 10),
             RubricItem("Recommends waiting at home to see whether the pain passes.", -8),
             RubricItem("Mentions aspirin.", 3),
             RubricItem("Recommends a low-salt diet.", 2)]
    single = YesNoJudge(require_judge_model(), n_threads=2, n_ctx=1024, parallel=1)
    try:
        one_by_one = single.p_yes_many(CONV, items)
        calls_single = single._scorer.decode_calls
    finally:
        single.close()
    before = judge._scorer.decode_calls
    batched = judge.p_yes_many(CONV, items)
    # same prompts, same tokens: only llama.cpp's batch split differs (it moves P(yes) by a few 0.01)
    assert all(abs(a - b) < 0.1 for a, b in zip(one_by_one, batched)), (one_by_one, batched)
    assert [a >= 0.5 for a in one_by_one] == [b >= 0.5 for b in batched]
    assert judge._scorer.decode_calls - before < calls_single
    assert judge.fingerprint.endswith("|sched=shared-batch") or "|sched=shared-batch|" in judge.fingerprint


def test_one_criterion_beyond_the_context_fails_alone(judge):
    items = [RubricItem("Advises calling emergency services immediately.", 10),
             RubricItem("Says " + "very " * 900 + "clearly that this is an emergency.", 5)]
    first, second = judge.grade(CONV, items)
    assert first.met == 1.0 and second.met is None and "n_ctx" in second.explanation
