"""Training prompts: rubric records → the conversational dataset trl's GRPOTrainer consumes.

Rows carry ``prompt`` (chat messages, so trl applies the model's own chat template), ``rubrics``
(what the reward functions grade against) and ``prompt_id``. Only the train split is used, and
no prompt of the HealthBench heart eval subset may get in: the bench would then score answers
the model was rewarded for.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from edgemed.data.schema import RubricRecord
from edgemed.errors import ConfigError
from edgemed.models.chat import DEFAULT_SYSTEM_PROMPT, resolve_system_prompt  # noqa: F401  (one home)
from edgemed.train.config import DataSection

log = logging.getLogger(__name__)


@dataclass
class TrainingPrompts:
    """The dataset plus what a report needs to show where it came from."""

    rows: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    eval_rule: str | None = None
    eval_subset_size: int = 0

    @property
    def prompt_ids(self) -> list[str]:
        return [r["prompt_id"] for r in self.rows]

    def to_dataset(self):
        """A ``datasets.Dataset`` with columns prompt, rubrics, prompt_id."""
        from datasets import Dataset

        return Dataset.from_list(self.rows)


def build_training_prompts(data: DataSection, seed: int) -> TrainingPrompts:
    """Load, split-filter, leak-check, size-filter and format the training prompts.

    >>> from edgemed.train.config import DataSection
    >>> tp = build_training_prompts(DataSection(max_prompts=2), seed=0)  # doctest: +SKIP
    >>> tp.rows[0]["prompt"][0]["role"]  # doctest: +SKIP
    'system'
    """
    from edgemed.data.rar import load_rar_medicine

    # A hub dataset is loaded split by split; local files carry a split label per record.
    records = load_rar_medicine(data.source, split=data.split if _is_hub(data.source) else None)
    counts = {"loaded": len(records)}
    records = select_split(records, data.split, data.source)
    counts["in_split"] = len(records)

    eval_ids: set[str] = set()
    eval_texts: set[str] = set()
    healthbench: list[RubricRecord] = []
    if data.check_eval_leak or data.healthbench_mix:
        healthbench, eval_ids, eval_texts = eval_subset(data)
    if data.check_eval_leak:
        check_no_eval_leak(records, eval_ids, eval_texts, data.source, data.eval_rule)
    if data.healthbench_mix:
        outside = healthbench_outside(healthbench, eval_ids, eval_texts, seed)
        take = outside if data.healthbench_mix == -1 else outside[:data.healthbench_mix]
        counts["healthbench_mix"] = len(take)
        records = records + take

    kept = [r for r in records if len(r.rubrics) >= data.min_rubric_items]
    counts["dropped_small_rubric"] = len(records) - len(kept)
    if data.max_prompt_chars is not None:
        short = [r for r in kept if sum(len(m["content"]) for m in r.prompt) <= data.max_prompt_chars]
        counts["dropped_long_prompt"] = len(kept) - len(short)
        kept = short
    if not kept:
        raise ConfigError(f"data: no prompt of '{data.source}' (split {data.split!r}) has "
                          f">= {data.min_rubric_items} rubric items; lower data.min_rubric_items")
    random.Random(seed).shuffle(kept)
    if data.max_prompts is not None:
        kept = kept[:data.max_prompts]
    counts["used"] = len(kept)
    system = resolve_system_prompt(data.system_prompt)
    rows = [to_row(r, system) for r in kept]
    log.info("training prompts: %s", counts)
    return TrainingPrompts(rows=rows, counts=counts, eval_rule=data.eval_rule if eval_ids else None,
                           eval_subset_size=len(eval_ids))


def select_split(records: list[RubricRecord], split: str | None, source: str) -> list[RubricRecord]:
    """Keep one split; a source without split labels must be taken whole on purpose (split: null).

    >>> r = RubricRecord.from_dict({"prompt_id": "a", "split": "test",
    ...     "prompt": [{"role": "user", "content": "q"}], "rubrics": [{"criterion": "c", "points": 1}]})
    >>> select_split([r], "train", "x.jsonl")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: data.split: 'x.jsonl' has no 'train' records (splits present: ['test'])
    """
    if split is None or (_is_hub(source) and all(r.split is None for r in records)):
        return list(records)
    present = sorted({str(r.split) for r in records})
    kept = [r for r in records if r.split == split]
    if not kept:
        raise ConfigError(f"data.split: '{source}' has no '{split}' records (splits present: {present})"
                          + ("; set data.split: null to use an unsplit source" if present == ["None"] else ""))
    return kept


def check_no_eval_leak(records: list[RubricRecord], eval_ids: set[str], eval_texts: set[str],
                       source: str, rule: str) -> None:
    """Fail when a training prompt is in the eval subset, by prompt_id or by its user text.

    >>> r = RubricRecord.from_dict({"prompt_id": "hb-1",
    ...     "prompt": [{"role": "user", "content": "Chest pain?"}], "rubrics": [{"criterion": "c", "points": 1}]})
    >>> check_no_eval_leak([r], {"hb-1"}, set(), "mix.jsonl", "heart-keywords-v1")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: data: 1 training prompt(s) of 'mix.jsonl' are in the HealthBench heart eval subset (rule heart-keywords-v1), e.g. hb-1; remove them or set data.check_eval_leak: false
    """
    leaked = [r.prompt_id for r in records
              if r.prompt_id in eval_ids or normalise(r.user_text) in eval_texts]
    if leaked:
        raise ConfigError(
            f"data: {len(leaked)} training prompt(s) of '{source}' are in the HealthBench heart eval "
            f"subset (rule {rule}), e.g. {', '.join(leaked[:3])}; remove them or set "
            f"data.check_eval_leak: false")


def to_row(record: RubricRecord, system_prompt: str | None) -> dict[str, Any]:
    """One dataset row; a record's own system message wins over the configured one.

    >>> r = RubricRecord.from_dict({"prompt_id": "p", "prompt": [{"role": "user", "content": "q"}],
    ...     "rubrics": [{"criterion": "c", "points": 2, "tags": ["category:essential"]}]})
    >>> row = to_row(r, "Be brief.")
    >>> [m["role"] for m in row["prompt"]], row["rubrics"]
    (['system', 'user'], [{'criterion': 'c', 'points': 2.0, 'tags': ['category:essential']}])
    """
    messages = [dict(m) for m in record.prompt]
    if system_prompt and messages[0]["role"] not in ("system", "developer"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    rubrics = [{"criterion": it.criterion, "points": float(it.points), "tags": list(it.tags)}
               for it in record.rubrics]
    return {"prompt": messages, "rubrics": rubrics, "prompt_id": record.prompt_id}


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive key for text-level leak checks.

    >>> normalise("  Chest   PAIN? ")
    'chest pain?'
    """
    return re.sub(r"\s+", " ", text).strip().lower()


def _is_hub(source: str) -> bool:
    from edgemed.data.rar import PACKAGED

    return not (source in PACKAGED or source.endswith((".jsonl", ".json", ".parquet"))
                or Path(source).expanduser().exists())


def healthbench_outside(healthbench: list[RubricRecord], eval_ids: set[str], eval_texts: set[str],
                        seed: int) -> list[RubricRecord]:
    """HealthBench records outside the heart eval subset (by id and by text), in the seeded order whose
    first ``data.healthbench_mix`` records training takes (a screening set takes from the other end).

    >>> r = [RubricRecord.from_dict({"prompt_id": p, "prompt": [{"role": "user", "content": p}],
    ...      "rubrics": [{"criterion": "c", "points": 1}]}) for p in "abcd"]
    >>> sorted(x.prompt_id for x in healthbench_outside(r, {"a"}, {"b"}, seed=0))
    ['c', 'd']
    """
    outside = [r for r in healthbench if r.prompt_id not in eval_ids and normalise(r.user_text) not in eval_texts]
    random.Random(seed).shuffle(outside)
    return outside


def eval_subset(data: DataSection) -> tuple[list[RubricRecord], set[str], set[str]]:
    from edgemed.data.healthbench import load_healthbench
    from edgemed.data.heart import heart_subset

    healthbench = load_healthbench(data.healthbench_source)
    subset = heart_subset(healthbench, rule=data.eval_rule)
    return healthbench, set(subset.prompt_ids), {normalise(r.user_text) for r in subset.records}
