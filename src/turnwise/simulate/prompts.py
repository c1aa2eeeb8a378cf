"""The user simulator's view of a dialogue: its prompt, and the dialogue with the roles flipped.

A chat API always generates the *assistant* turn, so the user simulator is trained and queried on the
flipped view of a dialogue::

    system     the simulator's instruction ("you are a curious human user", en or zh)
    user       the opener ("Start the conversation.")
    assistant  user turn 1          ← what the ask model learns to write
    user       assistant turn 1
    assistant  user turn 2
    ...
    assistant  [END]                (optional end-of-conversation marker, training data only)

At simulation time the flipped history (ending with the last assistant answer, as a user message) is
sent to the user model, and its completion is the next user turn. The ask model (Parrot-Ask, trained on
this view) and the prompted simulator (any instruction model, told to play the user) share the flip;
only the system prompt differs. Prompts are Jinja templates in ``turnwise/templates/simulate``
(:mod:`turnwise.prompts` finds them, a project's own folder first).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.prompts import template

MODES = ("ask", "prompted")
LANGS = ("en", "zh")


@dataclass(frozen=True)
class SimulatorPrompt:
    """What the user simulator is told, identical in training and in simulation.

    Attributes:
        system: the system message of the flipped view; empty for none.
        opener: the first (flipped) user message, before the real first user turn.
        end_marker: the text a simulator writes to end the conversation, or None (off).
    """

    system: str
    opener: str
    end_marker: str | None = None

    def __post_init__(self) -> None:
        if not self.opener.strip():
            raise ConfigError("the simulator's opener must not be empty (the flipped view starts with it)")
        if self.end_marker is not None and not self.end_marker.strip():
            raise ConfigError("the end-of-conversation marker must not be blank; leave it unset to turn it off")


def _text_or_file(value: str) -> str:
    """A prompt given inline, or as the path of a file that holds it."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            return handle.read().strip()
    return value


def simulator_prompt(
    mode: str = "ask",
    lang: str = "en",
    *,
    end_marker: str | None = None,
    system: str | None = None,
    opener: str | None = None,
    search_path: tuple[str, ...] = (),
) -> SimulatorPrompt:
    """The simulator prompt for a mode and a language, from the shipped templates.

    Args:
        mode: ``ask`` (a trained ask model: a short user-persona prompt) or ``prompted`` (an instruction
            model told, in detail, to play the user).
        lang: ``en`` or ``zh``.
        end_marker: the end-of-conversation marker, or None; the prompt mentions it when set.
        system: replaces the template's system prompt (text, or a file holding it).
        opener: replaces the template's opener (text, or a file holding it).
        search_path: template folders searched before the package's own (``simulate/<mode>.<lang>.jinja``).

    Raises:
        ConfigError: an unknown mode or language.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown simulator mode {mode!r}; choose one of {', '.join(MODES)}")
    if lang not in LANGS:
        raise ConfigError(f"no simulator prompt in {lang!r}; choose one of {', '.join(LANGS)}")
    module = template(f"simulate/{mode}", lang, search_path).make_module({"end_marker": end_marker})
    return SimulatorPrompt(
        system=_text_or_file(system) if system is not None else str(module.system()).strip(),
        opener=_text_or_file(opener) if opener is not None else str(module.opener()).strip(),
        end_marker=end_marker,
    )


def flip_roles(messages: list[Message], prompt: SimulatorPrompt, *, end: bool = False) -> list[Message]:
    """The simulator's view of a dialogue: user turns become assistant turns and the other way round.

    Args:
        messages: the dialogue, OpenAI-style; an optional system message (the assistant's) is left out.
        prompt: the simulator's system prompt, opener and end marker.
        end: append the end marker as a final (flipped) assistant message; needs ``prompt.end_marker``
            and a dialogue that ends with an assistant turn.

    Returns:
        ``[system?, user: opener, assistant: user turn 1, user: answer 1, ...]``.
    """
    flipped: list[Message] = [{"role": "system", "content": prompt.system}] if prompt.system else []
    flipped.append({"role": "user", "content": prompt.opener})
    for message in messages:
        if message["role"] == "user":
            flipped.append({"role": "assistant", "content": message["content"]})
        elif message["role"] == "assistant":
            flipped.append({"role": "user", "content": message["content"]})
    if end:
        if prompt.end_marker is None:
            raise ConfigError("cannot append an end marker: none is set")
        if flipped[-1]["role"] != "user":
            raise ConfigError("the end marker follows an assistant answer; this dialogue ends with a user turn")
        flipped.append({"role": "assistant", "content": prompt.end_marker})
    return flipped
