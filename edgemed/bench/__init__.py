"""The bench stage: HealthBench-heart quality and llama-bench latency for every exported build.

Public surface: ``edgemed.bench.stage.run(config) -> dict`` with ``edgemed.bench.config.BenchConfig``;
the pure math in ``edgemed.bench.scoring`` (HealthBench and paper formulas), ``quality_metrics``
(per-example metrics), ``stats`` (every bootstrap and test) and ``compare`` (base vs trained); the
run folder's file names in ``edgemed.bench.layout``. See docs/bench.md and docs/architecture.md.
"""
