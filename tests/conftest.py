"""Shared fixtures: the default model, the offline HealthBench records and heart subset."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    from edgemed.models import resolve_model

    return resolve_model("default")


@pytest.fixture(scope="session")
def healthbench_records():
    from edgemed.data.healthbench import load_healthbench

    return load_healthbench()


@pytest.fixture(scope="session")
def heart(healthbench_records):
    from edgemed.data.heart import heart_subset

    return heart_subset(healthbench_records)
