"""One writer per folder: the advisory lock a stage takes on the folder it writes.

Two ``edgemed export --out cc`` started seconds apart each deleted the other's staging files and
both failed blaming the environment. Now each stage holds ``<folder>/.edgemed.lock`` while it
runs, and a second process on the same folder stops at once, exit 2, with one line:

    error: cc is in use by pid 4242 on box since 2026-01-05T10:00:00Z (edgemed export --out cc); wait for it or pick another --out

The lock is ``fcntl.flock`` on that file, so the kernel drops it when the holder ends, however it
ends (a crash, ``kill -9``); the pid, host, start time and command written inside are for the
message, not the decision: a lock file nobody holds (left by a crash; its pid dead) is taken
over with one warning line, and a held one is never broken, whatever pid it names. Taking a lock
this process already holds is a no-op, so the pipeline can hold ``runs/<name>`` while its stages
lock their own sub-folders; a forked child holds none of its parent's locks.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from edgemed.errors import EdgemedError

try:
    import fcntl
except ImportError:  # not a POSIX system: no advisory locks, stages run unguarded
    fcntl = None

log = logging.getLogger(__name__)

LOCK_NAME = ".edgemed.lock"
HOST = socket.gethostname()


class FolderInUse(EdgemedError):
    """Another process is writing the folder (exit 2: pick another folder or wait)."""


class Holder(NamedTuple):
    """Who holds a folder's lock, as written inside the lock file."""

    pid: int
    host: str
    started: str
    command: str

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        """The holder a lock file names, or None when it is empty or half-written.

        >>> Holder.parse('{"pid": 7, "host": "box", "started": "T", "command": "edgemed run"}').pid
        7
        >>> Holder.parse('{"pid": 7, "ho') is None
        True
        """
        try:
            raw = json.loads(text)
            return cls(int(raw["pid"]), str(raw["host"]), str(raw["started"]), str(raw["command"]))
        except (ValueError, TypeError, KeyError):
            return None


def in_use_message(folder: str | os.PathLike, holder: Holder | None, hint: str) -> str:
    """The one line a second writer stops with.

    >>> in_use_message("cc", Holder(42, "box", "2026-01-05T10:00:00Z", "edgemed export --out cc"),
    ...                "pick another --out")
    'cc is in use by pid 42 on box since 2026-01-05T10:00:00Z (edgemed export --out cc); wait for it or pick another --out'
    >>> in_use_message("cc", None, "pick another --out")
    'cc is in use by another process; wait for it or pick another --out'
    """
    who = ("another process" if holder is None else
           f"pid {holder.pid} on {holder.host} since {holder.started} ({holder.command})")
    return f"{folder} is in use by {who}; wait for it or {hint}"


def holder_gone(holder: Holder | None, host: str, alive: Callable[[int], bool]) -> bool:
    """Whether ``holder`` is a process of this host that no longer runs (its lock is stale).

    >>> holder_gone(Holder(42, "box", "T", "c"), "box", alive=lambda pid: False)
    True
    >>> holder_gone(Holder(42, "other", "T", "c"), "box", alive=lambda pid: False)  # cannot tell: not stale
    False
    """
    return holder is not None and holder.host == host and not alive(holder.pid)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def command_line(argv: list[str]) -> str:
    """What the holder was started as, for the message (shortened).

    >>> command_line(["/venv/bin/edgemed", "export", "--out", "my dir"])
    "edgemed export --out 'my dir'"
    >>> command_line(["/src/edgemed/cli.py", "run"])  # python -m edgemed.cli (accelerate launch)
    'edgemed run'
    """
    program = Path(argv[0]) if argv else Path("python")
    name = "edgemed" if program.parent.name == "edgemed" and program.name in ("cli.py", "__main__.py") else program.name
    text = shlex.join([name, *argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


# folder (real path) -> [lock file descriptor, times this process took it, 1 if taking it made the folder]
_held: dict[str, list[int]] = {}
_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, hint: str = "pick another --out") -> Iterator[Path]:
    """Hold ``folder``'s lock (creating the folder) for the block; raise ``FolderInUse`` if taken.

    ``hint`` ends the message: the option that picks another folder. A folder the lock made is
    removed again if the block left it empty (a stage that stopped before writing leaves nothing).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "out"
    >>> with folder_lock(d):
    ...     with folder_lock(d):  # the same process again: fine
    ...         (d / LOCK_NAME).is_file()
    True
    >>> (d / LOCK_NAME).exists(), d.exists()  # released: the file goes, and the folder it made, left empty
    (False, False)
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _guard:
        if key in _held:
            _held[key][1] += 1
        else:
            created = not folder.exists()
            _held[key] = [_acquire(folder, hint), 1, int(created)]
    try:
        yield folder
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                _release(folder / LOCK_NAME, entry[0])
                if entry[2]:
                    with contextlib.suppress(OSError):  # not empty: the stage wrote something
                        folder.rmdir()


def _acquire(folder: Path, hint: str) -> int:
    """flock the folder's lock file and write this process into it; returns the descriptor (-1 without fcntl)."""
    if fcntl is None:
        folder.mkdir(parents=True, exist_ok=True)
        return -1
    path = folder / LOCK_NAME
    for _ in range(20):  # each retry follows a holder that released (and removed) the file meanwhile
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder's last holder just removed it, empty
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: flock is the truth, whatever pid the file names
            holder = _read_holder(fd, settle=True)
            os.close(fd)
            raise FolderInUse(in_use_message(folder, holder, hint)) from None
        if not _same_file(path, fd):  # locked a file its holder removed on release: take the new one
            os.close(fd)
            continue
        previous = _read_holder(fd)
        if previous is not None:
            _warn_take_over(folder, previous)
        me = {"pid": os.getpid(), "host": HOST, "command": command_line(sys.argv),
              "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)
        return fd
    raise FolderInUse(in_use_message(folder, None, hint))


def _release(path: Path, fd: int) -> None:
    if fd < 0:
        return
    _unlink_if_same(path, fd)  # before unlocking: a waiter that locks the old file sees it is gone
    os.close(fd)


def _read_holder(fd: int, settle: bool = False) -> Holder | None:
    """The holder written in the file; ``settle`` waits a moment for a holder still writing it."""
    for _ in range(10 if settle else 1):
        holder = Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        if holder is not None:
            return holder
        if settle:
            time.sleep(0.1)
    return None


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _unlink_if_same(path: Path, fd: int) -> None:
    if _same_file(path, fd):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _warn_take_over(folder: Path, holder: Holder) -> None:
    why = "that process is gone" if holder_gone(holder, HOST, pid_alive) else "it no longer holds it"
    log.warning("%s: taking over the lock left by pid %d on %s (since %s, %s): %s",
                folder, holder.pid, holder.host, holder.started, holder.command, why)


def _forget_in_child() -> None:
    """A forked child must neither keep its parent's locks alive after the parent dies nor remove them."""
    global _guard
    _guard = threading.Lock()
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)  # the parent's descriptor still holds the flock
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
