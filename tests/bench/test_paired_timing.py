"""The kit's timer and llama-bench, paired repetition by repetition on a real GGUF."""

from __future__ import annotations

import pytest

from edgemed.bench.config import LatencyConfig
from edgemed.bench.layout import LATENCY, LLAMA_BENCH
from edgemed.bench.targets import Target
from edgemed.io import read_jsonl_tolerant


def _tools_installed() -> bool:
    try:
        from edgemed.export.llama_tools import tool_path

        tool_path("llama-bench")
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _tools_installed(), reason="llama-bench is not installed (make install)")
def test_each_kit_repetition_is_followed_by_one_llama_bench_repetition(tmp_path):
    from edgemed.bench.latency import llama_bench, timing
    from edgemed.bench.runners import open_runner
    from edgemed.models.resolve import default_gguf_path

    path = default_gguf_path()
    size = path.stat().st_size
    target = Target("ref/q4_1", "ref", "q4_1", "gguf", "q4_1", str(path), size, size, "ab", 1)
    cfg = LatencyConfig(n_prompt=16, n_gen=8, repetitions=2, warmup=1, llama_bench=True)
    order: list[str] = []

    class Recorded(llama_bench.Sampler):
        def __call__(self, n_prompt, n_gen):
            order.append("llama-bench")
            return super().__call__(n_prompt, n_gen)

    reference = Recorded(target, cfg, 2)

    with open_runner(target, 2, "cpu") as runner:
        for name in ("prefill", "decode"):
            timed = getattr(runner, name)

            def wrapped(n, _timed=timed):
                order.append("kit")
                return _timed(n)

            setattr(runner, name, wrapped)
        timing.run_latency(runner, target, cfg, tmp_path, {"cpu_info": "x", "gpu_info": "", "cores_physical": 2},
                           isolated=False, progress=False, reference=reference)
    # per test: one warm-up, then kit / llama-bench alternating
    assert order == ["kit", "kit", "llama-bench", "kit", "llama-bench"] * 2
    rows = read_jsonl_tolerant(tmp_path / LATENCY)
    ref = [r for r in rows if r.get("harness") == LLAMA_BENCH]
    assert [r["test"] for r in ref] == ["pp16", "tg8"] and all(r["paired"] for r in ref)
    assert all(len(r["samples_ts"]) == 2 and r["avg_ts"] > 0 for r in ref)
    # the stage finds them under llama-bench's resume key and does not time the build again
    assert {r["test"] for r in llama_bench.reference_rows(target, cfg, 2, tmp_path)} == {"pp16", "tg8"}
