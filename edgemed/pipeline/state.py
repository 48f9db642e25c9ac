"""What the pipeline has finished, keyed by each stage's inputs, so up-to-date stages are skipped.

``runs/<name>/pipeline.json`` records, per stage, the key of its inputs (its config plus the
fingerprint of what the stage before it produced) and the fingerprint of its own output. A
stage is skipped only when both still match what is on disk; a stage killed mid-way has no
record and simply runs again (each stage resumes its own partial work).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemed.errors import DataError
from edgemed.io import write_json_atomic

STATE_FILE = "pipeline.json"


def inputs_key(*parts: Any) -> str:
    """Stable sha256 of JSON-able parts (dict key order does not matter).

    >>> inputs_key({"a": 1, "b": 2}) == inputs_key({"b": 2, "a": 1})
    True
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass
class PipelineState:
    path: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> "PipelineState":
        path = root / STATE_FILE
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"corrupted pipeline state ({e.msg}); delete it to re-run every stage",
                            path=str(path)) from None
        return cls(path, dict(raw.get("stages", {})))

    def up_to_date(self, stage: str, key: str, output: str | None) -> bool:
        """Done before with the same inputs, and its output on disk is still what it wrote."""
        rec = self.stages.get(stage)
        return bool(rec) and rec.get("key") == key and output is not None and rec.get("output") == output

    def record(self, stage: str, key: str, output: str, wall_s: float, summary: str) -> None:
        self.stages[stage] = {"key": key, "output": output, "wall_s": round(wall_s, 2), "summary": summary,
                              "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        self.save()

    def forget(self, stage: str) -> None:
        if self.stages.pop(stage, None) is not None:
            self.save()

    def save(self) -> None:
        write_json_atomic(self.path, {"stages": self.stages})
