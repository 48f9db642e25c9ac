"""A grades log that no longer fits the prompts is a one-line user error, not a traceback."""

from __future__ import annotations

import pytest

from edgemed.bench import layout
from edgemed.bench.quality import grading
from edgemed.bench.config import QualityConfig
from edgemed.bench.targets import Target
from edgemed.data.schema import RubricRecord
from edgemed.errors import DataError
from edgemed.io import append_jsonl


def test_stale_grades_log_is_a_data_error_naming_the_file(tmp_path):
    target = Target("b/x", "b", "x", "gguf", "q8_0", "/x", 1, 1, "ab", 1)
    record = RubricRecord.from_dict({"prompt_id": "p1", "prompt": [{"role": "user", "content": "bp?"}],
                                     "rubrics": [{"criterion": c, "points": 1} for c in "abc"]})
    key = grading.generation_key(target, QualityConfig())
    # graded when the record had two criteria; it has three now
    append_jsonl(tmp_path / layout.GRADES, {"key": key, "judge": "j", "prompt_id": "p1", "met": [1, 0]})
    append_jsonl(tmp_path / layout.GENERATIONS, {"key": key, "prompt_id": "p1", "response": "Low.", "n_gen": 2})
    with pytest.raises(DataError) as e:
        grading.quality_summary(target, [record], QualityConfig(), tmp_path, "j")
    assert str(e.value) == (f"{tmp_path / layout.GRADES}: p1 has 2 verdicts for 3 criteria: a stale log; "
                            "delete the rows of b/x and re-run")
