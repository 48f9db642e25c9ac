"""The plain-words lines at the top of every report: did training help, who judged, what to distrust.

Pure functions over a typed bench.json (``report.results.BenchResults``, no I/O), shared by the
bench report.md, ``edgemed bench``'s terminal summary and the pipeline's runs/<name>/report.md, so
all three say the same thing. Old bench.json files without the newer fields still render (the
figures they lack are left out).
"""

from __future__ import annotations

from edgemed.bench.quality.compare import verdict
from edgemed.bench.report.results import BenchResults, Comparison, Judge, Quality, TargetResult, parse_bench

MINUS = "\u2212"


def signed(x: float | None, spec: str = ".3f") -> str:
    """A number with an explicit sign and a true minus sign, ``–`` when missing.

    >>> signed(0.041), signed(-0.01), signed(None)
    ('+0.041', '−0.010', '–')
    """
    if x is None:
        return "–"
    return format(x, "+" + spec).replace("-", MINUS)


def p_text(p: float | None) -> str:
    """A p-value, short: two decimals, more only when it is small.

    >>> p_text(0.3141), p_text(0.0078), p_text(0.00001), p_text(None)
    ('p=0.31', 'p=0.008', 'p<0.001', 'p=–')
    """
    if p is None:
        return "p=–"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2f}" if p >= 0.01 else f"p={p:.3f}"


def primary_comparison(comparisons: list[Comparison]) -> Comparison | None:
    """The comparison the headline reports: the PyTorch source-model pair if benched, else the first.

    >>> primary_comparison([Comparison(a="base/gguf-q8_0"), Comparison(a="base/torch-fp32")]).a
    'base/torch-fp32'
    >>> primary_comparison([]) is None
    True
    """
    if not comparisons:
        return None
    return next((c for c in comparisons if str(c.a).endswith("/torch-fp32")), comparisons[0])


def _prompts_phrase(report: BenchResults, n: int | None) -> str:
    subset = report.heart_subset
    phrase = f"{n} held-out heart prompts" if subset and subset.split == "eval" else f"{n} heart prompts"
    packaged = subset and subset.packaged
    if packaged and subset.n_healthbench is not None:
        phrase += f" ({subset.n_healthbench} HealthBench + {packaged['n']} packaged {packaged['split']})"
    return phrase


def training_line(report: BenchResults) -> str | None:
    """"Did training help?" in one line, from the paired base-vs-trained test (None: nothing scored).

    >>> r = parse_bench({"heart_subset": {"split": "eval"}, "comparisons": [{"a": "base/torch-fp32",
    ...      "b": "trained/torch-fp32", "n": 22, "metrics": {"unclipped_score": {"n": 22, "diff": 0.041,
    ...      "ci_low": -0.01, "ci_high": 0.092, "sign_p": 0.31}}}]})
    >>> training_line(r)
    'Did training help? Trained vs base (torch-fp32) on 22 held-out heart prompts: unclipped score +0.041 (95% CI −0.010 to +0.092, sign test p=0.31): not shown to help.'
    """
    c = primary_comparison(report.comparisons)
    if c is None:
        if any(t.quality for t in report.targets):
            return ("Did training help? Not measured: this bench has no base and trained builds of the same "
                    "artifact to compare.")
        return None
    build = str(c.a).split("/", 1)[-1]
    m = c.paired("unclipped_score")
    if m:  # the paired per-prompt test on the unclipped score
        n, diff, lo, hi, test = m.n, m.diff, m.ci_low, m.ci_high, f"sign test {p_text(m.sign_p)}"
        what = "unclipped score"
    else:  # an older bench.json: only the clipped-mean difference was stored
        n, diff, lo, hi = c.n or 0, c.diff, c.diff_ci_low, c.diff_ci_high
        test, what = f"bootstrap {p_text(c.bootstrap_p)}", "clipped score"
    return (f"Did training help? Trained vs base ({build}) on {_prompts_phrase(report, n)}: {what} {signed(diff)} "
            f"(95% CI {signed(lo)} to {signed(hi)}, {test}): {verdict(lo, hi)}.")


def is_proxy(judge: Judge | None) -> bool:
    """Whether the grades come from the offline proxy judge.

    >>> is_proxy(Judge.parse({"name": "proxy judge", "config": {"backend": "proxy"}})), is_proxy(Judge(name="oa"))
    (True, False)
    """
    return bool(judge and judge.is_proxy)


def controls_line(report: BenchResults) -> str | None:
    """Beside "did training help?": the gain at equal length, the length and pitfall changes, and the
    measures that use neither the reward's nor the evaluation's judge (None when not compared).

    >>> m = {"unclipped_score": {"diff": 0.05}, "answer_tokens": {"diff": 3.2},
    ...      "pitfall_rate": {"diff": -0.01, "ci_low": -0.04, "ci_high": 0.02},
    ...      "length_controlled": {"diff": 0.04, "ci_low": 0.01, "ci_high": 0.07},
    ...      "independent_all": [{"measure": "proxy judge: unclipped score", "diff": 0.02, "ci_low": -0.01, "ci_high": 0.05}]}
    >>> controls_line(parse_bench({"comparisons": [{"a": "base/q", "b": "trained/q", "metrics": m}]}))
    'At equal answer length: +0.040 (95% CI +0.010 to +0.070); answers +3.2 tokens; pitfall rate −0.010 (95% CI −0.040 to +0.020). Without the evaluation judge: proxy judge: unclipped score +0.020 (95% CI −0.010 to +0.050).'
    """
    c = primary_comparison(report.comparisons)
    if c is None:
        return None
    parts = []
    lc = c.paired("length_controlled")
    if lc:
        parts.append(f"At equal answer length: {signed(lc.diff)} (95% CI {signed(lc.ci_low)} to {signed(lc.ci_high)})")
    tokens = c.paired("answer_tokens")
    if tokens:
        parts.append(f"answers {signed(tokens.diff, '.1f')} tokens")
    pit = c.paired("pitfall_rate")
    if pit:
        parts.append(f"pitfall rate {signed(pit.diff)} (95% CI {signed(pit.ci_low)} to {signed(pit.ci_high)})")
    text = "; ".join(parts) + "." if parts else ""
    independent = c.independent
    if independent:
        text += (" " if text else "") + "Without the evaluation judge: " + "; ".join(
            f"{x.measure} {signed(x.diff)} (95% CI {signed(x.ci_low)} to {signed(x.ci_high)})"
            for x in independent) + "."
    return text or None


def judge_line(judge: Judge | None) -> str | None:
    """Which judge graded (name + fingerprint) and how accurate it is on held-out labels, if measured.

    >>> judge_line(Judge(name="proxy judge", fingerprint="proxy/v1"))
    'Graded by proxy judge (fingerprint `proxy/v1`; held-out accuracy not measured).'
    >>> judge_line(Judge(name="openai judge (qwen)", fingerprint="oa/1", heldout_accuracy=0.912))
    'Graded by openai judge (qwen) (fingerprint `oa/1`; held-out accuracy 0.91).'
    >>> judge_line(Judge.parse({"name": "llamacpp judge", "fingerprint": "yn/1", "heldout_accuracy": 0.82,
    ...                         "train_judge": {"name": "proxy judge", "fingerprint": "proxy/v2"}}))
    "Graded by llamacpp judge (fingerprint `yn/1`; held-out accuracy 0.82), not by the training reward's proxy judge (`proxy/v2`)."
    >>> judge_line(Judge.parse({"name": "j", "fingerprint": "yn/1", "train_judge": {"same_as_eval": True}}))[:60]
    'Graded by j (fingerprint `yn/1`; held-out accuracy not measu'
    """
    if not judge:
        return None
    acc = judge.heldout_accuracy
    acc_text = "held-out accuracy not measured" if acc is None else f"held-out accuracy {acc:.2f}"
    name, fingerprint = judge.name or "an unnamed judge", judge.fingerprint or "?"
    train = judge.train_judge
    if train and train.same_as_eval:
        return (f"Graded by {name} (fingerprint `{fingerprint}`; {acc_text}): the SAME judge that produced the "
                "training reward, so a gain here may be the policy fitting its judge; the measures that do not "
                "use it are in the comparison's `independent` rows.")
    if train:  # the bench re-graded the answers with the judge that produced the training reward
        return (f"Graded by {name} (fingerprint `{fingerprint}`; {acc_text}), not by the training reward's "
                f"{train.name or 'judge'} (`{train.fingerprint or '?'}`).")
    return f"Graded by {name} (fingerprint `{fingerprint}`; {acc_text})."


def proxy_warning(judge: Judge | None) -> str | None:
    """One warning line when the proxy judge graded.

    >>> proxy_warning(Judge(backend="openai")) is None
    True
    """
    if not is_proxy(judge):
        return None
    return ("Warning: the proxy judge is a weak offline stand-in for an LLM judge (text similarity, no "
            "reasoning); it ranks builds only coarsely. Use an LLM judge for figures to publish.")


def zero_line(targets: list[TargetResult]) -> str | None:
    """The plain reason every clipped score reads 0.000, instead of a bare 0.000.

    >>> zero_line(parse_bench({"targets": [{"quality": {"healthbench": {"score": 0.0}}}]}).targets)
    'All clipped HealthBench scores are 0.000: compare the unclipped scores and hit rates below.'
    >>> zero_line(parse_bench({"targets": [{"quality": {"healthbench": {"score": 0.1}}}, {"quality": None}]}).targets) is None
    True
    """
    scores = [t.quality.score for t in targets if t.quality and t.quality.score is not None]
    if scores and all(s == 0 for s in scores):
        return "All clipped HealthBench scores are 0.000: compare the unclipped scores and hit rates below."
    return None


def failure_line(targets: list[TargetResult]) -> str | None:
    """How many criteria the judge failed on, over every build, and what was done with them.

    >>> failure_line([TargetResult(quality=Quality(judge_failures=3, n_criteria=200)),
    ...               TargetResult(quality=Quality(judge_failures=0, n_criteria=212))])
    'The judge failed on 3 of 412 criteria; those are skipped, not counted as not met.'
    >>> failure_line([TargetResult(quality=Quality(judge_failures=0, n_criteria=9))]) is None
    True
    """
    qs = [t.quality for t in targets if t.quality]
    failed = sum(q.judge_failures for q in qs)
    if not failed:
        return None
    total = sum(q.n_criteria or 0 for q in qs)
    return f"The judge failed on {failed} of {total} criteria; those are skipped, not counted as not met."


def headline_lines(report: BenchResults) -> list[str]:
    """The lines under a report's heading: did training help, the judge, then any warnings.

    >>> headline_lines(parse_bench({"judge": {"name": "proxy judge", "fingerprint": "p", "config": {"backend": "proxy"}},
    ...                 "targets": [{"quality": {"healthbench": {"score": 0.0}, "judge_failures": 0}}]}))[0]
    'Did training help? Not measured: this bench has no base and trained builds of the same artifact to compare.'
    """
    lines = [training_line(report), controls_line(report), judge_line(report.judge), proxy_warning(report.judge),
             zero_line(report.targets), failure_line(report.targets)]
    return [x for x in lines if x]
