"""``edgemed judge grade``: grade one response against one record's rubric and print each verdict.

    edgemed judge grade --record heart.jsonl --prompt-id p17 --response "Call 911 now." \\
        --backend openai --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from edgemed.errors import ConfigError, DataError

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
@click.option("--template", type=click.Choice(["edgemed", "healthbench"]), default=None,
              help="Grader prompt: ours or HealthBench's official one.")
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
    cfg = JudgeConfig.from_dict({**load_judge_yaml(config_file),
                                 **{k: v for k, v in overrides.items() if v is not None}})
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


def load_judge_yaml(path: str | None) -> dict:
    """JudgeConfig fields from a YAML file: the top level, or its ``judge:`` block."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if isinstance(raw, dict) and isinstance(raw.get("judge"), dict):
        raw = raw["judge"]
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of judge options")
    return raw
