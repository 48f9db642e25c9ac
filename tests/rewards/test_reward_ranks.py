"""Rewards on two processes log exactly what one process logs on the same completions.

Two real gloo processes (tests/rewards/rank_worker.py) each score half of every GRPO group; the
pooled rewards and every logged statistic (hit rates, judge failures, groups, the spread filter,
the group reward) must equal the single-process values. trl averages a logged metric over the
processes, so the per-rank values are compared through that average, as trl would log them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rewards.rank_worker import ROWS, score, shard

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path: Path, world: int = 2) -> list[dict]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"rank{r}.json" for r in range(world)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.rewards.rank_worker", str(r), str(world), str(port),
                               str(outs[r])], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for r in range(world)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * world, "\n".join(logs)
    return [json.loads(o.read_text()) for o in outs]


def same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a == pytest.approx(b))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return score(ROWS), run_ranks(tmp_path_factory.mktemp("ranks"))


def test_pooled_rewards_equal_the_single_process_rewards(results):
    single, ranks = results
    for name, one in single.items():
        pooled = ranks[0][name]["rewards"] + ranks[1][name]["rewards"]
        assert len(pooled) == len(one["rewards"]) == len(ROWS)
        assert all(same(a, b) for a, b in zip(pooled, one["rewards"])), (name, pooled, one["rewards"])


def test_logged_statistics_equal_the_single_process_ones(results):
    single, ranks = results
    for name, one in single.items():
        for key, value in one["metrics"].items():
            per_rank = [r[name]["metrics"][key] for r in ranks]
            assert sum(per_rank) / len(per_rank) == pytest.approx(value), (key, per_rank, value)
        assert one["metrics"][f"rewards/{name}/groups"] == 2
        assert one["metrics"][f"rewards/{name}/mean_group_size"] == 4
        # Besides, each rank's own mean reward: the log's evidence that both ranks were scored.
        extra = set(ranks[0][name]["metrics"]) - set(one["metrics"])
        assert extra == {f"rewards/{name}/rank0/mean", f"rewards/{name}/rank1/mean"}
    assert single["explicit"]["metrics"]["rewards/explicit/frac_groups_flattened"] == 0.0


def test_half_groups_alone_would_log_other_values():
    """The control: without pooling, each rank sees half-groups and the statistics change."""
    whole = score(ROWS)
    halves = [score(shard(r, 2), gather=False) for r in range(2)]
    # rank 0's half of group A spreads 0.1 < 0.15, so the filter flattens it; the whole group is not.
    assert halves[0]["explicit"]["metrics"]["rewards/explicit/frac_groups_flattened"] == 0.5
    assert halves[0]["explicit"]["rewards"][:2] != whole["explicit"]["rewards"][:2]
    # The group reward's z-scores differ on half-groups.
    alone = halves[0]["rvpo"]["rewards"] + halves[1]["rvpo"]["rewards"]
    assert not all(same(a, b) for a, b in zip(alone, whole["rvpo"]["rewards"]))
    assert halves[0]["rvpo"]["metrics"]["rewards/rvpo/mean_group_size"] == 2
    # Hit rates: trl's mean of two per-rank rates is not the rate over all verdicts when the
    # ranks hold different numbers of them (rank 1 has the failed row).
    key = "rewards/explicit/hit_rate/positive"
    assert (halves[0]["explicit"]["metrics"][key] + halves[1]["explicit"]["metrics"][key]) / 2 \
        != pytest.approx(whole["explicit"]["metrics"][key])
