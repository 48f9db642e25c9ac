"""A Hugging Face tokenizer folder read without transformers, for devices that only run builds.

An ONNX export (like any HF model folder) carries ``tokenizer.json`` (the fast tokenizer, read by
the ``tokenizers`` library), ``tokenizer_config.json`` and ``special_tokens_map.json`` (the special
tokens) and its chat template (``chat_template.jinja``, or the config's ``chat_template`` key).
:class:`FolderTokenizer` turns a conversation into ids and an answer back into text the way
transformers' ``apply_chat_template(..., add_generation_prompt=True)`` and
``decode(..., skip_special_tokens=True)`` do: the template is rendered in the same jinja2 sandbox
(``trim_blocks``, ``lstrip_blocks``, loop controls, its ``tojson``, ``raise_exception`` and
``strftime_now``) with the special tokens as variables, and the text is tokenized without adding
special tokens (the template holds them). tests/runtimes/test_ort_decoder.py compares the ids and
the decoded text with transformers on the default model.
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import cache
from pathlib import Path
from typing import Any

from edgemed.errors import ModelError

SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def token_text(value: Any) -> str | None:
    """A special token as tokenizer configs write it (a string or an AddedToken mapping) → its text.

    >>> token_text("<s>"), token_text({"content": "<|im_end|>", "lstrip": False}), token_text(None)
    ('<s>', '<|im_end|>', None)
    """
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def special_tokens(config: dict[str, Any], special_map: dict[str, Any]) -> dict[str, Any]:
    """transformers' ``special_tokens_map``: bos/eos/unk/... texts (config first) and the additional ones.

    >>> special_tokens({"eos_token": "</s>"}, {"eos_token": {"content": "x"}, "pad_token": "<pad>"})
    {'eos_token': '</s>', 'pad_token': '<pad>'}
    """
    out: dict[str, Any] = {}
    for key in SPECIAL_TOKEN_KEYS:
        text = token_text(config.get(key)) or token_text(special_map.get(key))
        if text is not None:
            out[key] = text
    extra = config.get("additional_special_tokens") or special_map.get("additional_special_tokens") or []
    extra = [t for t in (token_text(v) for v in extra) if t is not None]
    if extra:
        out["additional_special_tokens"] = extra
    return out


def read_chat_template(folder: Path, config: dict[str, Any]) -> str | None:
    """The folder's chat template: ``chat_template.jinja`` (transformers ≥ 4.48 saves it there), else
    the config's ``chat_template`` (a string, or a list of named templates: the ``default`` one)."""
    path = folder / "chat_template.jinja"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


@cache
def compile_template(template: str):
    """The template compiled in transformers' sandbox (same options, filters and globals)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers' own tojson: no HTML escaping, which jinja's built-in filter would add
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: _dt.datetime.now().strftime(fmt)
    return env.from_string(template)


def render_chat(template: str, messages: list[dict[str, str]], specials: dict[str, Any],
                add_generation_prompt: bool = True) -> str:
    """The conversation as the model reads it, rendered like transformers' ``apply_chat_template``.

    >>> t = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    >>> render_chat(t + "{% if add_generation_prompt %}<|assistant|>{% endif %}",
    ...             [{"role": "user", "content": "hi"}], {"eos_token": "</s>"})
    '<|user|>hi</s><|assistant|>'
    """
    return compile_template(template).render(messages=messages, tools=None, documents=None,
                                             add_generation_prompt=add_generation_prompt, **specials)


def clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization`` (used when the config sets ``clean_up_tokenization_spaces``).

    >>> clean_up_tokenization("I do n't know , really .")
    "I don't know, really."
    """
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable tokenizer file ({e})") from None
    return data if isinstance(data, dict) else {}


class FolderTokenizer:
    """The tokenizer of an HF/ONNX model folder: chat → ids, ids → text, its special ids and vocab size."""

    def __init__(self, folder: str | Path):
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            from edgemed.errors import EnvironmentFailure

            raise EnvironmentFailure(f"the tokenizers library is missing ({e}); "
                                     "pip install 'edgemed[device]'") from None
        folder = Path(folder)
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"{folder}: no tokenizer.json (a fast tokenizer is needed to run this build)")
        self.tokenizer = Tokenizer.from_file(str(path))
        config = _read_json(folder / "tokenizer_config.json")
        self.specials = special_tokens(config, _read_json(folder / "special_tokens_map.json"))
        self.template = read_chat_template(folder, config)
        self.clean_up_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)  # transformers' len(tokenizer)
        self.eos_token_id = self._id("eos_token")
        self.bos_token_id = self._id("bos_token")
        if self.eos_token_id is None:  # a base model without eos in its tokenizer config
            eos = _read_json(folder / "generation_config.json").get("eos_token_id")
            self.eos_token_id = eos[0] if isinstance(eos, list) and eos else eos if isinstance(eos, int) else None

    def _id(self, key: str) -> int | None:
        text = self.specials.get(key)
        return self.tokenizer.token_to_id(text) if text is not None else None

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of ``messages`` with the generation prompt, as ``apply_chat_template`` gives them."""
        if self.template is None:
            raise ModelError("the model folder has no chat template (chat_template.jinja or tokenizer_config.json)")
        text = render_chat(self.template, messages, self.specials)
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """The answer's text, special tokens skipped (transformers' ``decode(..., skip_special_tokens=True)``)."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return clean_up_tokenization(text) if self.clean_up_spaces else text
