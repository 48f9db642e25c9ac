"""Grading many (conversation, rubric) pairs at once, with a bounded number of judge calls in
flight. A GRPO step grades G completions × k criteria; a benchmark thousands: the judge server
is only busy if the client keeps ``concurrency`` requests open.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from edgemed.data.schema import RubricItem
from edgemed.judges.base import Judge, Judgement

Job = tuple[list[dict[str, str]], Sequence[RubricItem]]


def grade_batch(judge: Judge, jobs: Sequence[Job], concurrency: int | None = None) -> list[list[Judgement]]:
    """Verdicts for every job, in order: ``out[i][j]`` is item j of job i.

    Each conversation ends with the assistant response being graded. With ``concurrency``
    (default: the judge's own, e.g. ``JudgeConfig.concurrency``) above 1, single criteria are
    graded in a thread pool of that size; otherwise job by job, which lets an in-process judge
    batch a job's items itself.

    >>> class Contains:  # a stand-in judge: "met" when the criterion's word is in the response
    ...     fingerprint = "contains"
    ...     def grade(self, conversation, items):
    ...         return [Judgement(float(it.criterion in conversation[-1]["content"])) for it in items]
    >>> jobs = [([{"role": "user", "content": "bp?"}, {"role": "assistant", "content": "see a doctor"}],
    ...          [RubricItem("doctor", 5), RubricItem("salt", 2)])] * 3
    >>> [[v.met for v in row] for row in grade_batch(Contains(), jobs, concurrency=2)]
    [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
    """
    jobs = [(conv, list(items)) for conv, items in jobs]
    workers = concurrency if concurrency is not None else getattr(judge, "concurrency", 1)
    if workers <= 1:
        return [list(judge.grade(conv, items)) if items else [] for conv, items in jobs]
    tasks = [(i, j) for i, (_, items) in enumerate(jobs) for j in range(len(items))]
    out: list[list[Judgement | None]] = [[None] * len(items) for _, items in jobs]

    def grade_one(task: tuple[int, int]) -> Judgement:
        i, j = task
        conv, items = jobs[i]
        return judge.grade(conv, [items[j]])[0]

    with ThreadPoolExecutor(max_workers=min(workers, max(len(tasks), 1)),
                            thread_name_prefix="judge") as pool:
        for (i, j), verdict in zip(tasks, pool.map(grade_one, tasks)):
            out[i][j] = verdict
    return out  # type: ignore[return-value]
