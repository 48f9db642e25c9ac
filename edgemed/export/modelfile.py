"""Ollama Modelfile for a GGUF build: ``ollama create heart -f gguf-q4_k_m/Modelfile``.

Ollama does not run Jinja chat templates; it needs a Go template. ChatML (``<|im_start|>`` …
``<|im_end|>``, used by SmolLM2 and Qwen) is translated here, with the template's built-in default
system prompt kept as ``SYSTEM``. For any other template family the TEMPLATE line is left out and
Ollama falls back to the ``tokenizer.chat_template`` stored in the GGUF. The EOS token is always a
stop word, so answers end where the model ends them.
"""

from __future__ import annotations

import json
import re

CHATML_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def render_modelfile(gguf_name: str, chat_template: str | None, stop_tokens: list[str],
                     n_ctx: int | None = None, adapter: str | None = None, note: str | None = None) -> str:
    """Modelfile text for ``gguf_name`` (a path relative to the Modelfile); ``note`` (what the build
    really holds, ``quant_note``) goes on top as a comment.

    >>> tpl = "{{ '<|im_start|>system\\nYou are kind.<|im_end|>\\n' }}{{'<|im_start|>' + m }}"
    >>> text = render_modelfile("model.gguf", tpl, ["<|im_end|>"], n_ctx=2048)
    >>> print(text.splitlines()[0]); "PARAMETER stop \\"<|im_end|>\\"" in text
    FROM ./model.gguf
    True
    >>> 'SYSTEM "You are kind."' in text, "PARAMETER num_ctx 2048" in text
    (True, True)
    >>> render_modelfile("base.gguf", None, [], adapter="adapter.gguf").splitlines()[:2]
    ['FROM ./base.gguf', 'ADAPTER ./adapter.gguf']
    >>> render_modelfile("m.gguf", None, [], note="q4_k_m holds Q5_0 166 ...").splitlines()[:2]
    ['# q4_k_m holds Q5_0 166 ...', 'FROM ./m.gguf']
    """
    lines = [f"# {line}" for line in (note or "").splitlines()]
    lines.append(f"FROM ./{gguf_name}")
    if adapter:  # a LoRA GGUF Ollama applies on top of the base (edgemed export --adapter)
        lines.append(f"ADAPTER ./{adapter}")
    lines.append("")
    if chat_template and "<|im_start|>" in chat_template:
        lines += [f'TEMPLATE """{CHATML_TEMPLATE}"""']
        system = default_system_prompt(chat_template)
        if system:
            lines += [f"SYSTEM {json.dumps(system, ensure_ascii=False)}"]
        lines.append("")
    # Greedy-ish defaults: medical answers should be stable run to run.
    lines += ["PARAMETER temperature 0.2", "PARAMETER top_p 0.9"]
    if n_ctx:
        lines.append(f"PARAMETER num_ctx {int(n_ctx)}")
    for stop in dict.fromkeys(stop_tokens):
        lines.append(f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def default_system_prompt(chat_template: str) -> str | None:
    """The system message a ChatML Jinja template inserts when the chat has none, if any.

    >>> default_system_prompt("{{ '<|im_start|>system\\nYou are SmolLM.<|im_end|>\\n' }}")
    'You are SmolLM.'
    >>> default_system_prompt("{{ message['content'] }}") is None
    True
    """
    m = re.search(r"<\|im_start\|>system\s*(?:\\n|\n)(.+?)<\|im_end\|>", chat_template, re.S)
    return m.group(1).strip() if m and "{" not in m.group(1) else None
