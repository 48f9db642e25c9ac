"""What a person reads in the terminal while a stage runs, and where everything else goes.

    with console.stage("export", out / "logs") as stage:     # everything else → out/logs/export.log
        stage.start("2 builds of runs/x/merge")               # one line
        for build in console.track(builds, "export", "build"):  # a bar with ETA (a few lines off a TTY)
            ...
        stage.done("2 passed")                                 # one line with the key figures

Beside those lines and bars the terminal gets one line per warning that changes what the user gets
(``warning``, and edgemed's own ``log.warning``). The rest goes to the stage's log file: python
logging of edgemed and of every library, trl's per-step dicts, transformers/peft notices,
onnxruntime's quantizer, llama.cpp's C-level output in this process and in child processes.
``capture_native_output`` points file descriptors 1 and 2 at the file, so output that never passes
through Python lands there too; ``edgemed --verbose`` shows the file live as well.

The terminal is a duplicate of stderr that ``setup`` (the CLI) takes before any capture; a bench
worker inherits it through ``child_env``/``child_fds`` so its bars show too. Without ``setup``
(library use) nothing is captured and lines go to ``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TypeVar

LOGS_DIR = "logs"         # <out>/logs/<stage>.log (runs/<name>/logs/ under `edgemed run`)
TERMINAL_FD_ENV, VERBOSE_ENV = "EDGEMED_TERMINAL_FD", "EDGEMED_VERBOSE"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_EVERY_S = 30.0      # off a TTY a bar prints at 25/50/75 % and no more often than this: a few lines
WARNINGS_PER_LOGGER = 3   # terminal lines per edgemed logger per stage (a judge warns per criterion)
TAIL_POLL_S = 0.2         # --verbose: how often the live view reads the log file
PLURALS = {"criterion": "criteria"}

log = logging.getLogger(__name__)
T = TypeVar("T")


class _State:
    terminal: IO[str] | None = None  # None: no setup (library use): sys.stderr, nothing captured
    verbose: bool = False
    log_path: Path | None = None     # the stage log in force


_state = _State()


def is_main_rank(environ: Mapping[str, str] = os.environ) -> bool:
    """True in the process that writes and prints (global rank 0, or the only process).

    >>> is_main_rank({}), is_main_rank({"RANK": "0"}), is_main_rank({"RANK": "1"})
    (True, True, False)
    """
    return environ.get("RANK", "0").strip() in ("0", "")


def setup(verbose: bool = False) -> None:
    """Called once per command by the CLI: python logging to stderr (the stage log while one is
    captured) and a handle on the terminal, inherited from the parent in a bench worker."""
    inherited = os.environ.get(TERMINAL_FD_ENV, "")
    fd = int(inherited) if inherited.isdigit() and _is_open(int(inherited)) else os.dup(2)
    close()  # an earlier command in this process that did not end through the CLI's main()
    _state.terminal = os.fdopen(fd, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
    _state.verbose = verbose or os.environ.get(VERBOSE_ENV) == "1"
    logging.basicConfig(level=logging.DEBUG if _state.verbose else logging.INFO, format=LOG_FORMAT,
                        datefmt="%H:%M:%S")
    # bitsandbytes logs a notice about its optional `kernels` package when imported, which happens
    # before any stage log is open; it changes nothing the user gets, so only --verbose shows it.
    logging.getLogger("bitsandbytes").setLevel(logging.NOTSET if _state.verbose else logging.ERROR)


def close() -> None:
    """Back to library behaviour (the CLI calls it when a command ends; tests run many in one process)."""
    if _state.terminal is not None:
        with contextlib.suppress(OSError):
            _state.terminal.close()
    _state.terminal, _state.verbose, _state.log_path = None, False, None


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def terminal() -> IO[str]:
    return _state.terminal or sys.stderr


WIDE_COLUMNS = 160  # off a terminal (a log file, a CI page) rich would squeeze tables into 80


def rich_console(min_width: int | None = None):
    """A rich ``Console`` for summaries and tables: the terminal's own width on a TTY (at least
    ``min_width``), ``WIDE_COLUMNS`` off one, where rich's 80-column default cuts labels to "base/…".

    >>> rich_console().width  # under pytest stdout is captured: not a terminal
    160
    """
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        return Console(width=max(WIDE_COLUMNS, min_width or 0))
    return Console(width=max(console.width, min_width)) if min_width else console


def child_env() -> dict[str, str]:
    """Environment entries that hand the terminal to a child process (with ``child_fds``)."""
    if _state.terminal is None:
        return {}
    return {TERMINAL_FD_ENV: str(_state.terminal.fileno()), VERBOSE_ENV: "1" if _state.verbose else "0"}


def child_fds() -> tuple[int, ...]:
    return () if _state.terminal is None else (_state.terminal.fileno(),)


# --- lines ---------------------------------------------------------------------------------------

def line(text: str) -> None:
    """One line on the terminal (above any bar), and in the stage log while one is captured."""
    _say(text)
    if _state.log_path is not None and is_main_rank():
        log.info("%s", text)


def _say(text: str) -> None:
    if not is_main_rank():
        return
    stream = terminal()
    if stream.isatty():
        from tqdm import tqdm

        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
        stream.flush()


def warning(message: str) -> None:
    """A warning that changes what the user gets: one terminal line always, and the log."""
    log.warning("%s", message, extra={"edgemed_always": True})


def duration(seconds: float) -> str:
    """Seconds as a person reads them.

    >>> duration(4.2), duration(125), duration(3 * 3600 + 62)
    ('4 s', '2 min 05 s', '3 h 01 min')
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _TerminalWarnings(logging.Handler):
    """edgemed's warnings as terminal lines, at most ``WARNINGS_PER_LOGGER`` per logger; the log has all."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] += 1
        if getattr(record, "edgemed_always", False) or self.counts[record.name] <= WARNINGS_PER_LOGGER:
            _say(f"warning: {record.getMessage()}")  # the record itself goes to the log

    def hidden(self) -> int:
        return sum(max(0, n - WARNINGS_PER_LOGGER) for name, n in self.counts.items() if name != log.name)


# --- where the rest goes -------------------------------------------------------------------------

def _flush_all() -> None:
    """Python's and C's buffered output, so it lands where it was written, before fds move."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _fd_stream(fd: int, _open: dict[int, IO[str]] = {}) -> IO[str]:  # noqa: B006 (one per fd, on purpose)
    """A text stream on whatever ``fd`` points at when written, never closed: a library handler
    created during a capture keeps a stream that still works after it."""
    if fd not in _open:
        _open[fd] = open(fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    return _open[fd]


@contextlib.contextmanager
def capture_native_output(path: Path) -> Iterator[Path]:
    """Point file descriptors 1 and 2 at ``path`` (appended) for the block: Python's prints and
    logging, C libraries in this process (llama.cpp, onnxruntime) and child processes all land there.
    ``sys.stdout``/``sys.stderr`` follow too, even when a caller had swapped them for other streams."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _flush_all()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
    python_streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _fd_stream(1), _fd_stream(2)
    try:
        yield path
    finally:
        _flush_all()
        sys.stdout, sys.stderr = python_streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


@contextlib.contextmanager
def _shown_live(path: Path) -> Iterator[None]:
    """``--verbose``: copy what reaches ``path`` to the terminal while the block runs."""
    start = path.stat().st_size if path.exists() else 0
    stop = threading.Event()

    def follow() -> None:
        with open(path, "rb") as f:
            f.seek(start)
            while True:
                last = stop.is_set()  # read once more after the stop, so the last bytes show
                chunk = f.read()
                if chunk:
                    os.write(terminal().fileno(), chunk)
                if last:
                    return
                stop.wait(TAIL_POLL_S)

    path.touch()
    thread = threading.Thread(target=follow, name="edgemed-verbose-log", daemon=True)
    thread.start()
    try:
        yield
    finally:
        _flush_all()
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def stage_log(path: Path) -> Iterator[Path | None]:
    """The stage's log file for the block: native output captured, edgemed's warnings also on the
    terminal (all of it live with ``--verbose``). Nested or without ``setup``: nothing changes."""
    if _state.terminal is None or _state.log_path is not None:
        yield _state.log_path
        return
    warnings = _TerminalWarnings()
    edgemed_logger = logging.getLogger("edgemed")
    with capture_native_output(path), (_shown_live(path) if _state.verbose else contextlib.nullcontext()):
        _state.log_path = path
        if not _state.verbose:
            edgemed_logger.addHandler(warnings)
        try:
            yield path
        finally:
            edgemed_logger.removeHandler(warnings)
            _state.log_path = None
    if warnings.hidden():
        line(f"  ({warnings.hidden()} more warning(s) in {path})")


# --- stages --------------------------------------------------------------------------------------

class Stage:
    """A running stage: ``start(detail)`` prints its first line, ``done(figures)`` sets its last."""

    def __init__(self, name: str, log_path: Path | None):
        self.name, self.log_path = name, log_path
        self.started = time.monotonic()
        self.figures = ""

    def start(self, detail: str) -> None:
        where = f" (log: {self.log_path})" if self.log_path else ""
        line(f"{self.name}: {detail}{where}")

    def done(self, figures: str) -> None:
        self.figures = figures


@contextlib.contextmanager
def stage(name: str, log_dir: Path | None) -> Iterator[Stage]:
    """One stage's terminal lines and log file (``log_dir/<name>.log``, unless a caller such as
    ``edgemed run`` already opened one). Ends with ``name: done in …: figures`` or ``failed after``."""
    own = log_dir / f"{name}.log" if log_dir is not None and _state.log_path is None else None
    with stage_log(own) if own else contextlib.nullcontext(_state.log_path) as path:
        current = Stage(name, path)
        try:
            yield current
        except BaseException:
            line(f"{name}: failed after {duration(time.monotonic() - current.started)}"
                 + (f" (log: {path})" if path else ""))
            raise
        took = duration(time.monotonic() - current.started)
        line(f"{name}: done in {took}" + (f": {current.figures}" if current.figures else ""))


# --- progress ------------------------------------------------------------------------------------

class Bar:
    """A progress bar on the terminal: tqdm (with ETA) on a TTY; off one, a plain line at 25, 50 and
    75 % when at least ``PLAIN_EVERY_S`` passed since the last, so a log or CI page gets a few lines."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, disable: bool = False):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.disabled = disable or not is_main_rank() or total <= 0
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        self.quarter = int(4 * initial / total) + 1 if total > 0 else 4
        self._tqdm = None
        if not self.disabled and terminal().isatty():
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=terminal(),
                              dynamic_ncols=True, leave=False)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif not self.disabled:
            self._maybe_print()

    def note(self, postfix: str) -> None:
        """What the bar shows after its counts: the current build, the last reward."""
        self.postfix = postfix
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(postfix)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def _maybe_print(self) -> None:
        crossed = False
        while self.quarter < 4 and self.n * 4 >= self.quarter * self.total:
            self.quarter, crossed = self.quarter + 1, True
        now = time.monotonic()
        if crossed and self.n < self.total and now - self.last >= PLAIN_EVERY_S:  # the end has its own line
            self.last = now
            elapsed = now - self.t0
            left = elapsed / max(self.n, 1) * (self.total - self.n)
            line(f"  {self.desc}: {self.n}/{self.total} {PLURALS.get(self.unit, self.unit + 's')}"
                 f"{f' ({self.postfix})' if self.postfix else ''}, {duration(elapsed)}, about {duration(left)} left")

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str, unit: str, name: Callable[[T], str] | None = None,
          disable: bool = False) -> Iterator[T]:
    """``items`` with a ``Bar`` over them; ``name(item)`` shows which one is running.

    >>> list(track([1, 2, 3], "demo", "item", name=str))
    [1, 2, 3]
    """
    items = list(items)
    with Bar(len(items), desc, unit, disable=disable) as bar:
        for item in items:
            if name is not None:
                bar.note(name(item))
            yield item
            bar.update()
