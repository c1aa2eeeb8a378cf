"""Chat-template rendering and loss masks, shared by the in-process backends and the trainers.

The loss mask is cut from message boundaries, not from ``{% generation %}`` markers (few templates have
them). One conversation is rendered once, tokenized once with character offsets, and each trained
message contributes one character span:

* an assistant message's span starts where the rendering of the history before it *with the generation
  prompt* ends, so the header the prompt already contains (``<|im_start|>assistant\\n``) carries no loss;
* a user message's span starts where its content starts: the history is rendered with a sentinel user
  message and the header is whatever the template writes between the history and the sentinel;
* a span ends where the rendering of the conversation up to and including the message ends, less the
  whitespace after it, so the end-of-turn token (``<|im_end|>``, ``<|eot_id|>``) carries loss and the
  newline after it does not.

Every token whose character range overlaps a span carries loss. All of this rests on one property of the
template: the rendering of the first k messages is a prefix of the rendering of all of them. Templates
that rewrite history (e.g. drop reasoning from earlier assistant turns) break it, and are reported as
such rather than trained on wrong masks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import ConfigError, TurnwiseError, require

IGNORE_INDEX = -100
TRAINABLE_ROLES = ("assistant", "user")
# Content no template rewrites (no whitespace to trim, no markup) and no conversation contains.
_SENTINEL = "TURNWISExSENTINELx7f3a"


def resolve_chat_template(value: str) -> str:
    """A chat template given inline or as a path to a file holding it."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            return handle.read()
    if "{" not in value:
        raise ConfigError(f"chat template {value!r} is neither a file nor an inline Jinja template")
    return value


def load_tokenizer(name_or_path: str, *, chat_template: str | None = None, trust_remote_code: bool = False) -> Any:
    """Load a tokenizer and make sure it can render conversations.

    Args:
        name_or_path: hub id or local directory.
        chat_template: a Jinja chat template, inline or a file path; replaces the tokenizer's own.
        trust_remote_code: run tokenizer code from the model repository.

    Raises:
        TurnwiseError: the tokenizer cannot be loaded, or it has no chat template and none was given.
    """
    from turnwise.models.embedded import resolve

    transformers = require("transformers", "local")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(resolve(name_or_path),
                                                               trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise TurnwiseError(f"cannot load a tokenizer from {name_or_path!r}: {exc}") from exc
    if chat_template is not None:
        tokenizer.chat_template = resolve_chat_template(chat_template)
    if not getattr(tokenizer, "chat_template", None):
        raise TurnwiseError(
            f"the tokenizer of {name_or_path!r} has no chat template; pass one with --chat-template "
            "(or chat_template in the model spec), inline Jinja or a file path"
        )
    return tokenizer


def _name(tokenizer: Any) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


def render(tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """Render messages with the tokenizer's chat template, as text.

    Raises:
        TurnwiseError: there is no template, or the template rejects the conversation.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise TurnwiseError(f"the tokenizer of {_name(tokenizer)!r} has no chat template; pass one")
    import jinja2  # a core dependency; imported here to keep this module cheap to import

    try:
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        # Jinja errors, type errors inside the template, and transformers' own checks (empty conversation)
        raise TurnwiseError(f"the chat template of {_name(tokenizer)!r} failed: {exc}") from exc


def _require_prefix(prefix: str, full: str, tokenizer: Any, what: str) -> None:
    if not full.startswith(prefix):
        raise TurnwiseError(
            f"the chat template of {_name(tokenizer)!r} renders {what} differently once later messages "
            "follow (its rendering is not a prefix of the whole conversation's), so loss masks cannot be "
            "cut from message boundaries; use a chat template that leaves earlier turns unchanged "
            "(--chat-template)"
        )


def _assistant_start(tokenizer: Any, messages: Sequence[Message], i: int, full: str) -> int:
    prompt = render(tokenizer, messages[:i], add_generation_prompt=True)
    _require_prefix(prompt, full, tokenizer, f"the history before message {i} with the generation prompt")
    return len(prompt)


def _user_start(tokenizer: Any, messages: Sequence[Message], i: int, full: str) -> int:
    history = list(messages[:i])
    # Templates reject an empty conversation, and an empty history renders as nothing anyway.
    base = render(tokenizer, history, add_generation_prompt=False) if history else ""
    _require_prefix(base, full, tokenizer, f"the history before message {i}")
    probe = render(tokenizer, [*history, {"role": "user", "content": _SENTINEL}], add_generation_prompt=False)
    _require_prefix(base, probe, tokenizer, f"the history before message {i}")
    content_at = probe.find(_SENTINEL, len(base))
    if content_at < 0:
        raise TurnwiseError(f"the chat template of {_name(tokenizer)!r} does not write user content verbatim")
    header = probe[len(base) : content_at]
    _require_prefix(base + header, full, tokenizer, f"the header of user message {i}")
    return content_at


def _message_end(tokenizer: Any, messages: Sequence[Message], i: int, full: str) -> int:
    upto = render(tokenizer, messages[: i + 1], add_generation_prompt=False)
    _require_prefix(upto, full, tokenizer, f"messages up to {i}")
    return len(upto.rstrip())


def loss_char_spans(
    tokenizer: Any, messages: Sequence[Message], train_on: Sequence[str] = ("assistant",), last_only: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the ``[start, end)`` character spans that carry loss, one per trained message
    (with ``last_only``, the last trained message alone: the final answer, as DPO's SFT term scores it)."""
    unknown = set(train_on) - set(TRAINABLE_ROLES)
    if unknown:
        raise ConfigError(f"cannot train on {sorted(unknown)}; choose from {', '.join(TRAINABLE_ROLES)}")
    full = render(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] not in train_on:
            continue
        if message["role"] == "assistant":
            start = _assistant_start(tokenizer, messages, i, full)
        else:
            start = _user_start(tokenizer, messages, i, full)
        spans.append((start, max(start, _message_end(tokenizer, messages, i, full))))
    return full, spans[-1:] if last_only else spans


def _tokenize_with_flags(
    tokenizer: Any, messages: Sequence[Message], train_on: Sequence[str], last_only: bool = False
) -> tuple[str, list[int], list[tuple[int, int]], list[bool]]:
    if not getattr(tokenizer, "is_fast", False):
        raise TurnwiseError(f"loss masks need a fast tokenizer (character offsets); {_name(tokenizer)!r} is not")
    full, spans = loss_char_spans(tokenizer, messages, train_on, last_only)
    # The template writes the special tokens itself; the tokenizer must not add a second BOS.
    encoding = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoding["input_ids"]), [tuple(o) for o in encoding["offset_mapping"]]
    flags = [any(s < span_end and e > span_start for span_start, span_end in spans) for s, e in offsets]
    return full, ids, offsets, flags


def label_tokens(
    tokenizer: Any, messages: Sequence[Message], *, train_on: Sequence[str] = ("assistant",), last_only: bool = False
) -> tuple[list[int], list[int]]:
    """Tokenize a conversation and label the tokens that carry loss.

    Args:
        tokenizer: a fast tokenizer with a chat template (see :func:`load_tokenizer`).
        messages: the conversation, OpenAI-style.
        train_on: roles whose messages carry loss: ``assistant`` for SFT, ``user`` for a user simulator.
        last_only: only the last of those messages carries loss.

    Returns:
        ``(input_ids, labels)``; labels equal input_ids where loss is taken and -100 elsewhere.
    """
    _, ids, _, flags = _tokenize_with_flags(tokenizer, messages, train_on, last_only)
    return ids, [token if flag else IGNORE_INDEX for token, flag in zip(ids, flags, strict=True)]


def loss_view(
    tokenizer: Any, messages: Sequence[Message], train_on: Sequence[str] = ("assistant",), last_only: bool = False
) -> list[tuple[str, bool]]:
    """Each token's text and whether it carries loss, for eyeballing a mask.

    The texts are slices of the rendering, so they join back into it exactly; the bytes of a character
    split over several tokens go to the first of them.
    """
    full, _, offsets, flags = _tokenize_with_flags(tokenizer, messages, train_on, last_only)
    view, cursor = [], 0
    for (_, end), flag in zip(offsets, flags, strict=True):
        view.append((full[cursor:end] if end > cursor else "", flag))
        cursor = max(cursor, end)
    if view and cursor < len(full):
        text, flag = view[-1]
        view[-1] = (text + full[cursor:], flag)
    return view
