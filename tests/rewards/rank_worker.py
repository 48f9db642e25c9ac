"""One process of the two-rank reward test: join a gloo group, score this rank's share of a fixed
batch, write what the rewards returned and logged.

    python -m tests.rewards.rank_worker RANK WORLD PORT OUT.json

The batch holds two GRPO groups of four; each rank gets two rows of each group, as trl hands out
a group when ``per_device_train_batch_size`` is smaller than ``num_generations``. Judges are
keyword stand-ins, so every verdict can be read off the text.
"""

from __future__ import annotations

import json
import sys

from edgemed import rewards
from edgemed.judges import Judgement

PROMPT_A = [{"role": "user", "content": "I have crushing chest pain. What should I do?"}]
PROMPT_B = [{"role": "user", "content": "Is 150/95 high blood pressure?"}]
RUBRIC_A = [{"criterion": "emergency", "points": 5, "tags": ["category:essential"]},
            {"criterion": "aspirin", "points": 3, "tags": ["category:important"]},
            {"criterion": "wait", "points": -4, "tags": ["category:pitfall"]}]
RUBRIC_B = [{"criterion": "hypertension", "points": 5, "tags": ["category:essential"]},
            {"criterion": "doctor", "points": 2, "tags": []}]
# (prompt, rubric, completion), in rank order: rank 0 holds the first four rows. Group A's halves
# differ little inside rank 0 (explicit 1.0 vs 0.9) but a lot across ranks; group B has a failure.
ROWS = [(PROMPT_A, RUBRIC_A, "emergency aspirin"), (PROMPT_A, RUBRIC_A, "emergency maybe aspirin"),
        (PROMPT_B, RUBRIC_B, "hypertension doctor"), (PROMPT_B, RUBRIC_B, "nothing useful"),
        (PROMPT_A, RUBRIC_A, "just wait"), (PROMPT_A, RUBRIC_A, "emergency"),
        (PROMPT_B, RUBRIC_B, "hypertension"), (PROMPT_B, RUBRIC_B, "FAIL")]
# A per-row reward with the spread filter, a group reward, and the Likert-judged one.
SPECS = [{"name": "explicit", "min_group_spread": 0.15}, {"name": "rvpo", "params": {"k": 0.5}},
         {"name": "implicit"}]


class KeywordJudge:
    """met = 1 if the criterion's word is in the response, 0.6 for 'maybe <word>', None on FAIL."""

    fingerprint = "keyword"
    concurrency = 2

    def grade(self, conversation, items):
        text = conversation[-1]["content"]
        if "FAIL" in text:
            return [Judgement(None, "timeout") for _ in items]
        return [Judgement(0.6 if f"maybe {it.criterion}" in text else float(it.criterion in text))
                for it in items]


class KeywordLikert:
    """A 1-10 rating: 2 + 3 per criterion word found; None on FAIL."""

    concurrency = 2

    def rate(self, conversation, items):
        text = conversation[-1]["content"]
        return None if "FAIL" in text else min(10.0, 2.0 + 3.0 * sum(it.criterion in text for it in items))


def shard(rank: int, world: int) -> list[tuple]:
    """This rank's rows (world 1: all of them)."""
    size = len(ROWS) // world
    return ROWS[rank * size:(rank + 1) * size]


def score(rows: list[tuple], gather: bool = True) -> dict[str, dict]:
    """Call each reward as trl does on ``rows``; its returned rewards and logged metrics by name."""
    out = {}
    for spec in SPECS:
        judge = KeywordLikert() if spec["name"] == "implicit" else KeywordJudge()
        reward = rewards.RubricReward(rewards.RewardConfig.from_dict(spec), judge=judge, gather=gather)
        metrics: dict[str, float] = {}
        values = reward(prompts=[r[0] for r in rows], rubrics=[r[1] for r in rows],
                        completions=[[{"role": "assistant", "content": r[2]}] for r in rows],
                        log_metric=metrics.__setitem__, log_extra=lambda *_: None)
        out[reward.__name__] = {"rewards": values, "metrics": metrics}
    return out


def main(rank: int, world: int, port: int, out_path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        result = score(shard(rank, world))
    finally:
        dist.destroy_process_group()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
