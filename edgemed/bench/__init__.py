"""The bench stage: HealthBench-heart quality and llama-bench latency for every exported build.

Public surface: ``edgemed.bench.stage.run(config) -> dict`` with ``edgemed.bench.config.BenchConfig``;
the run folder's file names in ``edgemed.bench.layout``. The rooms, one subpackage each (each
``__init__`` says what it may import): ``quality`` (grading, the HealthBench and paper formulas in
``quality.healthbench``, per-example ``quality.metrics``, every bootstrap and test in ``quality.stats``,
base vs trained in ``quality.compare``), ``latency`` (timings, llama-bench, the machine), ``report``
(bench.json written by ``report.assemble`` and read typed by ``report.results``, report.md, the
headline, plots, terminal), ``device`` (bundle, pack, the device run, grade) and ``runners`` (one per
runtime). See docs/bench.md and docs/architecture.md.
"""
