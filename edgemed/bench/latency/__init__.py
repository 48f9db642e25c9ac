"""Latency room: pp/tg timings, llama-bench beside them, the machine; imports only bench.config, layout, targets."""
