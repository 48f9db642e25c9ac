"""``edgemed models``: resolve a model spec, ask it a question."""

from __future__ import annotations

import click

from edgemed.models.chat import DEFAULT_SYSTEM_PROMPT, generate_answer, with_system
from edgemed.models.resolve import load_model, resolve_model


@click.group(name="models", help="Resolve a model spec and chat with it.")
def command() -> None:
    pass


@command.command("resolve")
@click.argument("spec", default="default")
def resolve(spec: str) -> None:
    """Print the local folder for SPEC ('default', a folder, or a hub id)."""
    click.echo(resolve_model(spec))


@command.command("ask")
@click.argument("question")
@click.option("--model", "spec", default="default", show_default=True, help="Model spec to answer with.")
@click.option("--max-new-tokens", default=200, show_default=True, help="Answer length cap.")
@click.option("--system-prompt", default=DEFAULT_SYSTEM_PROMPT, help="System message (empty for none).")
def ask(question: str, spec: str, max_new_tokens: int, system_prompt: str) -> None:
    """Answer QUESTION with the model (greedy, CPU)."""
    model, tok = load_model(spec)
    messages = with_system([{"role": "user", "content": question}], system_prompt)
    click.echo(generate_answer(model, tok, messages, max_new_tokens))
