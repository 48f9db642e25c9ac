"""Transport to a GGUF judge inside this process (llama-cpp-python), with the JSON schema turned
into a grammar so the answer is always well-formed JSON.

One model instance serves one call at a time (a llama.cpp context is not thread-safe), so its
``concurrency`` is 1; run a server (``openai`` backend) to grade in parallel.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from edgemed.errors import ConfigError, ModelError
from edgemed.judges.base import ChatReply, JudgeCallError

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5


class LlamaCppChatClient:
    """Chat with a local GGUF. ``logprobs=True`` at construction keeps all logits
    (``logits_all``), which llama-cpp-python needs to report token log-probs.

    >>> c = LlamaCppChatClient(default_judge_gguf(), n_ctx=2048)  # doctest: +SKIP
    >>> c.chat([{"role": "user", "content": "Say yes as JSON"}], {"type": "object"}, 0.0, False).text  # doctest: +SKIP
    '{}'
    """

    concurrency = 1

    def __init__(self, model_path: str | os.PathLike, n_ctx: int = 4096, n_threads: int | None = None,
                 max_tokens: int = 384, seed: int = 0, logprobs: bool = False):
        from edgemed.runtimes import llamacpp as runtime

        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"judge.model: GGUF file not found: {path}")
        try:
            self._llm = runtime.load(path, n_ctx=n_ctx, n_threads=n_threads, seed=seed, logits_all=logprobs)
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: llama.cpp cannot load this GGUF ({e})") from e
        # Close the model before interpreter teardown; its __del__ fails once modules are gone.
        self._finalizer = weakref.finalize(self, self._llm.close)
        self._lock = threading.Lock()
        self.max_tokens = max_tokens
        self.seed = seed
        self.supports_logprobs = logprobs
        # Name + size: distinguishes quantisations of one model without hashing the file.
        self.fingerprint = f"llamacpp|{path.name}|{path.stat().st_size}|max_tokens={max_tokens}|seed={seed}"

    def chat(self, messages: list[dict[str, str]], schema: dict | None, temperature: float,
             logprobs: bool) -> ChatReply:
        """One completion, grammar-constrained to ``schema`` when given."""
        kwargs: dict[str, Any] = dict(messages=messages, temperature=temperature,
                                      max_tokens=self.max_tokens, seed=self.seed)
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        if logprobs and self.supports_logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            with self._lock:
                out = self._llm.create_chat_completion(**kwargs)
        except ValueError as e:  # e.g. the prompt exceeds n_ctx: the same call would fail again
            raise JudgeCallError(f"llama.cpp refused the request: {e}", retryable=False)
        except RuntimeError as e:
            raise JudgeCallError(f"llama.cpp failed: {e}")
        choice = out["choices"][0]
        text = choice["message"].get("content") or ""
        if not text.strip():
            raise JudgeCallError("empty answer from the judge")
        content = (choice.get("logprobs") or {}).get("content")
        return ChatReply(text=text, logprobs=content if isinstance(content, list) else None)

    def close(self) -> None:
        self._finalizer()


def check_judge_gguf(judge: dict[str, Any] | None) -> None:
    """A ``llamacpp`` judge config's GGUF exists and is whole; for callers that build the judge late
    (the bench grades after every answer is generated), so a damaged file fails first, in one line.

    >>> check_judge_gguf({"backend": "llamacpp", "model": "/nonexistent/judge.gguf"})
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: judge.model: GGUF file not found: /nonexistent/judge.gguf
    """
    from edgemed.integrity.gguf_file import check_gguf

    judge = judge or {}
    model = judge.get("model")
    if judge.get("backend") != "llamacpp" or not model:
        return
    path = Path(model)
    if not path.is_file():
        raise ConfigError(f"judge.model: GGUF file not found: {path}")
    check_gguf(path)


def default_judge_gguf() -> Path:
    """The installed local judge GGUF (Qwen2.5-Coder-1.5B-Instruct; ``make judge-model``), verified."""
    from edgemed.judges.judge_model import require_judge_model

    return require_judge_model()
