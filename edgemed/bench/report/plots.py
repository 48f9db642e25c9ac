"""PNG plots of a bench report: quality vs decode speed (Pareto), size vs quality, fidelity vs speed,
held-out KLD vs size, latency bars.

Inputs are the typed ``targets`` of bench.json, so plots can be redrawn from a finished report
(``write_plots(read_bench("bench.json"), out)``, ``read_bench`` from ``report.results``) without re-running.
"""

from __future__ import annotations

from pathlib import Path

from edgemed.bench.layout import PLOTS
from edgemed.bench.report.results import BenchResults, Rate, TargetResult
from edgemed.io import atomic_path

MARKERS = {"torch": "s", "onnxruntime": "^", "onnxruntime-genai": "D", "llama.cpp": "o"}


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes (higher is better on both), sorted by x.

    >>> pareto_front([(1, 5), (2, 4), (3, 1), (2, 2), (0.5, 5)])
    [(1, 5), (2, 4), (3, 1)]
    """
    front = [p for p in points
             if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def _score(t: TargetResult) -> tuple[float | None, float]:
    return (t.quality.score, t.quality.std or 0.0) if t.quality else (None, 0.0)


def _quality_scatter(plt, points, xlabel: str, judge: str, title: str):
    """One marker per build with its error bars: (target, x, x_err, score, score_std)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t, x, xerr, y, yerr in points:
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=MARKERS.get(t.backend, "o"), capsize=3, label=t.label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"HealthBench-heart score ({judge})")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    return fig, ax


def fidelity(t: TargetResult) -> float | None:
    """A build's teacher-forced top-1 agreement with fp32 on the held-out text (where the gates read
    it), or on the choosing prompts for a build measured before the held-out set; fp32 itself is 1.

    >>> fidelity(TargetResult(format="hf")), fidelity(TargetResult(format="gguf", parity={"top1_agreement": 0.9}))
    (1.0, 0.9)
    >>> fidelity(TargetResult(format="gguf", parity={"top1_agreement": 0.9, "heldout": {"top1": 0.85}}))
    0.85
    """
    if t.format == "hf":
        return 1.0
    parity = t.parity or {}
    return (parity.get("heldout") or {}).get("top1", parity.get("top1_agreement"))


def heldout_kld(t: TargetResult) -> tuple[float, float] | None:
    """(mean KLD, its standard error) of a build against fp32 on the held-out text, when measured
    (the fp32 source and outside references have none; a zero KLD cannot sit on a log axis).

    >>> heldout_kld(TargetResult(parity={"heldout": {"kld_mean": 0.08, "kld_mean_se": 0.003}}))
    (0.08, 0.003)
    >>> heldout_kld(TargetResult(format="hf")) is None
    True
    """
    h = (t.parity or {}).get("heldout") or {}
    mean = h.get("kld_mean")
    return (mean, h.get("kld_mean_se") or 0.0) if mean else None


def write_plots(report: BenchResults, out: Path) -> list[Path]:
    """Write the plots this report has data for; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = report.targets
    judge = (report.judge and report.judge.name) or "judge"
    paths = []

    speed = [(t, t.latency.tg) for t in targets if t.latency and t.latency.tg]
    scored = [(t, *_score(t)) for t in targets if _score(t)[0] is not None]

    # Quality vs decode speed, with the Pareto front: which build to ship for a speed budget.
    both = [(t, tg, s, sd) for (t, tg) in speed for (u, s, sd) in scored if u.label == t.label]
    if both:
        fig, ax = _quality_scatter(plt, [(t, tg.avg_ts, tg.stddev_ts, s, sd) for t, tg, s, sd in both],
                                   "decode tok/s (higher is better)", judge, "Quality vs decode speed")
        front = pareto_front([(tg.avg_ts, s) for _, tg, s, _ in both])
        ax.plot(*zip(*front), "k--", lw=0.8, alpha=0.6, label="Pareto front")
        ax.legend(fontsize=7, loc="best")
        paths.append(_save(fig, out / PLOTS["quality_vs_speed"]))
        plt.close(fig)

    # Size vs quality: what each byte saved costs in score.
    if scored:
        fig, ax = _quality_scatter(plt, [(t, t.bytes / 2**20, None, s, sd) for t, s, sd in scored],
                                   "artifact size (MiB, log)", judge, "Size vs quality")
        ax.set_xscale("log")
        paths.append(_save(fig, out / PLOTS["size_vs_quality"]))
        plt.close(fig)

    # Fidelity vs speed vs size, every timed build in one picture (the torch fp32 source is top-1 = 1).
    frontier = [(t, tg.avg_ts, fidelity(t)) for t, tg in speed if fidelity(t) is not None]
    if frontier:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for t, x, y in frontier:
            ax.scatter(x, y, s=max(12.0, t.bytes / 2**20), alpha=0.55, marker=MARKERS.get(t.backend, "o"))
            ax.annotate(f"{t.label} ({t.bytes / 2**20:.0f} MiB)", (x, y), fontsize=6,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel("decode tok/s (higher is better)")
        ax.set_ylabel("top-1 agreement with fp32 (held-out text)")
        ax.set_title("Fidelity vs decode speed; marker area ∝ size")
        paths.append(_save(fig, out / PLOTS["fidelity_speed_size"]))
        plt.close(fig)

    # Held-out KLD vs size: llama.cpp's fidelity statistic against what each byte saved costs.
    kld = [(t, h) for t in targets if (h := heldout_kld(t)) is not None]
    if kld:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for t, (mean, se) in kld:
            ax.errorbar(t.bytes / 2**20, mean, yerr=2 * se, fmt=MARKERS.get(t.backend, "o"), capsize=3, label=t.label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("artifact size (MiB, log)")
        ax.set_ylabel("mean KLD vs fp32, held-out heart text (log; ± 2 SE)")
        ax.set_title("Fidelity vs size (lower is more faithful)")
        ax.legend(fontsize=7, loc="best")
        paths.append(_save(fig, out / PLOTS["kld_vs_size"]))
        plt.close(fig)

    # Latency bars with ± std error bars, prefill and decode side by side.
    timed = [t for t in targets if t.latency and (t.latency.tg or t.latency.pp)]
    if timed:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(timed) + 1.8), sharey=True)
        labels = [t.label for t in timed]
        for ax, test, title in ((axes[0], "pp", "prefill"), (axes[1], "tg", "decode")):
            rates = [getattr(t.latency, test) or Rate() for t in timed]
            name = next((r.test for r in rates if r.test), test)
            ax.barh(labels, [r.avg_ts or 0.0 for r in rates], xerr=[r.stddev_ts or 0.0 for r in rates], capsize=3,
                    color="#4c72b0" if test == "pp" else "#dd8452")
            ax.set_xlabel(f"{name} tok/s (mean ± std)")
            ax.set_title(title)
        axes[0].invert_yaxis()
        paths.append(_save(fig, out / PLOTS["latency"]))
        plt.close(fig)
    return paths
