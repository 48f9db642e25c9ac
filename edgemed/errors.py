"""One exception type per kind of user-facing failure, each carrying where it happened and its exit code.

The CLI turns any ``EdgemedError`` into a one-line message and the class's ``exit_code``, so a bad
input file or config never surfaces as a traceback from deep inside a library, and a script can
tell what went wrong from the code alone:

==== ==========================================================================================
0    success
1    an unexpected failure (a bug: a traceback is printed)
2    bad input or usage: a config, a data file, an option (``EdgemedError``, ``ConfigError``, ...)
3    the parity gate failed: the build exists but is not faithful (``ParityError``)
4    the environment failed: a missing tool, a crashed runtime, a full disk (``EnvironmentFailure``)
130  interrupted (Ctrl-C)
==== ==========================================================================================
"""

from __future__ import annotations

EXIT_CODES = {0: "success", 1: "unexpected failure (a bug; the traceback says where)",
              2: "bad input or usage (config, data file, option)",
              3: "parity gate failed: the build exists but is not faithful (--allow-degraded keeps it)",
              4: "environment failure: a missing tool, a crashed runtime, a full or read-only disk",
              130: "interrupted"}


class EdgemedError(Exception):
    """Base class: a problem the user can fix (input, config, environment)."""

    exit_code = 2


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
    """Bad configuration: unknown key, wrong type, missing field, missing judge URL, eval leak, ...

    Reads ``where: key: message``; ``where`` (the file or the source, e.g. ``--set``) and ``key``
    (the dotted path of the value) are filled in by whoever knows them, see ``edgemed.config_reader``.

    >>> str(ConfigError("expected int, got 'x'", where="t.yaml", key="grpo.max_steps"))
    "t.yaml: grpo.max_steps: expected int, got 'x'"
    >>> str(ConfigError("must be one of ('proxy',)", key="backend"))
    "backend: must be one of ('proxy',)"
    """

    def __init__(self, message: str, where: str | None = None, key: str | None = None):
        self.message, self.where, self.key = message, where, key
        super().__init__(": ".join(p for p in (where, key, message) if p))


class ModelError(EdgemedError):
    """A model spec that cannot be resolved or an architecture a stage does not support."""


class ParityError(EdgemedError):
    """An artifact was built but fell below its parity thresholds: it exists, it is not faithful."""

    exit_code = 3


class EnvironmentFailure(EdgemedError):
    """The machine, not the input: a missing tool or library, an unreachable download, a full disk."""

    exit_code = 4


class RuntimeCrash(EnvironmentFailure):
    """A native runtime (llama.cpp, ONNX Runtime, torch) died in a child process."""
