"""The in-process GGUF judge (llama-cpp-python) on the shipped SmolLM2: grammar-constrained JSON
always parses, verdicts are cached, and the model is released on close."""

from __future__ import annotations

import importlib.util

import pytest

from edgemed.judges import build_judge
from tests.judges.judge_servers import CONVERSATION, ITEMS

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="llama-cpp-python is not installed")


def test_in_process_judge_answers_valid_json(cache_file):
    from edgemed.models import default_gguf_path

    # The JSON grader on the tiny shipped SmolLM2: proves the wiring, not the quality.
    cfg = {"backend": "llamacpp", "model": str(default_gguf_path()), "template": "edgemed",
           "cache_path": cache_file, "max_tokens": 256, "max_retries": 1,
           "retry_backoff_s": 0.0, "params": {"n_ctx": 2048, "n_threads": 1}}
    with build_judge(cfg) as judge:
        assert judge.concurrency == 1 and judge.fingerprint.startswith("criterion|llamacpp|SmolLM2")
        [verdict] = judge.grade(CONVERSATION, ITEMS[:1])
        assert verdict.met in (0.0, 1.0), verdict.explanation
        assert verdict.raw.lstrip().startswith("{")
        assert judge.stats.failures == 0
    with build_judge(cfg) as again:
        assert again.grade(CONVERSATION, ITEMS[:1]) == [verdict] and again.stats.cache_hits == 1
