"""Failure semantics of the openai backend against real sockets: garbage, stalls, error codes,
dead ports. Every failure is met=None plus a counted failure; nothing raises, nothing is a
silent "not met", nothing failed is cached."""

from __future__ import annotations

import socket
import time

from edgemed.judges import build_judge, grade_batch
from tests.judges.judge_servers import CONVERSATION, ITEMS, Reply, completion

VALID = '{"explanation": "It says to call 911.", "criteria_met": true}'


def cfg(url: str, cache_file: str, **over) -> dict:
    return {"backend": "openai", "base_url": url, "model": "fake-judge", "cache_path": cache_file,
            "max_retries": 1, "retry_backoff_s": 0.01, "timeout_s": 5, **over}


def test_malformed_answers_are_retried_then_none(fake_server, cache_file):
    fake_server.respond = lambda body: Reply(body=completion("Sure, the response is fine!"))
    judge = build_judge(cfg(fake_server.url, cache_file))
    verdicts = grade_batch(judge, [(CONVERSATION, ITEMS)])[0]
    assert [v.met for v in verdicts] == [None, None]
    assert all("unreadable answer" in v.explanation for v in verdicts)
    assert judge.stats.as_dict() == {"requested": 2, "cache_hits": 0, "calls": 2, "failures": 2,
                                     "retries": 2}
    assert len(fake_server.requests) == 4  # one retry each, sampled warmer than the first try
    assert sorted(r["temperature"] for r in fake_server.requests) == [0.0, 0.0, 0.5, 0.5]

    fake_server.respond = lambda body: Reply(body=completion("```json\n" + VALID + "\n```"))
    healed = grade_batch(judge, [(CONVERSATION, ITEMS)])[0]  # failures were not cached
    assert [v.met for v in healed] == [1.0, 1.0] and judge.stats.cache_hits == 0
    judge.close()


def test_non_json_http_body_is_a_failure(fake_server, cache_file):
    fake_server.respond = lambda body: Reply(body="<html>Bad gateway</html>")
    judge = build_judge(cfg(fake_server.url, cache_file, max_retries=0))
    [verdict] = judge.grade(CONVERSATION, ITEMS[:1])
    assert verdict.met is None and "not a chat completion" in verdict.explanation
    assert judge.stats.failures == 1


def test_timeout_is_a_failure_within_the_budget(fake_server, cache_file):
    fake_server.respond = lambda body: Reply(body=completion(VALID), delay_s=3.0)
    judge = build_judge(cfg(fake_server.url, cache_file, timeout_s=0.3, max_retries=1))
    started = time.perf_counter()
    [verdict] = judge.grade(CONVERSATION, ITEMS[:1])
    assert time.perf_counter() - started < 2.0  # 2 attempts × 0.3 s + backoff, not 2 × 3 s
    assert verdict.met is None and "timeout" in verdict.explanation
    assert judge.stats.failures == 1 and judge.stats.retries == 1


def test_dead_port_is_a_failure_not_a_crash(cache_file):
    with socket.socket() as s:  # a port that was free a moment ago and now refuses connections
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = build_judge(cfg(f"http://127.0.0.1:{port}/v1", cache_file))
    verdicts = grade_batch(judge, [(CONVERSATION, ITEMS)] * 2)
    assert [[v.met for v in row] for row in verdicts] == [[None, None], [None, None]]
    assert judge.stats.failures == 4 and len(judge.cache) == 0


def test_server_errors_retry_but_auth_errors_do_not(fake_server, cache_file):
    calls = {"n": 0}

    def flaky(body):
        calls["n"] += 1
        return Reply(status=503, body={"error": "busy"}) if calls["n"] == 1 else Reply(body=completion(VALID))

    fake_server.respond = flaky
    judge = build_judge(cfg(fake_server.url, cache_file))
    assert judge.grade(CONVERSATION, ITEMS[:1])[0].met == 1.0 and judge.stats.retries == 1

    fake_server.respond = lambda body: Reply(status=401, body={"error": "bad key"})
    before = len(fake_server.requests)
    [verdict] = judge.grade(CONVERSATION, ITEMS[1:])
    assert verdict.met is None and "HTTP 401" in verdict.explanation
    assert len(fake_server.requests) == before + 1  # a retry cannot fix a bad key


def test_concurrency_limit_is_respected(fake_server, cache_file):
    fake_server.respond = lambda body: Reply(body=completion(VALID), delay_s=0.3)
    judge = build_judge(cfg(fake_server.url, cache_file, concurrency=3))
    jobs = [([*CONVERSATION[:1], {"role": "assistant", "content": f"answer {i}"}], ITEMS) for i in range(6)]
    started = time.perf_counter()
    verdicts = grade_batch(judge, jobs)
    elapsed = time.perf_counter() - started
    assert all(v.met == 1.0 for row in verdicts for v in row)
    assert fake_server.max_in_flight == 3
    assert elapsed < 12 * 0.3  # 12 criteria × 0.3 s would be the sequential time
    fake_server.max_in_flight = 0
    fresh = [([*CONVERSATION[:1], {"role": "assistant", "content": f"other {i}"}], ITEMS) for i in range(2)]
    grade_batch(judge, fresh, concurrency=1)
    assert fake_server.max_in_flight == 1 and judge.stats.calls == 16


def test_response_format_downgrade_and_api_key_never_stored(fake_server, cache_file, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("EDGEMED_TEST_JUDGE_KEY", secret)

    def llama_cpp_like(body):  # llama_cpp.server rejects json_schema with a 500 naming the field
        if body.get("response_format", {}).get("type") == "json_schema":
            return Reply(status=500, body={"error": {"message": "response_format.type: 'text' or 'json_object'"}})
        return Reply(body=completion(VALID))

    fake_server.respond = llama_cpp_like
    judge = build_judge(cfg(fake_server.url, cache_file, api_key_env="EDGEMED_TEST_JUDGE_KEY",
                            concurrency=2))
    verdicts = grade_batch(judge, [(CONVERSATION, ITEMS)])[0]
    assert [v.met for v in verdicts] == [1.0, 1.0] and judge.stats.retries == 0
    assert fake_server.requests[-1]["response_format"]["type"] == "json_object"
    assert fake_server.requests[-1]["response_format"]["schema"]["required"] == ["explanation", "criteria_met"]
    assert all(h.get("Authorization") == f"Bearer {secret}" for h in fake_server.headers)
    judge.close()
    assert secret not in judge.fingerprint
    with open(cache_file, "rb") as f:
        assert secret.encode() not in f.read()


def test_empty_model_uses_the_served_one(fake_server, cache_file):
    judge = build_judge({**cfg(fake_server.url, cache_file), "model": None})
    assert "|fake-judge|" in judge.fingerprint
    judge.grade(CONVERSATION, ITEMS[:1])
    assert fake_server.requests[-1]["model"] == "fake-judge"


def test_likert_out_of_range_is_none_and_not_cached(fake_server, cache_file):
    from edgemed.judges import build_likert_judge

    fake_server.respond = lambda body: Reply(body=completion('{"explanation": "great", "rating": 11}'))
    likert = build_likert_judge(cfg(fake_server.url, cache_file))
    assert likert.rate(CONVERSATION, ITEMS) is None
    assert likert.stats.failures == 1 and likert.stats.retries == 1 and len(likert.cache) == 0
    assert fake_server.requests[-1]["response_format"]["json_schema"]["schema"]["properties"]["rating"]["enum"] == list(range(1, 11))
    fake_server.respond = lambda body: Reply(body=completion('{"explanation": "good", "rating": 8}'))
    assert likert.rate(CONVERSATION, ITEMS) == 8.0 and likert.rate(CONVERSATION, ITEMS) == 8.0
    assert likert.stats.cache_hits == 1
    likert.close()
