"""Load any supported rubric file, detecting its format from the first record.

``rubrics`` + ``prompt`` → edgemed / HealthBench schema; ``rubric`` + ``question`` → RaR-Medicine.
"""

from __future__ import annotations

from pathlib import Path

from edgemed.data.jsonl import LoadSummary, iter_json_lines, load_jsonl_records
from edgemed.data.rar import PACKAGED, load_rar_medicine_with_summary, parse_rar
from edgemed.data.schema import RubricRecord
from edgemed.errors import DataError


def parse_edgemed(obj, path: str, line: int) -> RubricRecord:
    return RubricRecord.from_dict(obj, path=path, line=line)


def detect_format(path: Path) -> str:
    """``"rar"`` or ``"edgemed"`` from the first parseable line (``"edgemed"`` if undecidable)."""
    for _, obj in iter_json_lines(path):
        if isinstance(obj, dict):
            return "rar" if "question" in obj and "rubric" in obj else "edgemed"
    return "edgemed"


def load_records_with_summary(source: str | Path, strict: bool = True
                              ) -> tuple[list[RubricRecord], LoadSummary]:
    """Records + summary from a packaged set name, a HealthBench source or a JSONL path."""
    source = str(source)
    if source in PACKAGED:
        return load_rar_medicine_with_summary(source, strict=strict)
    if source in ("offline", "healthbench") or source.startswith(("http://", "https://")):
        from edgemed.data.healthbench import load_healthbench_with_summary

        return load_healthbench_with_summary(None if source == "healthbench" else source, strict)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError("file not found", path=str(path))
    parse = parse_rar if detect_format(path) == "rar" else parse_edgemed
    return load_jsonl_records(path, parse, strict=strict)


def load_records(source: str | Path, strict: bool = True) -> list[RubricRecord]:
    """Load rubric records of any supported format.

    >>> len(load_records("offline")) > 400
    True
    """
    return load_records_with_summary(source, strict)[0]
