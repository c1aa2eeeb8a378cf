"""Ask-model (Parrot-Ask) training data: real dialogues, flipped so that the loss falls on the user turns.

    turnwise ask-data sharegpt.json ask.jsonl --end-marker "[END]"
    turnwise train sft --data ask.jsonl --model Qwen/Qwen2.5-0.5B --output runs/ask   # loss on the flipped
                                                                                     # assistant = real users

Parrot (arXiv 2310.07301) trains its ask model on real dialogues with the loss on the user turns only.
turnwise trains it on the flipped view (:func:`turnwise.simulate.prompts.flip_roles`): the simulator's
system prompt, the opener, then each real user turn as an *assistant* message and each real answer as a
*user* message. Trained so, the model writes the next user turn whenever a chat API asks it for the
next assistant turn, which is what every backend does; the simulation sends it the same view.

So the loss of an ask-model example covers exactly the real user turns (each with its end-of-turn
token), plus the end-of-conversation marker when one is set: the opener, the system prompt and the real
assistant answers are context. :func:`ask_example` gives the precomputed ``input_ids`` and ``labels``
(-100 where no loss) that TRL's SFTTrainer takes as they are; :func:`write_ask_dataset` writes the
flipped dialogues as records any SFT trainer with assistant-only loss consumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnwise.data.formats import SkipReport, check_format, read_records, write_records
from turnwise.data.schema import Conversation, Message, PreferencePair
from turnwise.errors import ConfigError
from turnwise.prompts import search_path
from turnwise.simulate.filters import detect_language
from turnwise.simulate.prompts import LANGS, SimulatorPrompt, flip_roles, simulator_prompt

WRITE_FORMATS = ("openai", "trl-sft")


@dataclass
class AskDataConfig:
    """How dialogues become ask-model examples; use the same values when simulating with the model.

    Attributes:
        mode: which shipped simulator prompt: ``ask`` (default) or ``prompted``.
        lang: prompt language, ``en``, ``zh``, or ``auto`` (``zh`` for dialogues that open in Chinese).
        end_marker: appended as a last (flipped) assistant message after the final answer, so the model
            learns when a user stops; None = off.
        system: replaces the template's system prompt (text or a file); ``""`` for no system prompt.
        opener: replaces the template's opener (text or a file).
        min_user_turns: dialogues with fewer user turns are skipped (1 keeps single-turn dialogues).
        template_dir: a folder of prompt templates searched before the shipped ones (``simulate/ask.en.jinja``).
    """

    mode: str = "ask"
    lang: str = "auto"
    end_marker: str | None = None
    system: str | None = None
    opener: str | None = None
    min_user_turns: int = 1
    template_dir: str | None = None

    def __post_init__(self) -> None:
        if self.lang not in (*LANGS, "auto"):
            raise ConfigError(f"lang must be auto or one of {', '.join(LANGS)}, got {self.lang!r}")
        if self.min_user_turns < 1:
            raise ConfigError(f"min_user_turns must be at least 1, got {self.min_user_turns}")

    def prompt(self, first_user_turn: str) -> SimulatorPrompt:
        lang = self.lang
        if lang == "auto":
            lang = "zh" if detect_language(first_user_turn) == "zh" else "en"
        return simulator_prompt(self.mode, lang, end_marker=self.end_marker, system=self.system,
                                opener=self.opener, search_path=search_path(self.template_dir))


def ask_messages(messages: list[Message], prompt: SimulatorPrompt) -> list[Message]:
    """The flipped training view of one dialogue (see the module docstring).

    Without an end marker, a final answer that no user turn follows is left out: it carries no loss and
    teaches nothing. With one, the marker follows it and carries the loss instead.
    """
    ends_answered = messages[-1]["role"] == "assistant"
    flipped = flip_roles(messages, prompt, end=prompt.end_marker is not None and ends_answered)
    if prompt.end_marker is None and flipped[-1]["role"] == "user" and len(flipped) > 2:
        flipped = flipped[:-1]
    return flipped


def ask_example(tokenizer: Any, messages: list[Message], prompt: SimulatorPrompt) -> dict[str, list[int]]:
    """Precomputed SFT row ``{"input_ids", "labels"}``: labels on the real user turns (and marker) only.

    Args:
        tokenizer: a fast tokenizer with a chat template (:func:`turnwise.data.render.load_tokenizer`).
        messages: the real dialogue, OpenAI-style.
        prompt: the simulator prompt (the same one the simulation will use).
    """
    from turnwise.data.render import label_tokens

    ids, labels = label_tokens(tokenizer, ask_messages(messages, prompt), train_on=("assistant",))
    return {"input_ids": ids, "labels": labels}


def ask_conversations(items: Iterable[Conversation | PreferencePair], cfg: AskDataConfig) -> Iterator[Conversation]:
    """Flipped dialogues, one per source dialogue with at least ``cfg.min_user_turns`` user turns."""
    for item in items:
        messages = [*item.prompt, {"role": "assistant", "content": item.chosen}] if isinstance(
            item, PreferencePair) else item.messages
        users = [m["content"] for m in messages if m["role"] == "user"]
        if len(users) < cfg.min_user_turns:
            continue
        meta = {**item.meta, "source_id": item.id, "view": "ask (roles flipped)"}
        yield Conversation(item.id, ask_messages(messages, cfg.prompt(users[0])), meta=meta)


def write_ask_dataset(
    src: str | Path,
    dst: str | Path,
    cfg: AskDataConfig | None = None,
    *,
    fmt: str | None = None,
    to: str = "openai",
    skip_invalid: bool = False,
) -> SkipReport:
    """Write the ask-model training set of a dialogue file (atomically).

    Args:
        src: dialogues in any format :func:`turnwise.data.formats.read_records` reads.
        dst: the output, flipped dialogues in ``to`` format (``openai`` or ``trl-sft``); train it with the
            loss on assistant turns (``turnwise train sft``), which are the real user turns.
        cfg: prompt, language, end marker; the defaults when None.
        fmt: the input format; detected when None.
        to: the output format.
        skip_invalid: skip malformed input records (counted in the report) instead of raising.

    Returns:
        The read report, with ``written`` set.
    """
    if to not in WRITE_FORMATS:
        raise ConfigError(f"the ask data set is written as {' or '.join(WRITE_FORMATS)}, not {to!r}")
    check_format(to)
    items, report = read_records(src, fmt, skip_invalid=skip_invalid)
    report.written = write_records(dst, ask_conversations(items, cfg or AskDataConfig()), to)
    return report
