"""The bench stage: HealthBench-heart quality and llama-bench latency for every exported build.

Public surface: ``edgemed.bench.stage.run(config) -> dict`` with ``edgemed.bench.config.BenchConfig``,
and the pure scoring math in ``edgemed.bench.scoring``. See docs/bench.md.
"""
