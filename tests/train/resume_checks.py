"""What a resumed training log must show, one or many processes alike."""

from __future__ import annotations

from pathlib import Path

from edgemed.io import read_jsonl_tolerant
from edgemed.train.trainlog import read_training_log


def assert_resumed_once_at_step_2(log_file: Path) -> None:
    """One resume marker at step 2, exactly one new step row (3) after it: steps 1-2 were not re-run."""
    raw = read_jsonl_tolerant(log_file)
    resumes = [r for r in raw if r.get("event") == "resume"]
    assert len(resumes) == 1 and resumes[0]["step"] == 2
    after = raw[raw.index(resumes[0]) + 1:]
    assert [r["step"] for r in after if "reward" in r] == [3]
    assert [r["step"] for r in read_training_log(log_file)] == [1, 2, 3]
