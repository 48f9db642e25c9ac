"""Whole GRPO groups when training runs on several processes.

Under ``accelerate launch`` trl hands each process only its own completions: with
``per_device_train_batch_size: 2`` and ``num_generations: 4`` on two processes, every group of 4
is split 2 + 2. trl gathers the rewards before it normalises them per group, but a reward that
looks at the group itself (a group reward like ``rvpo``, the ``min_group_spread`` filter, the
logged hit rates and group counts) would see half-groups. So each process grades its own rows
(the judge work stays split), then the verdicts are pooled here, in rank order, which is the
order trl's own ``gather`` uses; every process then scores the same whole groups and keeps its
own slice.

Every process must call :func:`gather_rows` at the same point (trl calls the reward functions in
lockstep on every rank). Outside torch.distributed, or with one process, nothing is exchanged.
"""

from __future__ import annotations

from typing import Any, Sequence


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes) from torch.distributed; (0, 1) when it is not
    initialised (a plain ``edgemed train`` or a test).

    >>> rank_and_world()
    (0, 1)
    """
    try:
        import torch.distributed as dist
    except ImportError:  # torch-free installs still score rewards
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rows(*columns: Sequence[Any]) -> tuple[list[list[Any]], list[int], int]:
    """Each column's rows from every process, concatenated in rank order; also each rank's row
    count and this process's rank, so ``rows[sum(shares[:rank]):][:shares[rank]]`` are its own.

    >>> gather_rows(["a", "b"], [1.0, 0.0])
    ([['a', 'b'], [1.0, 0.0]], [2], 0)
    """
    rank, world = rank_and_world()
    local = [list(c) for c in columns]
    if world == 1:
        return local, [len(local[0]) if local else 0], 0
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, local)  # pickled objects: verdicts, rubric items, group keys
    pooled = [[row for part in parts for row in part[i]] for i in range(len(local))]
    return pooled, [len(part[0]) if part else 0 for part in parts], rank


def own_slice(rows: Sequence[Any], shares: Sequence[int], rank: int) -> list[Any]:
    """This process's rows out of the pooled ones.

    >>> own_slice(["r0a", "r0b", "r1a", "r1b", "r1c"], shares=[2, 3], rank=1)
    ['r1a', 'r1b', 'r1c']
    """
    start = sum(shares[:rank])
    return list(rows[start:start + shares[rank]])
