"""The persistent verdict cache every judge call goes through.

A verdict is keyed by the judge's fingerprint (backend, model, prompt, sampling), the whole
conversation (prompt + response) and the criterion with its points, so a re-run of a benchmark or
a resumed training run never pays for the same verdict twice. Failed verdicts (None) are not
stored: the next run retries them. sqlite in WAL mode lets many threads and several processes
(e.g. a trainer and a benchmark) share one file. It holds only what a judge can say again, so a
file sqlite cannot read (a damaged disk, a cut copy) is set aside as ``<name>.corrupt-<UTC time>``
with one warning line and rebuilt, and the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from edgemed.data.schema import RubricItem
from edgemed.errors import ConfigError, EdgemedError
from edgemed.io import set_aside
from edgemed.judges.base import Judge, Judgement, JudgeStats

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, met REAL NOT NULL,
    explanation TEXT NOT NULL, raw TEXT NOT NULL, created REAL NOT NULL)"""


def _set_up(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """WAL mode + schema. Switching the journal mode answers "database is locked" at once, without
    waiting on the busy timeout, while another process is doing the same: retry it briefly."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SCHEMA)


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        _set_up(conn)
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def damaged(error: sqlite3.DatabaseError) -> bool:
    """Whether sqlite says the file itself is broken (not a database, corrupt), not locked or unreachable.

    >>> damaged(sqlite3.DatabaseError("file is not a database")), damaged(sqlite3.OperationalError("database is locked"))
    (True, False)
    """
    name = getattr(error, "sqlite_errorname", None)
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    return any(w in str(error) for w in ("not a database", "malformed", "corrupt"))


def verdict_key(fingerprint: str, conversation: list[dict[str, str]], payload: object) -> str:
    """Stable key of one verdict; ``payload`` is what is judged (a criterion and its points).

    >>> conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    >>> verdict_key("j1", conv, ["Greets", 1.0]) == verdict_key("j1", conv, ["Greets", 1.0])
    True
    >>> verdict_key("j1", conv, ["Greets", 1.0]) == verdict_key("j1", conv, ["Greets", -1.0])
    False
    """
    blob = json.dumps([fingerprint, [[m["role"], m["content"]] for m in conversation], payload],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class VerdictCache:
    """A sqlite key → Judgement store, safe under threads and across processes.

    >>> import tempfile, os
    >>> c = VerdictCache(os.path.join(tempfile.mkdtemp(), "v.sqlite"))
    >>> c.put("k", "fp", Judgement(met=1.0, explanation="ok"))
    >>> c.get_many(["k", "missing"])
    {'k': Judgement(met=1.0, explanation='ok', raw='')}
    >>> c.close()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"judge.cache_path {self.path}: cannot create its folder ({e})") from e
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross a fork (e.g. dataloader workers): reopen in the child.
        if self._conn is None or self._pid != os.getpid():
            try:
                conn = _open(self.path)
            except sqlite3.DatabaseError as e:
                if not damaged(e) or not self.path.is_file():
                    raise ConfigError(f"judge.cache_path {self.path}: not a usable sqlite file ({e})") from e
                conn = self._rebuild(e)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _rebuild(self, error: sqlite3.DatabaseError, recheck: bool = True) -> sqlite3.Connection:
        """A damaged file holds only verdicts a judge can give again: set it aside, start a new one."""
        if recheck:
            with contextlib.suppress(sqlite3.DatabaseError):
                return _open(self.path)  # another process sharing the file rebuilt it meanwhile
        try:
            with contextlib.suppress(FileNotFoundError):  # ... or has just set it aside
                set_aside(self.path, "judge cache", error, companions=("-wal", "-shm"))
            return _open(self.path)
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(f"judge.cache_path {self.path}: not a usable sqlite file ({error}) and cannot be "
                              f"rebuilt ({e})") from e

    def _using(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` under the lock; a file found damaged midway is rebuilt and ``work`` retried once."""
        with self._lock:
            try:
                return work(self._connect())
            except sqlite3.DatabaseError as e:
                if not damaged(e):
                    raise
                if self._conn is not None and self._pid == os.getpid():
                    self._conn.close()
                self._conn, self._pid = self._rebuild(e, recheck=False), os.getpid()
                return work(self._conn)

    def get_many(self, keys: Sequence[str]) -> dict[str, Judgement]:
        """The cached verdicts among ``keys`` (absent keys are simply missing)."""
        if not keys:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, Judgement]:
            out: dict[str, Judgement] = {}
            for start in range(0, len(keys), 500):  # sqlite caps bound parameters per statement
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, met, explanation, raw FROM verdicts WHERE key IN ({marks})", chunk)
                for key, met, explanation, raw in rows:
                    out[key] = Judgement(met=met, explanation=explanation, raw=raw)
            return out

        return self._using(read)

    def put(self, key: str, fingerprint: str, judgement: Judgement) -> None:
        """Store a verdict; a failed one (met=None) is refused so that it is retried next run."""
        if judgement.met is None:
            return
        row = (key, fingerprint, float(judgement.met), judgement.explanation, judgement.raw, time.time())
        self._using(lambda conn: conn.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)", row))

    def __len__(self) -> int:
        return self._using(lambda conn: conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class CachedJudge:
    """The front every built judge sits behind: cache lookup, backend call for the misses,
    counters (``stats``), and the guarantee that a backend crash becomes None verdicts.

    >>> class Echo:  # a stand-in backend: "met" when the criterion's word is in the response
    ...     fingerprint = "echo-v1"
    ...     def grade(self, conversation, items):
    ...         text = conversation[-1]["content"]
    ...         return [Judgement(float(it.criterion in text)) for it in items]
    >>> j = CachedJudge(Echo(), cache=None)
    >>> conv = [{"role": "user", "content": "bp?"}, {"role": "assistant", "content": "see a doctor"}]
    >>> [v.met for v in j.grade(conv, [RubricItem("doctor", 5), RubricItem("aspirin", -3)])]
    [1.0, 0.0]
    """

    def __init__(self, inner: Judge, cache: VerdictCache | None, concurrency: int = 1,
                 stats: JudgeStats | None = None):
        self.inner = inner
        self.cache = cache
        self.concurrency = concurrency
        self.fingerprint = inner.fingerprint
        self.stats = stats or getattr(inner, "stats", None) or JudgeStats()

    def grade(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[Judgement]:
        """One Judgement per item, in order; cached ones cost nothing, failures are None."""
        items = list(items)
        self.stats.add(requested=len(items))
        keys = [verdict_key(self.fingerprint, conversation, [it.criterion, it.points]) for it in items]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats.add(cache_hits=len(found))
        todo = [i for i, k in enumerate(keys) if k not in found]
        results: dict[int, Judgement] = {i: found[k] for i, k in enumerate(keys) if k in found}
        if todo:
            fresh = self._call_inner(conversation, [items[i] for i in todo])
            for i, verdict in zip(todo, fresh):
                results[i] = verdict
                if self.cache is not None:
                    self.cache.put(keys[i], self.fingerprint, verdict)
            self.stats.add(calls=len(todo), failures=sum(v.failed for v in fresh))
        return [results[i] for i in range(len(items))]

    def _call_inner(self, conversation, items: list[RubricItem]) -> list[Judgement]:
        try:
            verdicts = list(self.inner.grade(conversation, items))
        except EdgemedError:
            raise  # a config problem the user must fix, not a flaky verdict
        except Exception as e:  # noqa: BLE001 — one bad call must not kill a long run
            log.warning("judge %s raised %s: %s; verdicts set to None", self.fingerprint,
                        type(e).__name__, e)
            return [Judgement(met=None, explanation=f"judge error: {type(e).__name__}: {e}")
                    for _ in items]
        if len(verdicts) != len(items):
            log.warning("judge %s returned %d verdicts for %d items; verdicts set to None",
                        self.fingerprint, len(verdicts), len(items))
            return [Judgement(met=None, explanation="judge returned the wrong number of verdicts")
                    for _ in items]
        return verdicts

    def close(self) -> None:
        """Release the backend (HTTP pool, in-process model) and the cache connection."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> "CachedJudge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
