"""Readers and writers for the chat formats: openai, sharegpt, alpaca, trl-sft, trl-pref.

Each format is a pair of small pure functions: ``read(record, default_id) -> Conversation | PreferencePair``
and ``write(item) -> record``. They raise :class:`~turnwise.errors.SchemaError` with the rule broken;
:mod:`turnwise.data.formats` adds the file and the line. The helpers at the top are shared with
:mod:`turnwise.data.formats_bench`.

Keys a format does not know are kept: they go into ``Conversation.meta`` (merged under an explicit
``meta`` object, which wins), and the writers write ``meta`` back, so nothing is lost on the way
through another format. Messages keep only ``role`` and ``content``.
"""

from __future__ import annotations

from typing import Any

from turnwise.data.schema import Conversation, Message, PreferencePair
from turnwise.errors import SchemaError

Item = Conversation | PreferencePair

ID_TYPES = (int, float, str)  # ids may be numbers in the source; they become strings
_KIND_NAMES = {str: "a string", list: "an array", dict: "an object", ID_TYPES: "a number or a string"}


# ----------------------------------------------------------------------------------- shared helpers


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    names = {list: "an array", dict: "an object", str: "a string", bool: "a boolean", int: "a number",
             float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def get(record: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``record[key]``, checked to be of ``kind``; missing is an error unless a default is given."""
    if key not in record or (record[key] is None and default is not ...):
        if default is ...:
            raise SchemaError(f"missing key '{key}'")
        return default
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SchemaError(f"'{key}' must be {_KIND_NAMES[kind]}, got {json_type(value)}")
    return value


def take_extras(record: dict[str, Any], payload: tuple[str, ...]) -> tuple[str | None, list[str], dict]:
    """The id, follow-ups and meta of a record; every key outside ``payload`` ends up in meta."""
    known = {*payload, "id", "followups", "meta"}
    rest = {k: v for k, v in record.items() if k not in known}
    meta = get(record, "meta", dict, default={})
    followups = get(record, "followups", list, default=[])
    rid = get(record, "id", ID_TYPES, default=None)
    return (None if rid is None else str(rid)), followups, {**rest, **meta}


def extras(conv: Conversation) -> dict[str, Any]:
    """What :func:`take_extras` reads back: follow-ups when there are any, meta when non-empty."""
    out: dict[str, Any] = {}
    if conv.followups:
        out["followups"] = list(conv.followups)
    if conv.meta:
        out["meta"] = conv.meta
    return out


def as_conversation(item: Item) -> Conversation:
    """A conversation as it is; a preference pair as its prompt followed by the chosen answer."""
    if isinstance(item, Conversation):
        return item
    messages = [*item.prompt, {"role": "assistant", "content": item.chosen}]
    return Conversation(item.id, messages, meta=dict(item.meta))


def system_prefix(system: str) -> list[Message]:
    return [{"role": "system", "content": system}] if system.strip() else []


def ends_answered(conv: Conversation) -> None:
    """Formats for training hold finished conversations: the last turn answered, nothing left to ask."""
    if conv.messages[-1]["role"] != "assistant":
        raise SchemaError("the conversation ends with a user turn, not an answer")
    if conv.followups:
        raise SchemaError(f"the conversation has {len(conv.followups)} follow-up turns still to be asked")


def read_messages(value: Any, key: str) -> list[Message]:
    """OpenAI-style messages with content parts joined; the schema checks the rest later."""
    if not isinstance(value, list):
        raise SchemaError(f"'{key}' must be an array of messages, got {json_type(value)}")
    return [_read_message(i, m) for i, m in enumerate(value)]


def _read_message(i: int, message: Any) -> Any:
    if not isinstance(message, dict):
        return message  # the schema names the problem
    out = {k: message[k] for k in ("role", "content") if k in message}
    if isinstance(out.get("content"), list):
        out["content"] = _join_parts(i, out["content"])
    return out


def _join_parts(i: int, parts: list[Any]) -> str:
    # Joined with nothing between them, as chat templates render consecutive text parts.
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else json_type(part)
        if kind != "text" or not isinstance(part.get("text"), str):
            raise SchemaError(f"message {i} has a content part of type {kind!r}; only text parts are supported")
        texts.append(part["text"])
    return "".join(texts)


# ----------------------------------------------------------------------------------- openai, trl-sft


def read_openai(record: dict[str, Any], default_id: str) -> Conversation:
    """``{"messages": [...], "id"?, "followups"?, "meta"?}``; content given as text parts is joined."""
    rid, followups, meta = take_extras(record, ("messages",))
    messages = read_messages(get(record, "messages", list), "messages")
    return Conversation(rid or default_id, messages, followups, meta)


def write_openai(item: Item) -> dict[str, Any]:
    conv = as_conversation(item)
    return {"id": conv.id, "messages": conv.messages, **extras(conv)}


def write_trl_sft(item: Item) -> dict[str, Any]:
    """TRL's conversational SFT row. ``meta`` is always an object so every row has the same JSON types."""
    conv = as_conversation(item)
    ends_answered(conv)
    return {"id": conv.id, "messages": conv.messages, "meta": conv.meta}


# ----------------------------------------------------------------------------------- sharegpt

_FROM = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant",
    "system": "system",
}
_TO_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


def read_sharegpt(record: dict[str, Any], default_id: str) -> Conversation:
    """``{"conversations": [{"from", "value"}], "system"?, "id"?}``; ``from`` is case-insensitive."""
    rid, followups, meta = take_extras(record, ("conversations", "system"))
    turns = get(record, "conversations", list)
    messages = [_sharegpt_message(i, turn) for i, turn in enumerate(turns)]
    system = system_prefix(get(record, "system", str, default=""))
    if system and messages and messages[0]["role"] == "system":
        raise SchemaError("the system prompt is given twice: in 'system' and as the first turn")
    return Conversation(rid or default_id, system + messages, followups, meta)


def _sharegpt_message(i: int, turn: Any) -> Message:
    if not isinstance(turn, dict):
        raise SchemaError(f"conversations[{i}] must be an object with 'from' and 'value', got {json_type(turn)}")
    for key in ("from", "value"):
        if key not in turn:
            raise SchemaError(f"conversations[{i}] has no '{key}'")
    sender = turn["from"]
    role = _FROM.get(sender.lower()) if isinstance(sender, str) else None
    if role is None:
        expected = ", ".join(_FROM)
        raise SchemaError(f"conversations[{i}] has unknown 'from' value {sender!r} (expected one of {expected})")
    return {"role": role, "content": turn["value"]}


def write_sharegpt(item: Item) -> dict[str, Any]:
    conv = as_conversation(item)
    turns = [{"from": _TO_FROM[m["role"]], "value": m["content"]} for m in conv.messages]
    return {"id": conv.id, "conversations": turns, **extras(conv)}


# ----------------------------------------------------------------------------------- alpaca


def read_alpaca(record: dict[str, Any], default_id: str) -> Conversation:
    """``{"instruction", "input"?, "output", "system"?, "history"?: [[user, assistant], ...]}``.

    The last user turn is the instruction, followed by ``"\\n\\n"`` and the input when there is one.
    """
    rid, followups, meta = take_extras(record, ("instruction", "input", "output", "system", "history"))
    instruction = get(record, "instruction", str)
    extra_input = get(record, "input", str, default="")
    output = get(record, "output", str)
    messages = system_prefix(get(record, "system", str, default=""))
    for i, pair in enumerate(get(record, "history", list, default=[])):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise SchemaError(f"history[{i}] must be a [user, assistant] pair")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = "\n\n".join(part for part in (instruction, extra_input) if part.strip())
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return Conversation(rid or default_id, messages, followups, meta)


def write_alpaca(item: Item) -> dict[str, Any]:
    """The last exchange becomes instruction/output, earlier ones ``history`` (LLaMA-Factory style)."""
    conv = as_conversation(item)
    ends_answered(conv)
    body = conv.messages[1:] if conv.system is not None else conv.messages
    record: dict[str, Any] = {"id": conv.id, "instruction": body[-2]["content"], "input": "",
                              "output": body[-1]["content"]}
    if conv.system is not None:
        record["system"] = conv.system
    history = [[body[i]["content"], body[i + 1]["content"]] for i in range(0, len(body) - 2, 2)]
    if history:
        record["history"] = history
    return {**record, **extras(conv)}


# ----------------------------------------------------------------------------------- trl-pref


def read_trl_pref(record: dict[str, Any], default_id: str) -> PreferencePair:
    """TRL preference rows: explicit prompt, implicit prompt (shared prefix) or plain strings.

    Explicit: ``{"prompt": [msgs], "chosen": [assistant msg], "rejected": [assistant msg]}``.
    Implicit: ``{"chosen": [whole conversation], "rejected": [whole conversation]}``.
    Plain: ``{"prompt": str, "chosen": str, "rejected": str}``; the prompt becomes one user turn.
    """
    rid, _, meta = take_extras(record, ("prompt", "chosen", "rejected"))
    if "prompt" not in record:
        prompt, chosen, rejected = _implicit_pair(record)
    elif isinstance(record["prompt"], str):
        prompt = [{"role": "user", "content": record["prompt"]}]
        chosen, rejected = get(record, "chosen", str), get(record, "rejected", str)
    else:
        prompt = read_messages(record["prompt"], "prompt")
        chosen, rejected = _answer_of(record, "chosen"), _answer_of(record, "rejected")
    return PreferencePair(rid or default_id, prompt, chosen, rejected, meta)


def _implicit_pair(record: dict[str, Any]) -> tuple[list[Message], str, str]:
    if isinstance(record.get("chosen"), str):
        raise SchemaError("'chosen' and 'rejected' are plain strings without a 'prompt', so the prompt is unknown")
    chosen = read_messages(get(record, "chosen", list), "chosen")
    rejected = read_messages(get(record, "rejected", list), "rejected")
    shared = 0
    limit = min(len(chosen), len(rejected)) - 1  # leave each side its answer
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    return chosen[:shared], _answer(chosen[shared:], "chosen"), _answer(rejected[shared:], "rejected")


def _answer_of(record: dict[str, Any], key: str) -> str:
    return _answer(read_messages(get(record, key, list), key), key)


def _answer(messages: list[Any], key: str) -> str:
    """The content of the single assistant message that ``key`` must hold after the prompt."""
    if len(messages) != 1 or not isinstance(messages[0], dict) or messages[0].get("role") != "assistant":
        raise SchemaError(f"'{key}' must hold exactly one assistant message after the prompt")
    return messages[0].get("content")


def write_trl_pref(item: Item) -> dict[str, Any]:
    """TRL's explicit-prompt conversational preference row; ``meta`` is always an object."""
    if not isinstance(item, PreferencePair):
        raise SchemaError("a conversation has no rejected answer (build preference pairs first, "
                          "e.g. with the capo or bestofn stage)")
    return {
        "id": item.id,
        "prompt": item.prompt,
        "chosen": [{"role": "assistant", "content": item.chosen}],
        "rejected": [{"role": "assistant", "content": item.rejected}],
        "meta": item.meta,
    }
