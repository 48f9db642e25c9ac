"""JudgeConfig: which judge grades the rubric items, and how hard it tries before giving up.

The same dataclass sits inside the train, rewards and bench configs, so a YAML block
``judge: {backend: openai, base_url: ..., model: ...}`` means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgemed.errors import ConfigError

BACKENDS = ("proxy", "openai", "llamacpp")
TEMPLATES = ("auto", "yesno", "edgemed", "healthbench")


@dataclass
class JudgeConfig:
    """Judge settings. Build one from YAML/CLI dicts with :meth:`from_dict`.

    >>> JudgeConfig.from_dict({"backend": "openai", "model": "qwen", "concurrency": 8}).concurrency
    8
    >>> JudgeConfig.from_dict({"backend": "gpt"})
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: judge.backend: must be one of ('proxy', 'openai', 'llamacpp'), got 'gpt'
    >>> JudgeConfig.from_dict({"backend": "auto"}).backend in ("llamacpp", "proxy")
    True
    """

    backend: str = field(default="proxy", metadata={
        "help": "proxy (offline, no LLM), openai (any OpenAI-compatible server: vLLM, llama.cpp, "
                "OpenAI), llamacpp (a GGUF judge in this process) or auto (llamacpp when the local "
                "judge GGUF is installed, else proxy: the bench's default)."})
    model: str | None = field(default=None, metadata={
        "help": "openai: the served model id (empty: the first one the server lists); llamacpp: a "
                "GGUF path (empty: the installed local judge, Qwen2.5-Coder-1.5B-Instruct; `make judge-model`)."})
    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={
        "help": "openai backend: the API root ending in /v1 (vLLM and llama_cpp.server listen on 8000)."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "Name of the env var holding the API key, so the key never sits in a config file; "
                "unset is fine for local servers. The key is never logged or cached."})
    template: str = field(default="auto", metadata={
        "help": "Grader prompt: yesno (one token's P(yes), prefix-cached: the fast, measured local judge), "
                "edgemed (JSON with explanation), healthbench (OpenAI's GRADER_TEMPLATE from the MIT "
                "simple_evals package); auto = yesno for llamacpp, edgemed for openai."})
    temperature: float = field(default=0.0, metadata={
        "help": "Sampling temperature of the judge; 0 makes verdicts repeatable, which the cache assumes."})
    max_tokens: int = field(default=384, metadata={
        "help": "Cap on the judge's answer; the JSON verdict needs ~100 tokens, a cut-off answer is a failure."})
    max_retries: int = field(default=3, metadata={
        "help": "Extra attempts after a timeout, a server error or malformed JSON (the paper used 3); "
                "then the verdict is None, never 'not met'."})
    retry_backoff_s: float = field(default=1.0, metadata={
        "help": "First backoff before a retry; doubles per attempt (capped at 30 s) so an overloaded "
                "server can recover."})
    timeout_s: float = field(default=60.0, metadata={
        "help": "Per-request timeout of the openai backend; a stuck server costs at most this per attempt."})
    concurrency: int = field(default=4, metadata={
        "help": "Requests in flight at once (openai backend); match the server's parallel slots "
                "(vLLM batches, llama_cpp.server --n_parallel / llama-server -np)."})
    cache_path: str | None = field(default=None, metadata={
        "help": "sqlite verdict cache; None: <EDGEMED_HOME>/judges/cache.sqlite, 'off': no cache. "
                "Re-runs cost nothing and interrupted runs resume."})
    use_logprobs: bool = field(default=False, metadata={
        "help": "Return P('true') from the judge's token log-probs as a continuous verdict when the "
                "backend offers them (partial credit for rewards); False keeps HealthBench's 0/1."})
    params: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Backend-specific extras: proxy → ProxyJudge kwargs; openai → response_format "
                "(auto|json_schema|json_object|none), extra_body; llamacpp → n_ctx, n_threads, seed, threshold (yesno)."})

    def __post_init__(self) -> None:
        if self.backend == "auto":
            from edgemed.judges.judge_model import installed

            self.backend = "llamacpp" if installed() else "proxy"
        if self.backend not in BACKENDS:
            raise ConfigError(f"must be one of {BACKENDS}, got {self.backend!r}", key="backend")
        if self.template not in TEMPLATES:
            raise ConfigError(f"must be one of {TEMPLATES}, got {self.template!r}", key="template")
        for name in ("max_tokens", "concurrency"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"must be an integer >= 1, got {getattr(self, name)!r}", key=name)
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"must be an integer >= 0, got {self.max_retries!r}", key="max_retries")
        for name in ("temperature", "timeout_s", "retry_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"must be a number >= 0, got {value!r}", key=name)
        if self.timeout_s == 0:
            raise ConfigError("must be > 0", key="timeout_s")
        if not isinstance(self.params, dict):
            raise ConfigError(f"must be a mapping, got {type(self.params).__name__}", key="params")

    @classmethod
    def from_dict(cls, raw: "JudgeConfig | dict[str, Any] | None", where: str = "",
                  key: str = "judge") -> "JudgeConfig":
        """Accept a JudgeConfig, a mapping (read by ``edgemed.config_reader``: errors name ``where``
        and the key under ``key``) or None (defaults)."""
        from edgemed.config_reader import from_mapping

        return from_mapping(cls, raw, where, key)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for manifests and reports (holds the key's env-var name, never the key)."""
        return asdict(self)
