"""How faithful a build is to its reference model, in the statistics llama.cpp's
``llama-perplexity --kl-divergence`` reports, and the gates that read them with their noise.

Pure numpy: no I/O, no torch. Inputs are per position of a teacher-forced text: the reference's and
the build's next-token log-probs (raw logits work too: both are normalised here) and the token that
actually comes next. Per position, as llama.cpp's ``log_softmax(…, kl_divergence_result &)``:

- **KLD** = Σ_v p_ref(v)·(log p_ref(v) − log p_build(v)), i.e. KL(reference ‖ build);
- **Δp** = p_build(t) − p_ref(t) for the actual next token t (negative: the build is less sure of
  the text than the reference);
- **same top**: the two argmaxes agree.

Over positions, as llama.cpp's ``kl_divergence()`` summary prints them: means with llama.cpp's
standard error √((E[x²] − E[x]²)/(n − 1)) (``mean_and_uncertainty``, zero for n ≤ 10); percentiles
by linear interpolation at fraction·(n − 1) of the sorted values (its ``percentile``); same top p
with ±√(p(1 − p)/(n − 1)). ``top1`` is the same agreement count with its Wilson 95 % interval: the
interval the gates read, because it stays inside [0, 1] near 1, where good builds sit.

llama.cpp keeps the base log-probs as 16-bit integers over a 16-nat range and skips terms below
e⁻¹⁶; here the reference is kept in float64 (every vocabulary entry counts) or, for a long text,
float16 (``ReferenceRows``: terms below 6·10⁻⁸ drop), so the two agree to that rounding.

A **gate** reads a statistic's 95 % interval against its bound: *met* when the whole interval is on
the right side, *missed* when the whole interval is on the wrong side, *undecided* when it straddles
the bound (the text is too short to tell; the build is kept, with a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Iterable, NamedTuple

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
ROWS_PER_CHUNK = 256     # rows worked on at once: temporaries stay at 256 × vocab per array

# Threshold key (device profiles, config.DEFAULT_THRESHOLDS) → the held-out statistic it bounds and
# whether the bound is a floor (top-1 ≥ …) or a ceiling (KLD ≤ …).
GATED = {"top1_agreement": ("top1", True), "kl_mean": ("kld_mean", False)}
# Two roundings of the same weights (a LoRA build, the merged build of its quant) disagree with each
# other about as much as each disagrees with fp32 (issue 27: 0.969 top-1 between two faithful q8_0
# builds), so one may lose up to this many times what the other loses before it is worse than noise.
ROUNDING_FACTOR = 2.0


class PositionFigures(NamedTuple):
    """Per-position figures of one build on one text (concatenate texts with ``join``)."""

    kld: np.ndarray       # KL(p_ref ‖ p_build), float64
    dp: np.ndarray        # p_build(next) − p_ref(next), float64
    same_top: np.ndarray  # argmax agreement, bool


class ReferenceRows(NamedTuple):
    """The reference side of a text, prepared once and compared with every build (``compare``).

    ``probs`` may be float16 (the held-out set keeps 6,000 × 49k of them on disk): the figures are
    then those of the rounded distribution renormalised by ``mass``, exact for it, which moves a
    KLD by about 5·10⁻⁴ of itself and drops probabilities below float16's 6·10⁻⁸ (llama.cpp drops
    those below e⁻¹⁶ ≈ 1.1·10⁻⁷).
    """

    probs: np.ndarray     # [n, vocab] p_ref, float64, float32 or float16
    mass: np.ndarray      # [n] Σ probs in float64 (1 up to the storage's rounding)
    plogp: np.ndarray     # [n] Σ probs·ln probs in float64
    top: np.ndarray       # [n] argmax of p_ref
    p_next: np.ndarray    # [n] p_ref of the text's next token, renormalised

    def rows(self, s: slice) -> "ReferenceRows":
        return ReferenceRows(*(column[s] for column in self))


def prepare(ref_logprobs: np.ndarray, next_tokens: np.ndarray, dtype=np.float64) -> ReferenceRows:
    """The reference's ``[n, vocab]`` log-probs (or logits) as ``ReferenceRows`` stored in ``dtype``
    (float64: exact; float32 or float16: the build's rows are then compared in float32, twice as fast)."""
    probs = np.empty(ref_logprobs.shape, dtype=dtype)
    for s in range(0, len(ref_logprobs), ROWS_PER_CHUNK):
        probs[s:s + ROWS_PER_CHUNK] = np.exp(log_softmax(ref_logprobs[s:s + ROWS_PER_CHUNK]))
    return summarize_reference(probs, next_tokens)


def summarize_reference(probs: np.ndarray, next_tokens: np.ndarray) -> ReferenceRows:
    """``ReferenceRows`` around stored probabilities (``probs`` is kept as it is: a memory map stays one)."""
    n = len(probs)
    if len(next_tokens) != n:
        raise ValueError(f"{len(next_tokens)} next tokens for {n} positions")
    mass, plogp, top, p_next = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64), np.empty(n)
    work = np.float64 if probs.dtype == np.float64 else np.float32  # float16 holds no more than float32
    for s in range(0, n, ROWS_PER_CHUNK):
        rows = slice(s, s + ROWS_PER_CHUNK)
        p = np.asarray(probs[rows], dtype=work)
        mass[rows] = p.sum(-1, dtype=np.float64)
        plogp[rows] = (p * np.log(np.maximum(p, np.finfo(work).tiny))).sum(-1, dtype=np.float64)
        top[rows] = p.argmax(-1)
        p_next[rows] = p[np.arange(len(p)), np.asarray(next_tokens[rows])] / mass[rows]
    return ReferenceRows(probs, mass, plogp, top, p_next)


def compare(ref: ReferenceRows, build_logprobs: np.ndarray, next_tokens: np.ndarray) -> PositionFigures:
    """KLD, Δp and same-top per position of a build's ``[n, vocab]`` log-probs (or logits) against
    prepared reference rows. With p = probs/mass and the build's log q = x − logsumexp(x):
    KL(p ‖ q) = Σ p·ln p − Σ p·x + logsumexp(x), one pass over the build's rows."""
    if ref.probs.shape != build_logprobs.shape:
        raise ValueError(f"reference rows {ref.probs.shape} and build rows {build_logprobs.shape} differ "
                         "(a different vocabulary size?)")
    n = len(build_logprobs)
    work = np.float64 if ref.probs.dtype == np.float64 else np.float32
    kld, dp, same = np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    for s in range(0, n, ROWS_PER_CHUNK):
        rows = slice(s, s + ROWS_PER_CHUNK)
        x = np.asarray(build_logprobs[rows], dtype=work)
        top = x.argmax(-1)
        x = x - x[np.arange(len(x)), top][:, None]  # max 0: exp cannot overflow
        lse = np.log(np.exp(x).sum(-1, dtype=np.float64))
        mass = ref.mass[rows]
        dot = (np.asarray(ref.probs[rows], dtype=work) * x).sum(-1, dtype=np.float64)
        # ≥ 0 in exact arithmetic; clip the last bits of rounding
        kld[rows] = np.maximum(ref.plogp[rows] / mass - np.log(mass) - dot / mass + lse, 0.0)
        x_next = x[np.arange(len(x)), np.asarray(next_tokens[rows])].astype(np.float64)
        dp[rows] = np.exp(x_next - lse) - ref.p_next[rows]
        same[rows] = top == ref.top[rows]
    return PositionFigures(kld, dp, same)


def position_figures(ref_logprobs: np.ndarray, build_logprobs: np.ndarray,
                     next_tokens: np.ndarray) -> PositionFigures:
    """KLD, Δp and same-top per position, from ``[n, vocab]`` reference and build log-probs.

    >>> ref = np.log([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]])
    >>> f = position_figures(ref, ref, np.array([0, 1]))
    >>> bool(np.abs(f.kld).max() < 1e-12), bool(np.abs(f.dp).max() < 1e-12), f.same_top.tolist()
    (True, True, [True, True])
    >>> build = np.log([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2]])
    >>> f = position_figures(ref, build, np.array([0, 1]))
    >>> round(float(f.kld[0]), 4), round(float(f.dp[0]), 2), f.same_top.tolist()  # 0.5·ln(3.5)
    (0.6264, -0.5, [False, True])
    """
    if ref_logprobs.shape != build_logprobs.shape:
        raise ValueError(f"reference rows {ref_logprobs.shape} and build rows {build_logprobs.shape} differ "
                         "(a different vocabulary size?)")
    return compare(prepare(ref_logprobs, next_tokens), build_logprobs, next_tokens)


def join(parts: Iterable[PositionFigures]) -> PositionFigures:
    """Several texts' figures as one set of positions.

    >>> a = PositionFigures(np.array([0.1]), np.array([0.0]), np.array([True]))
    >>> join([a, a]).kld.tolist()
    [0.1, 0.1]
    """
    parts = list(parts)
    if not parts:
        return PositionFigures(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool))
    return PositionFigures(*(np.concatenate(column) for column in zip(*parts)))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (idempotent: log-probs come back unchanged).

    >>> np.exp(log_softmax(np.array([[0.0, 0.0]]))).tolist()
    [[0.5, 0.5]]
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error as llama.cpp computes them: √((E[x²] − E[x]²)/(n − 1)), and 0
    for n ≤ 10 (too few to say).

    >>> mean_and_se(np.array([1.0, 3.0] * 6))  # variance 1, n 12: √(1/11)
    (2.0, 0.30151134457776363)
    >>> mean_and_se(np.array([1.0, 3.0]))
    (2.0, 0.0)
    """
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = float(np.mean(values))
    var = float(np.mean(np.square(values))) - mean * mean
    return mean, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0


def percentile(values: np.ndarray, fraction: float) -> float:
    """llama.cpp's percentile: linear interpolation at ``fraction``·(n − 1) of the sorted values.

    >>> percentile(np.array([4.0, 1.0, 3.0, 2.0]), 0.5), percentile(np.array([1.0, 2.0]), 0.999)
    (2.5, 1.999)
    """
    return float(np.quantile(values, fraction)) if len(values) else 0.0


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (95 % by default).

    >>> [round(x, 4) for x in wilson_interval(437, 512)]  # 0.854 on the 512 choosing positions
    [0.8203, 0.8815]
    >>> round(wilson_interval(10, 10)[1], 12), wilson_interval(0, 0)
    (1.0, (0.0, 1.0))
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(build: np.ndarray, other: np.ndarray, z: float = Z95) -> dict[str, float]:
    """Mean of ``build − other`` over the same positions (two builds against one reference) with its
    95 % interval mean ± z·sd/√n, sd the per-position differences' sample standard deviation (n − 1).
    Pass ``same_top`` (as 0/1: a top-1 gain) or ``kld`` (a KLD change). Pairing removes what the
    positions share: the interval is far narrower than the two builds' own intervals would give.

    >>> d = paired_difference(np.array([1, 1, 0, 1] * 25, dtype=bool), np.array([1, 0, 0, 1] * 25, dtype=bool))
    >>> d["mean"], round(d["low"], 4), round(d["high"], 4), d["n"]  # 25 of 100 positions gained
    (0.25, 0.1647, 0.3353, 100)
    >>> paired_difference(np.zeros(3), np.zeros(3))
    {'mean': 0.0, 'low': 0.0, 'high': 0.0, 'n': 3}
    """
    diff = np.asarray(build, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    n = len(diff)
    if n == 0:
        raise ValueError("no positions to compare")
    mean = float(diff.mean())
    half = z * float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


@dataclass
class Statistics:
    """One build's fidelity over a text's positions: llama.cpp's KLD / Δp / same-top summary."""

    n_positions: int
    kld_mean: float
    kld_mean_se: float
    kld_median: float
    kld_p99: float
    kld_p999: float
    kld_max: float
    dp_mean: float       # mean Δp: the build's probability of the text's token minus the reference's
    dp_mean_se: float
    dp_p01: float        # 1st percentile of Δp: where the build most underrates the text
    dp_median: float
    dp_p99: float
    dp_rms: float
    same_top_p: float
    same_top_p_se: float
    top1: float          # = same_top_p; its Wilson 95 % interval below is what the gates read
    top1_ci_low: float
    top1_ci_high: float

    def interval(self, statistic: str, z: float = Z95) -> tuple[float, float]:
        """The 95 % interval of ``top1`` (Wilson) or ``kld_mean`` (mean ± z·se)."""
        if statistic == "top1":
            return self.top1_ci_low, self.top1_ci_high
        if statistic == "kld_mean":
            return self.kld_mean - z * self.kld_mean_se, self.kld_mean + z * self.kld_mean_se
        raise ValueError(f"no interval for {statistic!r} (gated: top1, kld_mean)")

    def rounded(self, digits: int = 6) -> "Statistics":
        return Statistics(**{f.name: getattr(self, f.name) if f.name == "n_positions"
                             else round(float(getattr(self, f.name)), digits) + 0.0  # no "-0.0"
                             for f in fields(self)})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Statistics":
        """From the manifest's JSON; a missing or non-numeric field raises ``KeyError``/``TypeError``
        naming it (the manifest reader turns that into a DataError naming the file)."""
        out = {}
        for f in fields(cls):
            value = raw[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f.name)
            out[f.name] = int(value) if f.name == "n_positions" else float(value)
        return cls(**out)


def summarize(figures: PositionFigures) -> Statistics:
    """llama.cpp's summary of per-position figures.

    >>> f = PositionFigures(np.linspace(0, 0.2, 101), np.full(101, -0.01), np.arange(101) % 10 != 0)
    >>> s = summarize(f)
    >>> s.n_positions, round(s.kld_mean, 4), round(s.kld_median, 4), round(s.kld_p99, 4), round(s.dp_mean, 4)
    (101, 0.1, 0.1, 0.198, -0.01)
    >>> round(s.top1, 4), round(s.top1_ci_low, 4), round(s.same_top_p_se, 4)  # 90 of 101
    (0.8911, 0.8154, 0.0312)
    """
    kld, dp, same = figures
    n = len(kld)
    kld_mean, kld_se = mean_and_se(kld)
    dp_mean, dp_se = mean_and_se(dp)
    k = int(np.count_nonzero(same))
    top = k / n if n else 0.0
    low, high = wilson_interval(k, n)
    return Statistics(
        n_positions=n, kld_mean=kld_mean, kld_mean_se=kld_se, kld_median=percentile(kld, 0.5),
        kld_p99=percentile(kld, 0.99), kld_p999=percentile(kld, 0.999),
        kld_max=float(kld.max()) if n else 0.0, dp_mean=dp_mean, dp_mean_se=dp_se,
        dp_p01=percentile(dp, 0.01), dp_median=percentile(dp, 0.5), dp_p99=percentile(dp, 0.99),
        dp_rms=math.sqrt(float(np.mean(np.square(dp)))) if n else 0.0, same_top_p=top,
        same_top_p_se=math.sqrt(top * (1 - top) / (n - 1)) if n > 1 else 0.0,
        top1=top, top1_ci_low=low, top1_ci_high=high)


# --- gates -----------------------------------------------------------------------------------------

def judge(low: float, high: float, bound: float, at_least: bool) -> str:
    """``met``, ``missed`` or ``undecided``: where a statistic's interval [low, high] lies against
    its bound (a floor when ``at_least``, else a ceiling).

    >>> [judge(lo, hi, 0.85, at_least=True) for lo, hi in ((0.86, 0.9), (0.8, 0.84), (0.84, 0.87))]
    ['met', 'missed', 'undecided']
    >>> judge(0.01, 0.02, 0.05, at_least=False), judge(0.06, 0.08, 0.05, at_least=False)
    ('met', 'missed')
    """
    good, bad = (low >= bound, high < bound) if at_least else (high <= bound, low > bound)
    return "met" if good else "missed" if bad else "undecided"


def gates(stats: Statistics, thresholds: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each bound of ``thresholds`` that a held-out statistic answers: which statistic, its 95 %
    interval and the verdict.

    >>> s = summarize(PositionFigures(np.full(4096, 0.02), np.zeros(4096), np.arange(4096) % 20 != 0))
    >>> g = gates(s, {"top1_agreement": 0.95, "kl_mean": 0.05, "greedy_match_len_mean": 8})
    >>> sorted(g), g["top1_agreement"]["statistic"], g["top1_agreement"]["verdict"], g["kl_mean"]["verdict"]
    (['kl_mean', 'top1_agreement'], 'top1', 'undecided', 'met')
    """
    out = {}
    for key, bound in thresholds.items():
        if key not in GATED:
            continue
        statistic, at_least = GATED[key]
        low, high = stats.interval(statistic)
        out[key] = {"statistic": statistic, "bound": float(bound), "at_least": at_least,
                    "low": round(low, 6), "high": round(high, 6),
                    "verdict": judge(low, high, bound, at_least)}
    return out


def overall(verdicts: Iterable[str]) -> str:
    """An artifact's status from its verdicts: ``failed`` if any bound is missed, else ``undecided``
    if any is undecided, else ``passed``.

    >>> overall(["met", "undecided"]), overall(["missed", "undecided"]), overall(["met"]), overall([])
    ('undecided', 'failed', 'passed', 'passed')
    """
    verdicts = list(verdicts)
    return "failed" if "missed" in verdicts else "undecided" if "undecided" in verdicts else "passed"


def within_noise(build: Statistics, other: Statistics) -> dict[str, Any]:
    """Is ``build`` as faithful to the reference as ``other`` (both measured against it on the same
    text), within noise? Used for a base + LoRA build against the merged build of the same quant:
    two roundings of the same weights, compared by what each loses against fp32, never by how often
    they agree with each other.

    Two noises: rounding (two roundings of the same weights disagree about as much as each does with
    fp32, so either may lose up to ``ROUNDING_FACTOR`` times what the other loses) and sampling (the
    95 % intervals). Missed only when ``build``'s interval lies wholly beyond that: its top-1 loss
    (1 − top-1) or its mean KLD more than ``ROUNDING_FACTOR`` times ``other``'s, even at the
    favourable ends of both intervals. A build that loses less is always within noise.

    >>> def stats(top1, kld):  # 4096 positions
    ...     n = 4096; k = round(top1 * n)
    ...     return summarize(PositionFigures(np.resize([kld * 0.5, kld * 1.5], n), np.zeros(n),
    ...                                      np.arange(n) < k))
    >>> within_noise(stats(0.961, 0.0050), stats(0.969, 0.0053))["verdict"]  # the q8_0 LoRA of issue 27
    'met'
    >>> within_noise(stats(0.80, 0.12), stats(0.969, 0.0053))["verdict"]     # adapter lost its way
    'missed'
    """
    _, hi_b = build.interval("top1")
    lo_o, _ = other.interval("top1")
    klo_b, _ = build.interval("kld_mean")
    _, khi_o = other.interval("kld_mean")
    worse = 1 - hi_b > ROUNDING_FACTOR * (1 - lo_o) or klo_b > ROUNDING_FACTOR * khi_o
    return {"top1_diff": round(build.top1 - other.top1, 6),
            "kld_mean_diff": round(build.kld_mean - other.kld_mean, 6),
            "verdict": "missed" if worse else "met"}
