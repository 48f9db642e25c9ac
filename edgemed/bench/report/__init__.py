"""Report room: bench.json in and out, report.md, plots, CLI lines; imports quality, latency, config, layout, targets."""
