"""Criterion-level grading behind one interface: ``grade(conversation, items) -> list[Judgement]``.

Backends: ``proxy`` (offline, no LLM), ``openai`` (any OpenAI-compatible server), ``llamacpp``
(a GGUF in process). Every judge from ``build_judge`` sits behind a persistent sqlite cache and
reports failures as ``met=None``. See docs/judges.md.
"""

from edgemed.judges.base import Judge, Judgement, JudgeStats
from edgemed.judges.batch import grade_batch
from edgemed.judges.config import JudgeConfig
from edgemed.judges.factory import build_judge, build_likert_judge
from edgemed.judges.likert import LikertJudge

__all__ = ["Judge", "JudgeConfig", "JudgeStats", "Judgement", "LikertJudge", "build_judge",
           "build_likert_judge", "grade_batch"]
