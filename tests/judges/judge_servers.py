"""Shared pieces of the judge tests (fixtures live in conftest.py): a sample conversation and
rubric, and the scriptable OpenAI-compatible server used for failure modes a real model will not
produce on demand (garbage, stalls, status codes). No HTTP mocking: every request crosses a socket.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import pytest

from edgemed.data.schema import RubricItem
from edgemed.judges.local_server import LocalJudgeServer, server_available

CONVERSATION = [
    {"role": "user", "content": "I have crushing chest pain spreading to my left arm. What should I do?"},
    {"role": "assistant", "content": "Call emergency services (911) now. Do not drive yourself."},
]
ITEMS = [RubricItem("Advises calling emergency services immediately", 5.0),
         RubricItem("Recommends waiting to see if the pain passes", -5.0)]


def live_server(**kwargs) -> LocalJudgeServer:
    """A llama_cpp.server over the shipped SmolLM2 GGUF (skips the test if the extra is missing)."""
    if not server_available():
        pytest.skip("llama-cpp-python[server] is not installed: the openai backend's live tests need it")
    from edgemed.models import default_gguf_path

    # One decode thread: on a busy 2-core runner two threads stall each other (measured 3x slower).
    return LocalJudgeServer(default_gguf_path(), n_ctx=2048, n_threads=1, **kwargs)


def completion(content: str) -> dict:
    return {"id": "x", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}


@dataclass
class Reply:
    status: int = 200
    body: str | dict = ""
    delay_s: float = 0.0


@dataclass
class FakeServer:
    """A real HTTP server whose answers a test scripts with ``respond(body_dict) -> Reply``."""

    url: str
    respond: Callable[[dict], Reply]
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


