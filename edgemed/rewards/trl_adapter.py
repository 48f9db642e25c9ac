"""The bridge from trl's GRPOTrainer to rubric rewards: the only module here that calls a judge.

trl calls a reward function once per generation batch with ``prompts``, ``completions``,
``completion_ids``, ``trainer_state``, ``log_metric``, ``log_extra`` and every dataset column as
keyword arguments (columns repeated once per generation), and reads back ``list[float | None]``;
None rows are ignored. The rubric arrives as the ``rubrics`` column: ``[{criterion, points, tags}]``.

Per call: build each (prompt + response) conversation → grade all unique (conversation, rubric)
jobs concurrently through the judge and its cache → pool the verdicts of every training process
(``edgemed.rewards.ranks``; a no-op in one process) → reward per row (or per group for group
rewards) → optional minimum-spread filter per group → log hit rates and judge failures → return
this process's rows.
"""

from __future__ import annotations

import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from edgemed.data.schema import RubricItem, parse_item
from edgemed.errors import DataError
from edgemed.judges import build_judge, build_likert_judge, grade_batch
from edgemed.rewards.config import RewardConfig
from edgemed.rewards.core import binarize
from edgemed.rewards.group import criteria_subset, flatten_low_spread, group_rows
from edgemed.rewards.metrics import rank_metrics, reward_metrics, verdict_metrics
from edgemed.rewards.ranks import gather_rows, own_slice, rank_and_world
from edgemed.rewards.registry import get_reward

Conversation = list[dict[str, str]]


def rubric_reward_func(config: RewardConfig | dict[str, Any] | str, judge: Any = None) -> "RubricReward":
    """A trl reward function for ``config``; its ``__name__`` is the reward's name (trl logs by it).

    The judge is built from ``config.judge`` right away; ``judge`` replaces it: a criterion judge
    (``grade(conversation, items)``), or for ``implicit`` a Likert judge (``rate(conversation, items)``).

    >>> from edgemed.judges import Judgement
    >>> class SaysDoctor:  # a stand-in judge: met when the criterion's word is in the response
    ...     fingerprint = "says-doctor"
    ...     def grade(self, conversation, items):
    ...         return [Judgement(float(it.criterion in conversation[-1]["content"])) for it in items]
    >>> reward = rubric_reward_func({"name": "explicit"}, judge=SaysDoctor())
    >>> rubric = [{"criterion": "doctor", "points": 5, "tags": []}, {"criterion": "aspirin", "points": -5, "tags": []}]
    >>> prompt = [{"role": "user", "content": "Chest pain, what now?"}]
    >>> reward.__name__, reward(prompts=[prompt, prompt], rubrics=[rubric, rubric],
    ...                         completions=["See a doctor now.", "Take aspirin."])
    ('explicit', [1.0, 0.0])
    """
    return RubricReward(RewardConfig.from_dict(config), judge=judge)


class RubricReward:
    """Callable with trl's reward-function contract; ``judge`` is the judge it grades with."""

    def __init__(self, config: RewardConfig, judge: Any = None, gather: bool = True):
        self.config = config
        # True: pool every process's verdicts so groups split across processes are scored whole
        # (needs every process to call in lockstep, as trl does); False: each process alone.
        self.gather = gather
        self.__name__ = config.label
        self.fn = get_reward(config.name)
        accepted = _keyword_params(self.fn)
        self.takes_tags = "tags" in accepted
        self.is_implicit = "rating" in accepted
        self._owns_judge = judge is None
        # Built now, not at the first step, so a bad judge config fails before the model loads.
        build = build_likert_judge if self.is_implicit else build_judge
        self.judge = judge if judge is not None else build(config.judge)

    # trl -------------------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                 rubrics: Sequence[Any] | None = None, log_metric: Callable[[str, float], None] | None = None,
                 log_extra: Callable[[str, list], None] | None = None, **kwargs: Any) -> list[float | None]:
        prompts = prompts if prompts is not None else kwargs.get("prompt")
        if prompts is None or completions is None:
            raise DataError("the reward needs 'prompts' and 'completions' (trl passes both)")
        if rubrics is None:
            raise DataError("the dataset has no 'rubrics' column: [{criterion, points, tags}] per row",
                            field="rubrics")
        if not (len(prompts) == len(completions) == len(rubrics)):
            raise DataError(f"{len(prompts)} prompts, {len(completions)} completions and "
                            f"{len(rubrics)} rubrics: one of each per row expected")
        if not prompts and (not self.gather or rank_and_world()[1] == 1):
            return []  # with several processes, an empty one still joins the pooling below
        items_rows = [parse_rubric(r, i) for i, r in enumerate(rubrics)]
        convs = [to_conversation(p, c) for p, c in zip(prompts, completions)]
        keys = _group_keys(prompts, items_rows)
        if self.config.max_criteria and not self.is_implicit:
            step = getattr(kwargs.get("trainer_state"), "global_step", 0)
            items_rows = [[items[j] for j in criteria_subset([it.points for it in items], self.config.max_criteria,
                                                             f"{step}|{key}")]
                          for items, key in zip(items_rows, keys)]
        # This process grades its own rows; the verdicts are then pooled so that groups split
        # across processes are scored, filtered and logged whole (edgemed.rewards.ranks).
        local = self._rate(convs, items_rows) if self.is_implicit else self._grade(convs, items_rows)
        (keys, items_rows, verdicts), shares, rank = (
            gather_rows(keys, items_rows, local) if self.gather else ([keys, items_rows, local], [len(keys)], 0))
        groups = group_rows(keys)
        if self.is_implicit:
            met_rows: list[list[float | None]] = [[None] * len(items) for items in items_rows]
            rewards = [self.fn([it.points for it in items], mets, rating=r, **self.config.params)
                       for items, mets, r in zip(items_rows, met_rows, verdicts)]
            n_failed = sum(r is None for r in verdicts)
            stats = {"judge_failures": float(n_failed), "judge_failure_rate": n_failed / max(len(verdicts), 1)}
        else:
            met_rows = [binarize(m) for m in verdicts] if self.config.binarize else verdicts
            rewards = self._score(items_rows, met_rows, groups)
            stats = verdict_metrics(items_rows, met_rows, self.config.log_tag_prefixes)
        rewards, n_flat = self._flatten(rewards, groups)
        if log_metric is not None:  # the same pooled values on every process: trl's average keeps them
            metrics = {**stats, **reward_metrics(rewards, len(groups), n_flat), **rank_metrics(rewards, shares)}
            for key, value in metrics.items():
                log_metric(f"rewards/{self.__name__}/{key}", value)
        if log_extra is not None and not self.is_implicit:  # per row: trl gathers these columns itself
            log_extra(f"{self.__name__}/ungraded", [sum(m is None for m in mets) for mets in local])
        return own_slice(rewards, shares, rank)

    def close(self) -> None:
        """Release the judge this reward built (its HTTP client or model, and its cache)."""
        if self._owns_judge and hasattr(self.judge, "close"):
            self.judge.close()

    # steps -----------------------------------------------------------------------------------
    def _grade(self, convs: list[Conversation], items_rows: list[list[RubricItem]]) -> list[list[float | None]]:
        keys, unique = _unique_jobs(convs, items_rows)
        verdicts = grade_batch(self.judge, unique, concurrency=self.config.concurrency)
        return [[v.met for v in verdicts[k]] for k in keys]

    def _rate(self, convs: list[Conversation], items_rows: list[list[RubricItem]]) -> list[float | None]:
        judge = self.judge
        keys, unique = _unique_jobs(convs, items_rows)
        workers = self.config.concurrency or getattr(judge, "concurrency", 1) or 1
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(unique))),
                                thread_name_prefix="likert") as pool:
            ratings = list(pool.map(lambda job: judge.rate(*job), unique))
        return [ratings[k] for k in keys]

    def _score(self, items_rows: list[list[RubricItem]], met_rows: list[list[float | None]],
               groups: list[list[int]]) -> list[float | None]:
        met_rows = [self._enough_graded(mets) for mets in met_rows]
        params = self.config.params
        if self.config.is_group:
            out: list[float | None] = [None] * len(met_rows)
            for rows in groups:
                points = [it.points for it in items_rows[rows[0]]]
                for i, value in zip(rows, self.fn(points, [met_rows[i] for i in rows], **params)):
                    out[i] = value
            return out
        return [self.fn([it.points for it in items], mets,
                        **({"tags": [list(it.tags) for it in items]} if self.takes_tags else {}), **params)
                for items, mets in zip(items_rows, met_rows)]

    def _enough_graded(self, mets: list[float | None]) -> list[float | None]:
        # Below the threshold the row is treated as wholly ungraded, so every reward gives None.
        graded = sum(m is not None for m in mets)
        return mets if graded >= self.config.min_graded_frac * len(mets) else [None] * len(mets)

    def _flatten(self, rewards: list[float | None], groups: list[list[int]]) -> tuple[list[float | None], int]:
        if self.config.min_group_spread <= 0:
            return rewards, 0
        out, n_flat = list(rewards), 0
        for rows in groups:
            flat, flattened = flatten_low_spread([rewards[i] for i in rows], self.config.min_group_spread)
            n_flat += flattened
            for i, value in zip(rows, flat):
                out[i] = value
        return out, n_flat


# helpers -------------------------------------------------------------------------------------
def parse_rubric(raw: Any, row: int) -> list[RubricItem]:
    """One row's ``rubrics`` column as RubricItems, validated (errors name the row and field).

    >>> parse_rubric([{"criterion": "Advises ECG", "points": 5, "tags": None}], 0)
    [RubricItem(criterion='Advises ECG', points=5.0, tags=(), title=None)]
    """
    def fail(msg: str, fld: str | None = None) -> DataError:
        return DataError(msg, field=f"row {row}: {fld or 'rubrics'}")

    if not isinstance(raw, (list, tuple)) or not raw:
        raise fail("must be a non-empty list of {criterion, points, tags}")
    return [it if isinstance(it, RubricItem) else parse_item(it, f"rubrics[{j}]", fail)
            for j, it in enumerate(raw)]


def to_conversation(prompt: Any, completion: Any) -> Conversation:
    """The conversation a judge grades: the prompt's messages, then the response as the last turn.

    Prompts and completions may be plain strings or chat messages (trl's two dataset formats).

    >>> to_conversation("BP 150/95?", [{"role": "assistant", "content": "That is high."}])
    [{'role': 'user', 'content': 'BP 150/95?'}, {'role': 'assistant', 'content': 'That is high.'}]
    """
    conv = [_message(m) for m in prompt] if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    if isinstance(completion, list):
        reply = [_message(m) for m in completion]
        if not reply or reply[-1]["role"] != "assistant":
            reply.append({"role": "assistant", "content": ""})
        return conv + reply
    return conv + [{"role": "assistant", "content": "" if completion is None else str(completion)}]


def _message(m: Any) -> dict[str, str]:
    if not isinstance(m, dict) or "role" not in m:
        raise DataError(f"a chat message must be a {{role, content}} mapping, got {m!r:.80}")
    content = m.get("content")
    if isinstance(content, list):  # multimodal parts: the judge reads the text ones
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return {"role": str(m["role"]), "content": "" if content is None else str(content)}


def _unique_jobs(convs: list[Conversation], items_rows: list[list[RubricItem]]):
    # Identical short completions are common in a GRPO group; grade each distinct one once.
    index: dict[str, int] = {}
    unique: list[tuple[Conversation, list[RubricItem]]] = []
    keys = []
    for conv, items in zip(convs, items_rows):
        key = json.dumps([conv, [it.to_dict() for it in items]], sort_keys=True)
        if key not in index:
            index[key] = len(unique)
            unique.append((conv, items))
        keys.append(index[key])
    return keys, unique


def _group_keys(prompts: Sequence[Any], items_rows: list[list[RubricItem]]) -> list[str]:
    # A group = same prompt and same rubric, wherever its rows sit in the batch.
    return [json.dumps([p, [it.to_dict() for it in items]], sort_keys=True, default=str)
            for p, items in zip(prompts, items_rows)]


def _keyword_params(fn: Callable) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
