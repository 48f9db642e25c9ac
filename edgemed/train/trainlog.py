"""The training log: one JSONL row per logged step, with where the step's time went.

trl already computes the GRPO signals (reward mean/std, frac_reward_zero_std, per-reward means,
whatever reward functions report through ``log_metric``); this adds wall time split into
generation, reward (judge) and optimisation, plus peak RSS, and writes every row with an fsync so
a killed run keeps its history. After a resume the re-run steps are appended again and readers
keep the last row per step.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from trl import GRPOTrainer

from edgemed import console
from edgemed.io import append_jsonl, read_jsonl_tolerant

GEN, REWARD, STEP, OPT = "timing/generation_s", "timing/reward_s", "timing/step_s", "timing/optimisation_s"


class TimedGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that adds generation and reward wall time to its per-step metrics.

    Both hooks wrap trl 1.16's own methods, so the numbers are what trl itself spends there.
    """

    def _generate(self, prompts, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super()._generate(prompts, *args, **kwargs)
        finally:
            self._metrics[_mode(self)][GEN].append(time.perf_counter() - start)

    def _calculate_rewards(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super()._calculate_rewards(*args, **kwargs)
        finally:
            self._metrics[_mode(self)][REWARD].append(time.perf_counter() - start)


def _mode(trainer: GRPOTrainer) -> str:
    return "train" if trainer.model.training else "eval"


class TrainingLog(TrainerCallback):
    """Appends each log event to ``path`` with step time, optimisation time and peak RSS (main
    process only; the RSS is that process's)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._step_start: float | None = None
        self._step_times: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        previous = read_jsonl_tolerant(self.path)
        if previous:
            append_jsonl(self.path, {"event": "resume", "step": state.global_step, "time": _now(),
                                     "superseded_rows": sum(1 for r in previous
                                                            if r.get("step", 0) > state.global_step)})

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_start is not None:
            self._step_times.append(time.perf_counter() - self._step_start)
            self._step_start = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:  # trl has already averaged metrics across processes
            return
        row: dict[str, Any] = {"step": state.global_step, "time": _now(), **(logs or {})}
        if self._step_times:
            row[STEP] = sum(self._step_times) / len(self._step_times)
            if GEN in row and REWARD in row:
                row[OPT] = max(0.0, row[STEP] - row[GEN] - row[REWARD])
            self._step_times = []
        row["memory/peak_rss_mb"] = peak_rss_mb()
        append_jsonl(self.path, row)


class StepProgress(TrainerCallback):
    """The terminal's view of training: a bar over the optimizer steps with its ETA, the last logged
    reward and completion length after it (trl's own per-step dicts go to the stage log)."""

    def __init__(self):
        self.bar: console.Bar | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = console.Bar(state.max_steps, "train", "step", initial=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "reward" in logs:
            length = logs.get("completions/mean_length")
            self.bar.note(f"reward {logs['reward']:.3f}" + ("" if length is None else f", length {length:.0f}"))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def read_training_log(path: str | Path) -> list[dict[str, Any]]:
    """Step rows (those with a reward), last row per step, in step order.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> for row in ({"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.2},
    ...             {"event": "resume", "step": 1}, {"step": 2, "reward": 0.3}):
    ...     append_jsonl(p, row)
    >>> [(r["step"], r["reward"]) for r in read_training_log(p)]
    [(1, 0.1), (2, 0.3)]
    """
    by_step: dict[int, dict[str, Any]] = {}
    for row in read_jsonl_tolerant(path):
        if "reward" in row and "event" not in row:
            by_step[int(row["step"])] = row
    return [by_step[s] for s in sorted(by_step)]


def reward_stats(rows: list[dict[str, Any]], key: str = "reward") -> dict[str, float | int | None]:
    """Mean and std (over steps) of a logged metric, ignoring NaN, with n.

    >>> reward_stats([{"reward": 1.0}, {"reward": 3.0}, {"reward": float("nan")}, {"reward": None}])
    {'mean': 2.0, 'std': 1.0, 'n': 2}
    """
    values = [float(r[key]) for r in rows if r.get(key) is not None and not math.isnan(float(r[key]))]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"mean": mean, "std": std, "n": len(values)}


def trend_line(steps: int, first: dict[str, Any], last: dict[str, Any], step_s: float | None) -> str:
    """The run in one line: steps, reward at the start and the end, time per step.

    >>> trend_line(2, {"mean": 0.25, "n": 2}, {"mean": 0.5, "n": 2}, 3.0)
    'trained 2 steps: reward 0.250 -> 0.500 (mean of the first and last 2 steps), 3.0 s per step'
    """
    def fmt(x, spec):
        return "n/a" if x is None else format(x, spec)

    return (f"trained {steps} steps: reward {fmt(first.get('mean'), '.3f')} -> {fmt(last.get('mean'), '.3f')} "
            f"(mean of the first and last {last.get('n')} steps), {fmt(step_s, '.1f')} s per step")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes).

    >>> peak_rss_mb() > 0
    True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
