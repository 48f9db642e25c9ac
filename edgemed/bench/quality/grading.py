"""Quality: answer the heart prompts, grade every criterion, score with edgemed.bench.quality.healthbench.

Both steps append one JSONL row per (build, prompt) to the out folder as soon as it is done, and
skip what is already there, so a killed run resumes where it stopped. Rows are keyed by
``Target.key(...)`` (the build's sha256 + generation settings) and, for grades, the judge's
fingerprint: change the build, the settings or the judge and the old rows are simply not reused.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from edgemed.bench.config import QualityConfig
from edgemed.bench.layout import GENERATIONS, GRADES
from edgemed.bench.quality import healthbench, metrics
from edgemed.bench.targets import Target
from edgemed.data.schema import RubricRecord
from edgemed.errors import DataError
from edgemed.io import append_jsonl, read_jsonl_tolerant


def generation_key(target: Target, cfg: QualityConfig) -> str:
    """The resume key of one build's answers: its bytes and every setting that changes them."""
    return target.key(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                      system_prompt=cfg.system_prompt, seed=cfg.seed if cfg.temperature > 0 else None)


def messages_for(record: RubricRecord, cfg: QualityConfig) -> list[dict[str, str]]:
    """The conversation the build answers: the HealthBench prompt, with the optional system message.

    >>> r = RubricRecord.from_dict({"prompt_id": "p", "prompt": [{"role": "user", "content": "hi"}],
    ...                             "rubrics": [{"criterion": "c", "points": 1}]})
    >>> [m["role"] for m in messages_for(r, QualityConfig(system_prompt="Be brief."))]
    ['system', 'user']
    """
    from edgemed.models.chat import resolve_system_prompt

    system = resolve_system_prompt(cfg.system_prompt)
    if system:
        return [{"role": "system", "content": system}] + list(record.prompt)
    return list(record.prompt)


def done_ids(rows: list[dict], key: str, judge: str | None = None) -> set[str]:
    """prompt_ids already logged for ``key`` (and ``judge``, for grade rows)."""
    return {r["prompt_id"] for r in rows if r.get("key") == key and (judge is None or r.get("judge") == judge)}


def generate_missing(runner, target: Target, records: Sequence[RubricRecord], cfg: QualityConfig,
                     out: Path, progress: bool = True) -> int:
    """Answer the prompts this build has not answered yet; returns how many were generated."""
    from edgemed.console import track

    log = out / GENERATIONS
    key = generation_key(target, cfg)
    done = done_ids(read_jsonl_tolerant(log), key)
    todo = [r for r in records if r.prompt_id not in done]
    for record in track(todo, f"generate {target.label}", "prompt", disable=not progress):
        g = runner.chat(messages_for(record, cfg), cfg.max_new_tokens, cfg.temperature, cfg.seed)
        append_jsonl(log, {"target": target.label, "key": key, "prompt_id": record.prompt_id,
                           "response": g.text, "n_prompt": g.n_prompt, "n_gen": g.n_gen,
                           "seconds": round(g.seconds, 4)})
    return len(todo)


def pending_generations(target: Target, records: Sequence[RubricRecord], cfg: QualityConfig, out: Path) -> int:
    """How many prompts this build still has to answer (0: no need to load it for quality)."""
    done = done_ids(read_jsonl_tolerant(out / GENERATIONS), generation_key(target, cfg))
    return sum(r.prompt_id not in done for r in records)


def grade_missing(judge, target: Target, records: Sequence[RubricRecord], cfg: QualityConfig, out: Path,
                  chunk: int = 4, progress: bool = True) -> int:
    """Grade this build's answers not yet graded by this judge; one row per prompt, logged per chunk.

    Judge failures are kept as ``None`` in the row (and counted later), never turned into 0.
    """
    from edgemed.console import Bar
    from edgemed.judges import grade_batch

    key = generation_key(target, cfg)
    answers = {r["prompt_id"]: r["response"] for r in read_jsonl_tolerant(out / GENERATIONS) if r.get("key") == key}
    done = done_ids(read_jsonl_tolerant(out / GRADES), key, judge.fingerprint)
    todo = [r for r in records if r.prompt_id in answers and r.prompt_id not in done]
    bar = Bar(sum(len(r.rubrics) for r in todo), f"grade {target.label}", "criterion", disable=not progress)
    for i in range(0, len(todo), chunk):
        part = todo[i:i + chunk]
        jobs = [(messages_for(r, cfg) + [{"role": "assistant", "content": answers[r.prompt_id]}], r.rubrics)
                for r in part]
        verdicts = grade_batch(judge, jobs)
        for record, row in zip(part, verdicts):
            append_jsonl(out / GRADES, {
                "target": target.label, "key": key, "judge": judge.fingerprint, "prompt_id": record.prompt_id,
                "met": [v.met for v in row], "explanations": [v.explanation for v in row]})
            bar.update(len(record.rubrics))
    bar.close()
    return len(todo)


def quality_summary(target: Target, records: Sequence[RubricRecord], cfg: QualityConfig, out: Path,
                    judge_fingerprint: str) -> dict[str, Any]:
    """HealthBench score (overall, per axis, per theme), metrics that move at every scale, the paper's metrics.

    ``metrics`` (and ``per_theme_metrics``) hold the unclipped mean with its bootstrap CI, the hit
    rate of positive criteria, the rate of pitfalls present, answer length and truncation (see
    ``edgemed.bench.quality.metrics``); ``paper_keyword`` is the paper's own no-judge heuristic.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x", 1, 1, "ab", 1)
    >>> r = RubricRecord.from_dict({"prompt_id": "p1", "prompt": [{"role": "user", "content": "bp?"}],
    ...     "example_tags": ["theme:hedging"], "rubrics": [{"criterion": "a", "points": 6,
    ...     "tags": ["axis:accuracy"]}, {"criterion": "b", "points": -2}, {"criterion": "c", "points": 2}]})
    >>> key = generation_key(t, QualityConfig())
    >>> append_jsonl(out / GRADES, {"key": key, "judge": "j", "prompt_id": "p1", "met": [1, 0, None]})
    >>> append_jsonl(out / GENERATIONS, {"key": key, "prompt_id": "p1", "response": "Low.", "n_gen": 2})
    >>> s = quality_summary(t, [r], QualityConfig(), out, "j")
    >>> s["healthbench"]["score"], s["judge_failures"], s["paper"]["accuracy"], s["per_axis"]["axis:accuracy"]["score"]
    (1.0, 1, 1.0, 1.0)
    >>> s["metrics"]["hit_rate"], s["metrics"]["pitfall_rate"], s["metrics"]["truncation_rate"], s["paper_keyword"]["n"]
    (1.0, 0.0, 0.0, 1)
    """
    key = generation_key(target, cfg)
    grades = {r["prompt_id"]: r for r in read_jsonl_tolerant(out / GRADES)
              if r.get("key") == key and r.get("judge") == judge_fingerprint}
    answers = {r["prompt_id"]: r for r in read_jsonl_tolerant(out / GENERATIONS) if r.get("key") == key}
    scores: dict[str, float | None] = {}
    norms: dict[str, float | None] = {}
    examples: dict[str, dict[str, Any]] = {}
    axis: dict[str, list[float]] = defaultdict(list)
    theme: dict[str, list[float | None]] = defaultdict(list)
    theme_examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    points_list, met_list = [], []
    failures = criteria = 0
    for record in records:
        row = grades.get(record.prompt_id)
        if row is None:
            continue
        met = row["met"]
        if len(met) != len(record.rubrics):
            raise DataError(f"{record.prompt_id} has {len(met)} verdicts for {len(record.rubrics)} criteria: "
                            f"a stale log; delete the rows of {target.label} and re-run", path=str(out / GRADES))
        criteria += len(met)
        failures += sum(m is None for m in met)
        s = healthbench.example_score(record.points, met)
        scores[record.prompt_id] = s
        norms[record.prompt_id] = healthbench.normalised_score(record.points, met)
        answer = answers.get(record.prompt_id) or {}
        examples[record.prompt_id] = metrics.example_metrics(
            record.points, met, answer.get("response"), answer.get("n_gen"), cfg.max_new_tokens)
        points_list.append(record.points)
        met_list.append(met)
        for tag, value in healthbench.tag_scores(record.points, met, [it.tags for it in record.rubrics]).items():
            axis[tag].append(value)
        for tag in record.example_tags:
            if tag.startswith("theme:"):
                theme[tag].append(s)
                theme_examples[tag].append(examples[record.prompt_id])

    def agg(values):
        return healthbench.aggregate(values, cfg.n_bootstrap, cfg.seed).to_dict()

    def summary(rows):
        return metrics.summarise(rows, cfg.n_bootstrap, cfg.seed)

    # The paper's keyword heuristic needs no judge: every answered prompt counts.
    answered = [r for r in records if r.prompt_id in answers]
    keyword = {r.prompt_id: healthbench.paper_keyword_pass(r.rubrics, answers[r.prompt_id].get("response") or "")
               for r in answered}
    n_tokens = [answers[p]["n_gen"] for p in scores if p in answers]
    per_example = {}
    for p in scores:
        e = examples[p]
        per_example[p] = {"score": scores[p], "norm": norms[p], "keyword_pass": keyword.get(p),
                          **{k: e[k] for k in ("hit_rate", "pitfall_rate", "tokens", "words", "truncated",
                                               "distinct_2", "repeated_sentences")}}
    return {
        "healthbench": agg(list(scores.values())),
        "metrics": summary(list(examples.values())),
        "per_axis": {t: agg(v) for t, v in sorted(axis.items())},
        "per_theme": {t: agg(v) for t, v in sorted(theme.items())},
        "per_theme_metrics": {t: summary(v) for t, v in sorted(theme_examples.items())},
        "paper": healthbench.paper_metrics(points_list, met_list).to_dict(),
        "paper_keyword": healthbench.pass_rate_metrics(list(keyword.values())).to_dict(),
        "judge_failures": failures,
        "n_criteria": criteria,
        "n_graded": len(scores),
        "n_prompts": len(records),
        "max_new_tokens": cfg.max_new_tokens,
        "mean_answer_tokens": sum(n_tokens) / len(n_tokens) if n_tokens else None,
        "per_example": per_example,
    }
