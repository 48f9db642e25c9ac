"""edgemed: post-train a small LLM for heart-focused medical QA, export it for the edge, bench it.

Stages: ``train`` (GRPO + rubric rewards) → ``export`` (GGUF / ONNX + parity) → ``bench``
(HealthBench-heart quality + latency). See README.md.
"""

__version__ = "0.1.0"
