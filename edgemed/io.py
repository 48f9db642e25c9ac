"""Crash-safe file writes and JSONL helpers shared by every stage.

Every artifact, manifest and report is written to a temp file in the same directory and then
renamed, so a kill or a full disk never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)

def absolute(path: str | os.PathLike) -> str:
    """``path`` made absolute against the current working directory (``~`` expanded).

    Paths from the command line and from configs are resolved here, where they enter, so that a
    subprocess started in another folder (llama.cpp's converter runs in its own) and a manifest
    read from elsewhere both find them.

    >>> import os
    >>> absolute("runs/x") == os.path.join(os.getcwd(), "runs", "x")
    True
    >>> absolute("/tmp/y")
    '/tmp/y'
    """
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; finished artifacts get the usual permissions instead.
FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write one JSON object per line, atomically."""
    return write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one row and fsync, for resumable logs: a kill loses at most the row being written.

    Readers (``read_jsonl_tolerant``) skip a torn last line.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a missing, unreadable, non-UTF-8 or malformed file is one ``DataError``
    naming it (its ``message`` holds the reason alone, for callers that name the file their own way).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.json"; _ = p.write_text('{"a": 1}')
    >>> read_json(p)
    {'a': 1}
    >>> _ = p.write_text('{oops')
    >>> read_json(p)
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: .../x.json: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)
    """
    from edgemed.errors import DataError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(e.strerror or str(e), path=str(path)) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text: {e.reason} at byte {e.start}", path=str(path)) from None
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e}", path=str(path)) from None


def read_jsonl_tolerant(path: str | os.PathLike) -> list[dict]:
    """Read a resumable JSONL log, ignoring a torn (incomplete) final line left by a kill.

    A damaged line anywhere else is not a kill's doing: one line naming the file and the line.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "log.jsonl"; _ = p.write_text('{"a": 1}\\n{"a": 2, "b"')
    >>> read_jsonl_tolerant(p)
    [{'a': 1}]
    >>> _ = p.write_text('{"a": 1}\\n{oops\\n{"a": 3}\\n')
    >>> read_jsonl_tolerant(p)
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: .../log.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes); delete the file to recompute what it held
    """
    from edgemed.errors import DataError

    path = Path(path)
    if not path.exists():
        return []
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start}); delete the file to recompute what it "
                        "held", path=str(path)) from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise DataError(f"not valid JSON ({e.msg}); delete the file to recompute what it held",
                            path=str(path), line=i + 1) from None
    return rows


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir(*parts: str) -> Path:
    """edgemed's cache root (``$EDGEMED_HOME`` or ``~/.cache/edgemed``), joined with ``parts``."""
    root = Path(os.environ.get("EDGEMED_HOME", Path.home() / ".cache" / "edgemed"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_aside(path: str | os.PathLike, what: str, why: object, companions: tuple[str, ...] = ()) -> Path:
    """Move a cache file that cannot be read to ``<name>.corrupt-<UTC time>``, with one warning line.

    A cache holds only what edgemed can compute again, so a damaged one is no reason to stop a run:
    the caller rebuilds it, and the old file is kept for a post-mortem. ``companions`` are suffixes
    of files that belong with it (sqlite's ``-wal`` and ``-shm``), moved along. Raises ``OSError``
    when the file cannot be moved (a read-only folder).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "cache.json"; _ = p.write_text("{oops")
    >>> aside = set_aside(p, "test cache", "not JSON")
    >>> p.exists(), aside.name.startswith("cache.json.corrupt-"), aside.read_text()
    (False, True, '{oops')
    """
    path = Path(path)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    for suffix in companions:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), aside.with_name(aside.name + suffix))
    log.warning("%s %s cannot be read (%s): moved aside to %s and rebuilt", what, path, why, aside.name)
    return aside


def env_share_dir(name: str) -> Path:
    """``<python env>/share/edgemed/<name>``: files that belong with the environment that uses them
    (the GGUF converter matched to its llama-cpp-python, the local judge model), so every process of
    that venv finds them; ``$EDGEMED_HOME/<name>`` when the environment is read-only."""
    import sys

    env_dir = Path(sys.prefix) / "share" / "edgemed" / name
    try:
        env_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return cache_dir(name)
    return env_dir if os.access(env_dir, os.W_OK) else cache_dir(name)
