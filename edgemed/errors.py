"""One exception type per kind of user-facing failure, each carrying where it happened.

The CLI turns any ``EdgemedError`` into a one-line message and exit code 2, so a bad input file
or config never surfaces as a traceback from deep inside a library.
"""

from __future__ import annotations


class EdgemedError(Exception):
    """Base class: a problem the user can fix (input, config, environment)."""


class DataError(EdgemedError):
    """Bad input data. Names the file, the line (1-based) and the field when known.

    >>> str(DataError("points is not a number", path="x.jsonl", line=3, field="rubrics[0].points"))
    'x.jsonl:3: rubrics[0].points: points is not a number'
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message, self.path, self.line, self.field = message, path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        parts = [p for p in (where, field, message) if p]
        super().__init__(": ".join(parts))


class ConfigError(EdgemedError):
    """Bad configuration: unknown option, wrong type, missing judge URL, eval leak, ..."""


class ModelError(EdgemedError):
    """A model spec that cannot be resolved or an architecture a stage does not support."""
