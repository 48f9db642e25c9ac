"""One figure of a training run: is the reward rising, and do groups still carry a signal?

Panels: reward mean ± std per step; the fraction of groups whose rewards are all equal (those
give GRPO no gradient); the hit rates of rubric criteria when the reward functions log them
(``*hit_rate*`` metrics, and ``*satisfied/category:*`` for RaR categories).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgemed.io import atomic_path


def hit_rate_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Logged metrics that are criterion hit rates, in first-seen order.

    >>> hit_rate_keys([{"reward": 1, "rewards/c/hit_rate/positive": 0.5, "rewards/c/satisfied/category:essential": 0.1,
    ...                 "rewards/c/satisfied/axis:accuracy": 0.3}])
    ['rewards/c/hit_rate/positive', 'rewards/c/satisfied/category:essential']
    """
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if ("hit_rate" in k or "satisfied/category:" in k) and k not in keys)
    return keys


def plot_training_log(rows: list[dict[str, Any]], path: str | Path, title: str = "GRPO training") -> Path:
    """Write the figure to ``path`` (PNG) atomically and return the path.

    >>> import tempfile, pathlib
    >>> rows = [{"step": s, "reward": s / 10, "reward_std": 0.1, "frac_reward_zero_std": 0.0} for s in (1, 2, 3)]
    >>> rows[1]["reward"] = rows[1]["reward_std"] = None
    >>> plot_training_log(rows, pathlib.Path(tempfile.mkdtemp()) / "log.png").stat().st_size > 1000
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    hits = hit_rate_keys(rows)
    panels = 3 if hits else 2
    fig, axes = plt.subplots(panels, 1, figsize=(7, 2.6 * panels), sharex=True)
    steps = [r["step"] for r in rows]

    mean = [_num(r.get("reward")) for r in rows]
    std = [0.0 if math.isnan(v) else v for v in (_num(r.get("reward_std")) for r in rows)]
    ax = axes[0]
    ax.plot(steps, mean, marker="o", ms=3, label="reward mean")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.25,
                    label="± std within the step's completions")
    ax.set_ylabel("reward")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)

    ax = axes[1]
    ax.plot(steps, [_num(r.get("frac_reward_zero_std")) for r in rows], marker="o", ms=3, color="tab:red")
    ax.set_ylabel("frac groups\nzero std")
    ax.set_ylim(-0.05, 1.05)

    if hits:
        ax = axes[2]
        for key in hits:
            ax.plot(steps, [_num(r.get(key)) for r in rows], marker=".", label="/".join(key.split("/")[-2:]))
        ax.set_ylabel("criterion\nhit rate")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(loc="best", fontsize=7, ncol=2)
    axes[-1].set_xlabel("step")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def _num(value: Any) -> float:
    # A step whose rewards were all None logs None; NaN leaves a gap in the line instead.
    return math.nan if value is None else float(value)
