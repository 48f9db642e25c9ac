"""The verdict cache: keys, failures never stored, threads and processes sharing one file."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading

from edgemed.data.schema import RubricItem
from edgemed.judges.base import Judgement
from edgemed.judges.cache import CachedJudge, VerdictCache, verdict_key
from tests.judges.judge_servers import CONVERSATION, ITEMS


class CountingJudge:
    """Answers "met" for positive items and fails (None) on pitfalls; counts items it saw."""

    fingerprint = "counting-v1"

    def __init__(self):
        self.seen = 0

    def grade(self, conversation, items):
        self.seen += len(items)
        return [Judgement(None if it.is_pitfall else 1.0, "x") for it in items]


def test_hits_skip_the_backend_and_failures_are_retried(tmp_path):
    inner = CountingJudge()
    judge = CachedJudge(inner, VerdictCache(tmp_path / "c.sqlite"))
    assert [v.met for v in judge.grade(CONVERSATION, ITEMS)] == [1.0, None]
    assert [v.met for v in judge.grade(CONVERSATION, ITEMS)] == [1.0, None]
    assert inner.seen == 3  # the positive item once, the failed pitfall twice
    assert judge.stats.as_dict() == {"requested": 4, "cache_hits": 1, "calls": 3, "failures": 2,
                                     "retries": 0}
    assert len(judge.cache) == 1


def test_key_covers_response_points_and_fingerprint():
    other_answer = [CONVERSATION[0], {"role": "assistant", "content": "Rest and see."}]
    base = verdict_key("fp", CONVERSATION, ["c", 5.0])
    assert base != verdict_key("fp", other_answer, ["c", 5.0])
    assert base != verdict_key("fp", CONVERSATION, ["c", -5.0])
    assert base != verdict_key("fp2", CONVERSATION, ["c", 5.0])


def test_backend_exception_becomes_none(tmp_path):
    class Broken:
        fingerprint = "broken"

        def grade(self, conversation, items):
            raise RuntimeError("model crashed")

    judge = CachedJudge(Broken(), VerdictCache(tmp_path / "c.sqlite"))
    verdicts = judge.grade(CONVERSATION, ITEMS)
    assert [v.met for v in verdicts] == [None, None] and "model crashed" in verdicts[0].explanation
    assert judge.stats.failures == 2 and len(judge.cache) == 0


def test_threads_share_one_cache(tmp_path):
    cache = VerdictCache(tmp_path / "c.sqlite")

    def write(t):
        for i in range(50):
            cache.put(f"{t}-{i}", "fp", Judgement(1.0))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 400


def test_processes_share_one_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    script = ("import sys\nfrom edgemed.judges.cache import VerdictCache\nfrom edgemed.judges.base import Judgement\n"
              "c = VerdictCache(sys.argv[1])\n"
              "for i in range(200): c.put(sys.argv[2] + str(i), 'fp', Judgement(0.0))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(VerdictCache(path)) == 400


def test_training_ranks_share_one_fresh_cache(tmp_path):
    """Two ranks open a new cache file at the same moment (racing to switch it to WAL), write the
    same verdicts (identical completions on both ranks) and their own, and read each other's."""
    path, go = tmp_path / "c.sqlite", tmp_path / "go"
    script = ("import sys, time, pathlib\nfrom edgemed.judges.cache import VerdictCache\n"
              "from edgemed.judges.base import Judgement\n"
              "while not pathlib.Path(sys.argv[2]).exists(): time.sleep(0.005)\n"
              "c = VerdictCache(sys.argv[1])\n"
              "for i in range(100):\n"
              "    c.put(f'shared{i}', 'fp', Judgement(1.0)); c.put(f'{sys.argv[3]}{i}', 'fp', Judgement(0.0))\n"
              "assert len(c.get_many([f'shared{i}' for i in range(100)])) == 100\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(go), f"rank{r}"]) for r in (0, 1)]
    go.touch()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(VerdictCache(path)) == 300


def test_damaged_cache_is_set_aside_and_rebuilt(tmp_path, caplog):
    """5,000 random bytes where the cache was: one warning, the file kept aside, a fresh cache that works."""
    path = tmp_path / "cache.sqlite"
    junk = os.urandom(5000)
    path.write_bytes(junk)
    with caplog.at_level(logging.WARNING):
        cache = VerdictCache(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "moved aside" in warnings[0], warnings
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == junk
    assert re.fullmatch(r"cache\.sqlite\.corrupt-\d{8}T\d{6}Z", aside[0].name)
    judge = CachedJudge(CountingJudge(), cache)
    assert [v.met for v in judge.grade(CONVERSATION, ITEMS)] == [1.0, None]
    assert len(cache) == 1
    cache.close()
    assert len(VerdictCache(path)) == 1  # a real sqlite file now: reopened without a word


def test_cache_with_damaged_pages_is_rebuilt_when_read(tmp_path, caplog):
    """A sound header over damaged pages opens fine and fails on the first read: rebuilt there."""
    path = tmp_path / "cache.sqlite"
    cache = VerdictCache(path)
    for i in range(300):
        cache.put(f"k{i}", "fp", Judgement(1.0, "x" * 200))
    cache.close()
    with open(path, "r+b") as f:
        f.seek(4096)  # page 1 (header, schema) intact
        f.write(os.urandom(path.stat().st_size - 4096))
    cache = VerdictCache(path)
    with caplog.at_level(logging.WARNING):
        assert cache.get_many([f"k{i}" for i in range(300)]) == {}
    assert "malformed" in caplog.text and "moved aside" in caplog.text
    cache.put("k0", "fp", Judgement(0.0))
    assert cache.get_many(["k0"])["k0"].met == 0.0


def test_unusable_cache_path_is_a_config_error(tmp_path):
    """A path sqlite cannot open at all (here a folder) is the user's to fix: nothing is moved."""
    import pytest

    from edgemed.errors import ConfigError

    bad = tmp_path / "folder.sqlite"
    bad.mkdir()
    with pytest.raises(ConfigError, match="folder.sqlite: not a usable sqlite file"):
        VerdictCache(bad)
    assert bad.is_dir()


def test_items_differing_only_in_tags_share_a_verdict(tmp_path):
    inner = CountingJudge()
    judge = CachedJudge(inner, VerdictCache(tmp_path / "c.sqlite"))
    judge.grade(CONVERSATION, [RubricItem("Advises 911", 5.0, ("axis:accuracy",))])
    judge.grade(CONVERSATION, [RubricItem("Advises 911", 5.0, ("axis:completeness",))])
    assert inner.seen == 1
