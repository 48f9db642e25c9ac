"""Quality room: answers graded and scored, every formula and statistic; imports only bench.config, layout, targets."""
