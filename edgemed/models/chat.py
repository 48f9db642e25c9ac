"""Answer a chat with a torch model: the same template and stopping rule every runner uses."""

from __future__ import annotations

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful, friendly medical assistant focused on heart health. Give accurate, "
    "guideline-based information in plain language, say when something is an emergency and "
    "tell the person to call emergency services, and recommend seeing a clinician when needed."
)


# For small CPU models whose answers otherwise run past any affordable token cap (measured:
# SmolLM2-135M's greedy answers to heart prompts often exceed 400 tokens): the CPU configs use it
# for training and benching alike, so the trained model is graded on the task it practised.
BRIEF_SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT + " Keep the answer short: at most five sentences."

SYSTEM_PROMPTS = {"default": DEFAULT_SYSTEM_PROMPT, "brief": BRIEF_SYSTEM_PROMPT}


def resolve_system_prompt(value: str | None) -> str | None:
    """A named prompt (``default``, ``brief``) → its text; other text as given; None/empty → none.

    >>> resolve_system_prompt("brief").endswith("at most five sentences.")
    True
    >>> resolve_system_prompt("") is None
    True
    """
    return SYSTEM_PROMPTS.get(value, value) if value else None


def with_system(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """Prepend a system message unless one is already there.

    >>> with_system([{"role": "user", "content": "hi"}], "be brief")[0]["role"]
    'system'
    """
    if not system_prompt or (messages and messages[0]["role"] == "system"):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def generate_answer(model, tokenizer, messages: list[dict], max_new_tokens: int = 256,
                    temperature: float = 0.0) -> str:
    """Greedy (or sampled) answer to a conversation, stopped at the tokenizer's EOS.

    >>> from edgemed.models import load_model
    >>> m, t = load_model("default")  # doctest: +SKIP
    >>> generate_answer(m, t, [{"role": "user", "content": "What is angina?"}], 32)  # doctest: +SKIP
    'Angina is chest pain ...'
    """
    import torch

    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    sample = temperature > 0
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample,
                             temperature=temperature if sample else None, top_p=None, top_k=None,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
