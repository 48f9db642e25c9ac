"""Report room: bench.json written and read typed, report.md, headline, plots, terminal; imports quality, latency, config, layout, targets."""
