"""A local OpenAI-compatible judge server: ``python -m llama_cpp.server`` over a GGUF, started,
waited for and stopped from Python. Used by the throughput benchmark and the live tests, and
handy for pointing the ``openai`` backend at a local model.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from edgemed.errors import ConfigError

START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now.

    >>> 1024 < free_port() < 65536
    True
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_available() -> bool:
    """Whether ``llama-cpp-python[server]`` is installed (the server needs uvicorn and fastapi)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn", "fastapi"))


class LocalJudgeServer:
    """Context manager running llama_cpp.server on 127.0.0.1; ``.base_url`` ends in /v1.

    >>> from edgemed.models import default_gguf_path
    >>> with LocalJudgeServer(default_gguf_path(), n_ctx=2048) as server:  # doctest: +SKIP
    ...     cfg = {"backend": "openai", "base_url": server.base_url}
    """

    def __init__(self, model_path: str | Path, port: int | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, start_timeout_s: float = START_TIMEOUT_S):
        if not server_available():
            raise ConfigError("a local judge server needs llama-cpp-python[server]: "
                              "pip install 'llama-cpp-python[server]==0.3.36'")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ConfigError(f"judge server model: GGUF file not found: {self.model_path}")
        self.port = port or free_port()
        self.n_ctx, self.n_threads, self.start_timeout_s = n_ctx, n_threads, start_timeout_s
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "LocalJudgeServer":
        """Launch the server and block until ``/v1/models`` answers (or raise with its stderr)."""
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        # A file, not a pipe: the server logs every request, and a full pipe would block it.
        self._log = tempfile.TemporaryFile(mode="w+", prefix="llama-server-", suffix=".log")
        from edgemed.runtimes.llamacpp import select_variant, set_wait_policy

        set_wait_policy()  # the server shares the cores with its clients: no spinning threads
        select_variant()   # and loads the same llama.cpp build (CPU variant) as this process
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log, text=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                from edgemed.runtimes.llamacpp import describe_exit

                tail = self.log_tail().strip().splitlines()[-1:] or ["no log"]
                raise ConfigError(f"{describe_exit(self.proc.returncode, 'llama_cpp.server')}; "
                                  f"last log line: {tail[0]}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ConfigError(f"llama_cpp.server did not answer on {self.base_url} "
                          f"within {self.start_timeout_s:.0f}s")

    def stop(self) -> None:
        """Terminate the server (kill it if it ignores SIGTERM for 15 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log, for error messages."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read()[-chars:]

    def __enter__(self) -> "LocalJudgeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
