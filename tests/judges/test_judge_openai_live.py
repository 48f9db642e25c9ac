"""The openai backend against a live llama_cpp.server (SmolLM2-135M): the contract, not the
quality — a 135M model grades badly, but its answers must arrive, parse, cache and count."""

from __future__ import annotations

import time

from tests.judges.judge_servers import CONVERSATION, ITEMS, live_server

from edgemed.judges import build_judge, build_likert_judge, grade_batch


def live_cfg(base_url: str, cache_file: str, **over) -> dict:
    # max_tokens leaves room for the 500-character explanation the schema allows
    return {"backend": "openai", "base_url": base_url, "cache_path": cache_file, "max_tokens": 256,
            "max_retries": 1, "retry_backoff_s": 0.1, "timeout_s": 120, **over}


def test_grades_each_item_and_rerun_hits_the_cache(llama_server, cache_file):
    judge = build_judge(live_cfg(llama_server, cache_file))
    first = grade_batch(judge, [(CONVERSATION, ITEMS)])[0]
    assert len(first) == len(ITEMS)
    assert all(v.met in (0.0, 1.0) for v in first), [v.explanation for v in first]
    assert all(v.raw for v in first)
    assert judge.stats.as_dict() == {"requested": 2, "cache_hits": 0, "calls": 2, "failures": 0,
                                     "retries": 0}
    judge.close()

    again = build_judge(live_cfg(llama_server, cache_file))  # a new process would see the same
    started = time.perf_counter()
    second = grade_batch(again, [(CONVERSATION, ITEMS)])[0]
    assert time.perf_counter() - started < 0.5
    assert second == first
    assert again.stats.cache_hits == 2 and again.stats.calls == 0
    again.close()


def test_logprobs_give_a_probability(llama_server, cache_file):
    judge = build_judge(live_cfg(llama_server, cache_file, use_logprobs=True))
    [verdict] = judge.grade(CONVERSATION, ITEMS[:1])
    assert verdict.met is not None and 0.0 < verdict.met < 1.0, verdict
    judge.close()


def test_healthbench_template_and_likert(llama_server, cache_file):
    judge = build_judge(live_cfg(llama_server, cache_file, template="healthbench"))
    [verdict] = judge.grade(CONVERSATION, ITEMS[1:])
    assert verdict.met in (0.0, 1.0)
    judge.close()

    likert = build_likert_judge(live_cfg(llama_server, cache_file))
    rating = likert.rate(CONVERSATION, ITEMS)
    assert rating is not None and rating == int(rating) and 1 <= rating <= 10
    assert likert.rate(CONVERSATION, ITEMS) == rating and likert.stats.cache_hits == 1
    likert.close()


def test_server_stopped_mid_run_gives_counted_failures(cache_file):
    server = live_server().start()
    judge = build_judge(live_cfg(server.base_url, cache_file))
    try:
        [before] = judge.grade(CONVERSATION, ITEMS[:1])
        assert before.met is not None
    finally:
        server.stop()
    after = grade_batch(judge, [(CONVERSATION, ITEMS)])[0]
    assert after[0] == before  # the first verdict was cached before the server went away
    assert after[1].met is None and "ConnectError" in after[1].explanation
    assert judge.stats.failures == 1 and judge.stats.retries == 1
    judge.close()
