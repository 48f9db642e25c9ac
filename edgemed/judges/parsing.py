"""Reading a judge's answer: JSON found inside fences or chatter, the boolean verdict, a Likert
rating, and P("true") from token log-probs. Every reader returns None for what it cannot read;
the caller retries and finally reports a failure, never a guessed "not met".
"""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_KEY_BEFORE_VALUE = re.compile(r'"criteria_met"\s*:\s*$')


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``: bare, inside a code fence, or amid other words.

    >>> extract_json('Sure! ```json\\n{"criteria_met": true}\\n``` hope it helps')
    {'criteria_met': True}
    >>> extract_json('verdict: {"a": {"b": 1}} done')
    {'a': {'b': 1}}
    >>> extract_json("no json here") is None
    True
    """
    candidates = [text.strip()] + [m.strip() for m in _FENCE.findall(text)]
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def read_verdict(text: str) -> tuple[bool, str] | None:
    """(criteria_met, explanation) from a grader answer, or None if it holds no clear boolean.

    Accepts the strings "true"/"false"/"yes"/"no" too: weaker judges write them.

    >>> read_verdict('{"explanation": "Mentions 911.", "criteria_met": true}')
    (True, 'Mentions 911.')
    >>> read_verdict('{"explanation": "x", "criteria_met": "No"}')
    (False, 'x')
    >>> read_verdict('{"explanation": "x", "criteria_met": "maybe"}') is None
    True
    """
    obj = extract_json(text)
    if obj is None or "criteria_met" not in obj:
        return None
    met = _as_bool(obj["criteria_met"])
    if met is None:
        return None
    explanation = obj.get("explanation")
    return met, explanation if isinstance(explanation, str) else ""


def read_rating(text: str, low: int = 1, high: int = 10) -> tuple[int, str] | None:
    """(rating, explanation) from a Likert answer; None when absent or outside [low, high].

    >>> read_rating('{"explanation": "good", "rating": 8}')
    (8, 'good')
    >>> read_rating('{"rating": "7"}'), read_rating('{"rating": 11}')
    ((7, ''), None)
    """
    obj = extract_json(text)
    if obj is None:
        return None
    raw = obj.get("rating")
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        return None
    explanation = obj.get("explanation")
    return raw, explanation if isinstance(explanation, str) else ""


def p_true(logprobs: list[dict] | None) -> float | None:
    """P(criteria_met = true) from OpenAI-style token log-probs of a grader answer.

    Finds the token right after ``"criteria_met":`` and compares the probability mass its
    alternatives give to ``true`` vs ``false``; None when the position or both words are missing.

    >>> lp = [{"token": '{"criteria_met":', "logprob": 0.0, "top_logprobs": []},
    ...       {"token": " true", "logprob": -0.2, "top_logprobs": [
    ...           {"token": " true", "logprob": -0.2}, {"token": " false", "logprob": -1.8}]}]
    >>> round(p_true(lp), 3)
    0.832
    """
    if not logprobs:
        return None
    text = ""
    for entry in logprobs:
        token = entry.get("token") or ""
        if token.strip() and _KEY_BEFORE_VALUE.search(text):
            alternatives = list(entry.get("top_logprobs") or [])
            alternatives.append({"token": token, "logprob": entry.get("logprob")})
            return _true_share(alternatives)
        text += token
    return None


def _true_share(alternatives: list[dict]) -> float | None:
    mass = {"true": 0.0, "false": 0.0}
    seen: set[str] = set()
    for alt in alternatives:
        token, lp = (alt.get("token") or ""), alt.get("logprob")
        if token in seen or not isinstance(lp, numbers.Real) or not math.isfinite(lp):
            continue
        seen.add(token)
        word = token.strip().lower()
        for target in mass:
            # A tokenizer may split the word ("tr" + "ue"): a non-empty prefix counts for it.
            if word and target.startswith(word):
                mass[target] += math.exp(lp)
    total = mass["true"] + mass["false"]
    return mass["true"] / total if total > 0 else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "yes": True, "false": False, "no": False}.get(value.strip().lower())
    return None
