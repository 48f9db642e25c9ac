"""``edgemed data``: build the heart subset, validate rubric files; summaries (or ``--json``) on stdout."""

from __future__ import annotations

import json
import sys

import click

from edgemed.data.heart import RULES, heart_subset
from edgemed.data.records import load_records_with_summary
from edgemed.io import write_jsonl_atomic


@click.group(name="data", help="Build and validate rubric data: heart subset, validation.")
def command() -> None:
    pass


@command.command("heart")
@click.option("--source", default="offline", show_default=True,
              help="HealthBench source: 'offline' (bundled 500 records), a subset name "
                   "(oss_eval, hard, consensus), an https URL or a JSONL path.")
@click.option("--rule", type=click.Choice(list(RULES)), default="heart-keywords-v1", show_default=True,
              help="Named, versioned selection rule (recorded in every report).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the subset (JSONL, one record per line).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (for scripts).")
def heart(source: str, rule: str, out: str, as_json: bool) -> None:
    """Select heart-related records and write them with their prompt_ids."""
    records, summary = load_records_with_summary(source, strict=False)
    subset = heart_subset(records, rule)
    write_jsonl_atomic(out, (r.to_dict() for r in subset.records))
    if as_json:
        click.echo(json.dumps({"rule": subset.rule, "selected": len(subset.records), "total": subset.n_total,
                               "out": out, "source_ok": summary.ok}, indent=2))
    else:
        click.echo(f"rule: {subset.rule}")
        click.echo(f"selected {len(subset.records)} of {subset.n_total} records -> {out}")
    if not summary.ok:
        click.echo(f"note: {summary.describe()}", err=True)


@command.command("validate")
@click.argument("file", type=click.Path())
@click.option("--max-errors", default=50, show_default=True, help="Errors to print before stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (for scripts).")
def validate(file: str, max_errors: int, as_json: bool) -> None:
    """Check a rubric file (edgemed, HealthBench or RaR-Medicine format); exit 2 on any error."""
    records, summary = load_records_with_summary(file, strict=False)
    for e in summary.errors[:max_errors]:
        click.echo(f"error: {e}", err=True)
    for pid in summary.duplicates[:max_errors]:
        click.echo(f"error: {file}: duplicate prompt_id {pid!r}", err=True)
    if as_json:
        click.echo(json.dumps({"file": file, "lines": summary.n_lines, "records": summary.n_kept,
                               "invalid": len(summary.errors), "duplicates": len(summary.duplicates),
                               "ok": summary.ok}, indent=2))
    else:
        click.echo(summary.describe())
    if not summary.ok:
        sys.exit(2)
