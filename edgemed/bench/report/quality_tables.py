"""report.md's quality sections: metrics that move at every scale, the paper's keyword heuristic,
per-theme metrics, reward-hacking diagnostics and the paired base-vs-trained tests.

Each function takes the typed scored builds (or comparisons) of ``report.results`` and returns markdown
lines; a section whose figures an older bench.json lacks is left out rather than printed empty.
"""

from __future__ import annotations

from edgemed.bench.quality.compare import verdict
from edgemed.bench.report.headline import MINUS, p_text, signed
from edgemed.bench.report.result_parts import Comparison, JudgeFigures, PaperScore, TargetResult

T = TargetResult.parse  # the doctests' shorthand: a bench.json target row, typed


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


METRIC_LABELS = {"unclipped_score": "unclipped score", "hit_rate": "hit rate (positive criteria)",
                 "pitfall_rate": "pitfall rate", "answer_tokens": "answer tokens",
                 "truncation": "truncation rate (answer hit the cap)", "distinct_2": "distinct-2",
                 "repeated_sentences": "repeated-sentence rate"}
# Metrics read in plain words other than helped / made it worse: (word when B − A > 0, word when < 0).
NEUTRAL_WORDS = {"answer_tokens": ("longer", "shorter"), "truncation": ("cut off more often", "cut off less often"),
                 "distinct_2": ("more varied", "more repetitive"),
                 "repeated_sentences": ("more repeated sentences", "fewer repeated sentences")}


def _m(x: float | None, spec: str = ".3f") -> str:
    return _f(x, spec).replace("-", MINUS)


def _ci(x: float | None, lo: float | None, hi: float | None, spec: str = ".3f") -> str:
    return f"{_m(x, spec)} [{_m(lo, spec)}, {_m(hi, spec)}]"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def scale_section(scored: list[TargetResult], flag=lambda t: t.label) -> list[str]:
    """Per-build metrics that move even when every clipped score is 0 (absent in old bench.json: no table).

    >>> t = T({"label": "b/x", "quality": {"max_new_tokens": 80, "metrics": {"unclipped": -0.2, "unclipped_ci_low": -0.3,
    ...      "unclipped_ci_high": -0.1, "clipped": 0.0, "clipped_std": 0.0, "hit_rate": 0.25, "pos_met": 5,
    ...      "pos_judged": 20, "pitfall_rate": 0.5, "neg_met": 2, "neg_judged": 4, "mean_tokens": 80.0,
    ...      "mean_words": 60.0, "truncation_rate": 1.0, "n_truncated": 3, "n": 3, "judge_failures": 0}}})
    >>> scale_section([t])[-1]
    '| b/x | −0.200 [−0.300, −0.100] | 0.000 ± 0.000 | 0.250 (5/20) | 0.500 (2/4) | 80 / 60 | 100% (3/3) | 0 |'
    """
    rows = [t for t in scored if t.quality.metrics.n is not None]
    if not rows:
        return []
    cap = rows[0].quality.max_new_tokens
    lines = ["", "### Metrics that move at every scale", "",
             "Unclipped = mean of per-example HealthBench scores without clipping (pitfalls can take it below 0), "
             "95% bootstrap CI. Hit rate = met / judged positive criteria; pitfall rate = met / judged negative "
             "criteria (lower is better). Truncated = the answer used the whole "
             f"{cap or 'max_new_tokens'}-token budget. Criteria the judge failed on are skipped and counted.", "",
             "| build | unclipped score [95% CI] | clipped ± std | hit rate (met/judged) | "
             "pitfall rate (met/judged) | "
             "mean answer tokens / words | truncated | judge failures |", "|---|---|---|---|---|---|---|---|"]
    for t in rows:
        m = t.quality.metrics
        g = lambda x: "–" if x is None else x  # noqa: E731
        count = lambda x: x if not isinstance(x, float) else _f(x, ".0f" if x.is_integer() else ".1f")  # noqa: E731
        lines.append(
            f"| {flag(t)} | {_ci(m.unclipped, m.unclipped_ci_low, m.unclipped_ci_high)} | "
            f"{_f(m.clipped)} ± {_f(m.clipped_std)} | "
            f"{_f(m.hit_rate)} ({count(g(m.pos_met))}/{g(m.pos_judged)}) | "
            f"{_f(m.pitfall_rate)} ({count(g(m.neg_met))}/{g(m.neg_judged)}) | "
            f"{_f(m.mean_tokens, '.0f')} / {_f(m.mean_words, '.0f')} | "
            f"{_pct(m.truncation_rate)} ({g(m.n_truncated)}/{g(m.n)}) | {g(m.judge_failures)} |")
    return lines


def keyword_section(scored: list[TargetResult], flag=lambda t: t.label) -> list[str]:
    """The paper's own no-judge evaluation beside the judge-based paper metrics, clearly labelled.

    >>> t = T({"label": "b/x", "quality": {"paper": {"accuracy": 0.5, "f1": 2 / 3, "n": 4},
    ...      "paper_keyword": {"accuracy": 0.25, "f1": 0.4, "n": 4}}})
    >>> keyword_section([t])[-1]
    '| b/x | 0.500 / 0.667 (n=4) | 0.250 / 0.400 (n=4) |'
    """
    rows = [t for t in scored if t.quality.keyword]
    if not rows:
        return []
    lines = ["", "### Paper's metrics: judge-based vs the paper's keyword heuristic (no judge)", "",
             "The paper's released code (`evaluate_completion`) scores with no judge at all: of the first 5 rubric "
             "items, a positive one earns half its points when the answer is over 100 characters and contains "
             "should/recommend/important/seek/care, a negative one counts when the answer contains "
             "\"unsafe\"/\"harmful\"; pass = normalised score > 0.5. Its published accuracy, 0.362 → 0.502 (base → "
             "trained), was measured this way; compare with the keyword column, not the judge-based one.", "",
             "| build | judge-based paper accuracy / F1 | paper's keyword heuristic (no judge) accuracy / F1 |",
             "|---|---|---|"]
    for t in rows:
        p, k = t.quality.paper or PaperScore(), t.quality.keyword
        n = lambda x: "–" if x.n is None else x.n  # noqa: E731
        lines.append(f"| {flag(t)} | {_f(p.accuracy)} / {_f(p.f1)} (n={n(p)}) | "
                     f"{_f(k.accuracy)} / {_f(k.f1)} (n={n(k)}) |")
    return lines


def theme_metric_sections(scored: list[TargetResult]) -> list[str]:
    """Per theme (HealthBench ``theme:*`` tags): unclipped score, hit rate and pitfall rate of each build.

    >>> t = T({"label": "b/x", "quality": {"per_theme_metrics": {"theme:hedging": {"n": 2, "unclipped": -0.1,
    ...      "hit_rate": 0.3, "pitfall_rate": None}}}})
    >>> theme_metric_sections([t])[5]
    '| b/x | −0.10 (n=2) |'
    """
    names = sorted({k for t in scored for k in t.quality.per_theme_metrics})
    if not names:
        return []
    lines = []
    for key, title in (("unclipped", "unclipped score"), ("hit_rate", "hit rate of positive criteria"),
                       ("pitfall_rate", "rate of pitfalls present")):
        lines += ["", f"### Per theme: {title}", "", "| build | " + " | ".join(n.split(":", 1)[1] for n in names)
                  + " |", "|---|" + "---|" * len(names)]
        for t in scored:
            cells = [t.quality.per_theme_metrics.get(n) for n in names]
            lines.append(f"| {t.label} | " + " | ".join(
                f"{_m(getattr(c, key), '.2f')} (n={c.n})" if c else "–" for c in cells) + " |")
    return lines


def paired_metrics_section(comparisons: list[Comparison]) -> list[str]:
    """Per-prompt paired differences B − A with bootstrap 95% CIs and sign tests, metric by metric.

    >>> c = Comparison(a="base/x", b="trained/x", metrics={"hit_rate": {"n": 10, "mean_a": 0.2, "mean_b": 0.3,
    ...      "diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "n_up": 8, "n_down": 1, "n_tie": 1, "sign_p": 0.039}})
    >>> paired_metrics_section([c])[-1]
    '| base/x | trained/x | hit rate (positive criteria) | 10 | 0.200 | 0.300 | +0.100 [+0.050, +0.150] | 8 / 1 / 1, p=0.04 | helped |'
    """
    rows = []
    for c in comparisons:
        for name, label in METRIC_LABELS.items():
            m = c.paired(name)
            if not m:
                continue
            spec = ".1f" if name == "answer_tokens" else ".3f"
            if name in NEUTRAL_WORDS:
                up, down = NEUTRAL_WORDS[name]
                word = up if m.ci_low > 0 else down if m.ci_high < 0 else "no clear change"
            else:
                word = verdict(m.ci_low, m.ci_high, higher_is_better=name != "pitfall_rate")
            rows.append(f"| {c.a} | {c.b} | {label} | {m.n} | {_m(m.mean_a, spec)} | "
                        f"{_m(m.mean_b, spec)} | {signed(m.diff, spec)} [{signed(m.ci_low, spec)}, "
                        f"{signed(m.ci_high, spec)}] | {m.n_up} / {m.n_down} / {m.n_tie}, "
                        f"{p_text(m.sign_p)} | {word} |")
    if not rows:
        return []
    return ["", "### Base vs trained, per prompt (paired bootstrap 95% CI, exact sign test)", "",
            "Per-prompt means over the prompts where both builds have the metric; B − A = mean per-prompt "
            "difference; up / down / tie = prompts where B is higher / lower / equal.", "",
            "| A | B | metric | n | A | B | B − A [95% CI] | up / down / tie, sign test | reading |",
            "|---|---|---|---|---|---|---|---|---|", *rows]


def diagnostics_section(scored: list[TargetResult], flag=lambda t: t.label) -> list[str]:
    """Reward-hacking diagnostics per build: length, truncation, repetition, and the training judge's
    hit rate beside the evaluation judge's (a reward that rose only by the trainer's judge is suspect).

    >>> t = T({"label": "t/x", "quality": {"metrics": {"mean_tokens": 90.0, "truncation_rate": 0.5, "distinct_2": 0.9,
    ...      "repeated_sentences": 0.0, "hit_rate": 0.2, "pitfall_rate": 0.1},
    ...      "train_judge": {"name": "proxy judge", "hit_rate": 0.4, "pitfall_rate": 0.0}}})
    >>> diagnostics_section([t])[-1]
    '| t/x | 90 | 50% | 0.900 | 0.000 | 0.200 / 0.400 | 0.100 / 0.000 |'
    """
    rows = [t for t in scored if t.quality.metrics.distinct_2 is not None]
    if not rows:
        return []
    train = next((t.quality.train_judge for t in rows if t.quality.train_judge), None)
    train_name = train.name if train else "not graded: same judge, or no training judge given"
    lines = ["", "### Reward-hacking diagnostics", "",
             "A policy can raise its training reward without getting better: by answering longer, repeating "
             "itself, or writing what the training judge likes. Distinct-2 = distinct word bigrams / bigrams "
             "(loops score low); repeated sentences = share of sentences that repeat an earlier one. Hit and "
             f"pitfall rates: evaluation judge / training judge ({train_name}).", "",
             "| build | mean answer tokens | truncated | distinct-2 | repeated sentences | "
             "hit rate eval / train judge | pitfall rate eval / train judge |", "|---|---|---|---|---|---|---|"]
    for t in rows:
        m, tj = t.quality.metrics, t.quality.train_judge or JudgeFigures()
        lines.append(f"| {flag(t)} | {_f(m.mean_tokens, '.0f')} | {_pct(m.truncation_rate)} | {_f(m.distinct_2)} | "
                     f"{_f(m.repeated_sentences)} | {_f(m.hit_rate)} / {_f(tj.hit_rate)} | "
                     f"{_f(m.pitfall_rate)} / {_f(tj.pitfall_rate)} |")
    return lines
