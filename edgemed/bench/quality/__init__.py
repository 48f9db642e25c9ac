"""Quality room: answers graded and scored (HealthBench, paper, metrics), every statistic; imports only bench.config, layout, targets."""
