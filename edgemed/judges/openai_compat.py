"""Transport to any OpenAI-compatible chat endpoint: vLLM, llama.cpp (llama-server or
``python -m llama_cpp.server``), OpenAI itself.

Structured output is asked for in the strongest form the server accepts and the client
remembers what worked: ``json_schema`` (OpenAI, vLLM) → ``json_object`` with a ``schema``
(llama_cpp.server turns it into a grammar) → plain prompting. Log-probs are requested only when
the judge wants them and dropped if the server refuses. The API key is read from the environment
on each request and never stored, logged or written into a fingerprint.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import httpx

from edgemed.errors import ConfigError
from edgemed.judges.base import ChatReply, JudgeCallError

log = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json_schema", "json_object", "none")
TOP_LOGPROBS = 5  # enough alternatives to hold both "true" and "false"
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIChatClient:
    """A thread-safe chat client with at most ``concurrency`` requests in flight.

    >>> c = OpenAIChatClient("http://127.0.0.1:9/v1", model="judge", timeout_s=1)  # no request yet
    >>> c.fingerprint, c.concurrency
    ('openai|judge|max_tokens=384', 4)
    >>> c.close()
    """

    supports_logprobs = True

    def __init__(self, base_url: str, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, concurrency: int = 4, max_tokens: int = 384,
                 response_format: str = "auto", extra_body: dict[str, Any] | None = None,
                 seed: int | None = None):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"judge.base_url must be an http(s) URL ending in /v1, got {base_url!r}")
        if response_format != "auto" and response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"judge.params.response_format must be auto or one of "
                              f"{RESPONSE_FORMATS}, got {response_format!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.seed = seed
        self._formats = list(RESPONSE_FORMATS if response_format == "auto" else [response_format])
        self._logprobs_ok = True
        self._slots = threading.BoundedSemaphore(concurrency)
        self._state_lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
                                  limits=httpx.Limits(max_connections=concurrency,
                                                      max_keepalive_connections=concurrency))
        self.model = model or self._first_served_model()
        extra = f"|extra={json.dumps(self.extra_body, sort_keys=True)}" if self.extra_body else ""
        seeded = f"|seed={seed}" if seed is not None else ""
        self.fingerprint = f"openai|{self.model}|max_tokens={max_tokens}{seeded}{extra}"

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _first_served_model(self) -> str:
        url = f"{self.base_url}/models"
        try:
            r = self._http.get(url, headers=self._headers())
            r.raise_for_status()
            return r.json()["data"][0]["id"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
            self._http.close()
            raise ConfigError(f"judge.model is empty and {url} did not list a model "
                              f"({type(e).__name__}: {e}); set judge.model") from e

    def chat(self, messages: list[dict[str, str]], schema: dict | None, temperature: float,
             logprobs: bool) -> ChatReply:
        """One chat completion; any failure is a JudgeCallError (retryable unless a retry cannot help)."""
        while True:
            fmt, want_lp = self._formats[0], logprobs and self._logprobs_ok
            body = self._body(messages, schema if fmt != "none" else None, fmt, temperature, want_lp)
            with self._slots:
                response = self._post(body)
            # llama_cpp.server reports a rejected request field as 500, vLLM/OpenAI as 400/422.
            if response.status_code in (400, 422, 500) and self._downgrade(fmt, schema, want_lp, response):
                continue
            return self._reply(response)

    def _body(self, messages, schema, fmt, temperature, logprobs) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages,
                                "temperature": temperature, "max_tokens": self.max_tokens}
        if schema is not None and fmt == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "verdict", "schema": schema, "strict": True}}
        elif schema is not None and fmt == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        if logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if self.seed is not None:
            body["seed"] = self.seed
        body.update(self.extra_body)
        return body

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        try:
            return self._http.post(url, json=body, headers=self._headers())
        except httpx.TimeoutException as e:
            raise JudgeCallError(f"timeout after {self._http.timeout.read}s ({type(e).__name__}) at {url}")
        except httpx.HTTPError as e:
            raise JudgeCallError(f"{type(e).__name__} at {url}: {e}")

    def _downgrade(self, fmt: str, schema, want_lp: bool, response: httpx.Response) -> bool:
        """After a rejected request, drop the feature the server named; True means "send again"
        (also when a concurrent request already dropped it)."""
        detail = response.text[:120]
        # Only when the error names the feature: a 400 for an over-long prompt must not
        # silently turn off structured output for the rest of the run.
        lowered = response.text.lower()
        names_format = any(w in lowered for w in ("response_format", "json_schema", "grammar", "maxlength"))
        with self._state_lock:
            if names_format and schema is not None and fmt != "none":
                if self._formats[0] == fmt and len(self._formats) > 1:
                    self._formats.pop(0)
                    log.info("judge server rejected response_format %s (%s...); using %s",
                             fmt, detail, self._formats[0])
                return self._formats[0] != fmt
            if "logprob" in lowered and want_lp:
                if self._logprobs_ok:
                    self._logprobs_ok = False
                    log.info("judge server rejected logprobs (%s...); continuing without them", detail)
                return True
        return False

    def _reply(self, response: httpx.Response) -> ChatReply:
        status = response.status_code
        if status != 200:
            raise JudgeCallError(f"HTTP {status} from {response.request.url}: {response.text[:160]}",
                                 retryable=status in _RETRYABLE_STATUS)
        try:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise JudgeCallError(f"not a chat completion ({type(e).__name__}): {response.text[:200]!r}")
        if not isinstance(text, str) or not text.strip():
            raise JudgeCallError("empty answer from the judge")
        logprobs = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
        return ChatReply(text=text, logprobs=logprobs if isinstance(logprobs, list) else None)

    def close(self) -> None:
        self._http.close()
