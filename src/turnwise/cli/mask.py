"""`turnwise show-mask`: see which tokens of a conversation carry loss under a model's chat template.

    turnwise show-mask ./tiny data/dialogues.jsonl --index 3 --train-on user
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer

from turnwise.data.schema import Message
from turnwise.errors import ConfigError

# Alternating shades mark where one loss-carrying token ends and the next begins.
_LOSS_STYLES = ("bold black on green", "bold black on bright_green")
_NO_LOSS_STYLE = "dim"


def _pick_messages(data: Path, index: int, fmt: str | None) -> tuple[str, list[Message]]:
    from turnwise.data.formats import read_records
    from turnwise.data.schema import PreferencePair

    if index < 0:
        raise ConfigError(f"--index must be 0 or more, got {index}")
    items, _ = read_records(data, fmt)
    item = next(itertools.islice(items, index, None), None)
    if item is None:
        raise ConfigError(f"{data} has fewer than {index + 1} records")
    if isinstance(item, PreferencePair):  # the chosen answer is what a DPO trainer's SFT term learns
        return item.id, [*item.prompt, {"role": "assistant", "content": item.chosen}]
    return item.id, item.messages


def _plain(view: list[tuple[str, bool]]) -> str:
    """The rendering with ``[[`` and ``]]`` around each run of loss-carrying tokens."""
    parts = []
    for carries, run in itertools.groupby(view, key=lambda token: token[1]):
        text = "".join(token for token, _ in run)
        parts.append(f"[[{text}]]" if carries else text)
    return "".join(parts)


def _styled(view: list[tuple[str, bool]]):  # -> rich.text.Text
    from rich.text import Text

    styled, shade = Text(), 0
    for token, carries in view:
        if carries:
            styled.append(token, style=_LOSS_STYLES[shade])
            shade = 1 - shade
        else:
            styled.append(token, style=_NO_LOSS_STYLE)
    return styled


def show_mask(
    model: Annotated[str, typer.Argument(help="Model directory or hub id whose tokenizer and template to use.")],
    data: Annotated[Path, typer.Argument(help="Conversation file (JSONL or JSON; any format `convert` reads).")],
    index: Annotated[int, typer.Option(help="Which record to show, counting from 0.")] = 0,
    train_on: Annotated[
        str,
        typer.Option(help="Roles that carry loss: assistant (SFT), user (user simulator), or both, comma-separated."),
    ] = "assistant",
    chat_template: Annotated[
        str | None, typer.Option(help="Chat template (Jinja file or inline) for models that ship none.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Input format; detected when left out.")] = None,
    plain: Annotated[bool, typer.Option("--plain", help="Mark loss spans with [[ ]] instead of colour.")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="Run tokenizer code from the model repository.")] = False,
) -> None:
    """Print a conversation as the model sees it, with the tokens that carry loss highlighted."""
    from rich.console import Console

    from turnwise.data.render import load_tokenizer, loss_view

    roles = tuple(role.strip() for role in train_on.split(",") if role.strip())
    record_id, messages = _pick_messages(data, index, fmt)
    tokenizer = load_tokenizer(model, chat_template=chat_template, trust_remote_code=trust_remote_code)
    view = loss_view(tokenizer, messages, train_on=roles)
    loss_tokens = sum(carries for _, carries in view)
    summary = f"record {record_id}: {len(view)} tokens, {loss_tokens} carry loss (train on {', '.join(roles)})"
    if plain:
        typer.echo(_plain(view))
        typer.echo(summary)
        return
    console = Console(highlight=False)
    console.print(_styled(view), end="" if view and view[-1][0].endswith("\n") else "\n")
    console.print(summary, markup=False)
