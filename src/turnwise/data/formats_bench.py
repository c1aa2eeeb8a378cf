"""Readers and writers for the benchmark formats: mt-bench, mt-bench-101, mt-eval.

A benchmark record is a list of turns, each a user message with or without its answer. Answered turns
become messages; the first unanswered turn becomes the last user message and any later ones
``Conversation.followups`` (user turns still to be asked), which is how an MT-Bench question with two
turns and no answers is held.

Every top-level key besides the turns (``question_id``, ``category``, ``reference``, ``task``, ...) goes
into ``meta`` under its own name, and the writers write meta back at the top level, so a record read
from one of these formats and written back to it (through any other format) comes out the same.
An optional top-level ``system`` string is read as the system message and written back.
"""

from __future__ import annotations

from typing import Any

from turnwise.data.formats_chat import ID_TYPES, Item, as_conversation, get, json_type, system_prefix
from turnwise.data.schema import Conversation, Message
from turnwise.errors import SchemaError

Turn = tuple[str, str | None]  # a user message and its answer, if it has one


def from_turns(system: str, turns: list[Turn]) -> tuple[list[Message], list[str]]:
    """Messages and follow-ups from turns; only a run of turns at the end may lack answers."""
    first = next((i for i, (_, answer) in enumerate(turns) if answer is None), len(turns))
    later = next((i for i in range(first, len(turns)) if turns[i][1] is not None), None)
    if later is not None:
        raise SchemaError(f"turn {first} has no answer but turn {later} has one; only the last turns may lack answers")
    messages = system_prefix(system)
    for user, answer in turns[:first]:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if first < len(turns):
        messages.append({"role": "user", "content": turns[first][0]})
    return messages, [user for user, _ in turns[first + 1 :]]


def to_turns(conv: Conversation) -> list[Turn]:
    """The reverse of :func:`from_turns` (the system message aside)."""
    body = conv.messages[1:] if conv.system is not None else conv.messages
    turns = [(body[i]["content"], body[i + 1]["content"] if i + 1 < len(body) else None)
             for i in range(0, len(body), 2)]
    return turns + [(user, None) for user in conv.followups]


def _turn(where: str, i: int, turn: Any, user_key: str, answer_key: str) -> Turn:
    if not isinstance(turn, dict):
        raise SchemaError(f"{where}[{i}] must be an object with '{user_key}' and '{answer_key}', got {json_type(turn)}")
    if user_key not in turn:
        raise SchemaError(f"{where}[{i}] has no '{user_key}'")
    for key in (user_key, answer_key):
        value = turn.get(key)
        if not isinstance(value, str) and not (key == answer_key and value is None):
            raise SchemaError(f"{where}[{i}].{key} must be a string, got {json_type(value)}")
    return turn[user_key], turn.get(answer_key)


def _rest(record: dict[str, Any], payload: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in (*payload, "system")}


def _with_system(record: dict[str, Any], conv: Conversation) -> dict[str, Any]:
    return {**record, "system": conv.system} if conv.system is not None else record


# ----------------------------------------------------------------------------------- mt-bench


def read_mt_bench(record: dict[str, Any], default_id: str) -> Conversation:
    """FastChat's question file: ``{"question_id", "category", "turns": [str, ...], "reference"?}``."""
    question_id = get(record, "question_id", ID_TYPES)
    turns = get(record, "turns", list)
    for i, turn in enumerate(turns):
        if not isinstance(turn, str):
            raise SchemaError(f"turns[{i}] must be a string, got {json_type(turn)}")
    messages, followups = from_turns(get(record, "system", str, default=""), [(t, None) for t in turns])
    return Conversation(str(question_id), messages, followups, _rest(record, ("turns",)))


def write_mt_bench(item: Item) -> dict[str, Any]:
    """Questions only: the conversation may hold no answers (a system message and user turns)."""
    conv = as_conversation(item)
    turns = to_turns(conv)
    if any(answer is not None for _, answer in turns):
        raise SchemaError("the conversation has assistant answers and mt-bench holds questions only "
                          "(mt-eval and mt-bench-101 keep answers)")
    question_id = int(conv.id) if conv.id.isascii() and conv.id.isdigit() else conv.id
    record = {"question_id": question_id, **conv.meta, "turns": [user for user, _ in turns]}
    return _with_system(record, conv)


# ----------------------------------------------------------------------------------- mt-bench-101


def read_mt_bench_101(record: dict[str, Any], default_id: str) -> Conversation:
    """``{"task", "id", "history": [{"user", "bot"}, ...]}``; ids repeat across tasks, so the id is task-id."""
    task = get(record, "task", str)
    task_id = get(record, "id", ID_TYPES)
    history = get(record, "history", list)
    turns = [_turn("history", i, turn, "user", "bot") for i, turn in enumerate(history)]
    messages, followups = from_turns(get(record, "system", str, default=""), turns)
    return Conversation(f"{task}-{task_id}", messages, followups, _rest(record, ("history",)))


def write_mt_bench_101(item: Item) -> dict[str, Any]:
    """``task`` and ``id`` come back from meta when the record came from this format."""
    conv = as_conversation(item)
    history = [{"user": user} | ({"bot": answer} if answer is not None else {}) for user, answer in to_turns(conv)]
    record = {"id": conv.id} if "id" not in conv.meta else {}
    return _with_system({**record, **conv.meta, "history": history}, conv)


# ----------------------------------------------------------------------------------- mt-eval

_TURN_FIELDS = "turn_fields"  # meta key for per-turn keys other than user/sys (MT-Eval's turn ids)


def read_mt_eval(record: dict[str, Any], default_id: str) -> Conversation:
    """``{"conversation": [{"user", "sys", ...}], ...}``; the id is ``question_id`` (or ``id``) when present."""
    session = get(record, "conversation", list)
    turns = [_turn("conversation", i, turn, "user", "sys") for i, turn in enumerate(session)]
    meta = _rest(record, ("conversation",))
    fields = [{k: v for k, v in turn.items() if k not in ("user", "sys")} for turn in session]
    if any(fields):
        meta[_TURN_FIELDS] = fields
    rid = get(record, "question_id", ID_TYPES, default=None)
    rid = get(record, "id", ID_TYPES, default=None) if rid is None else rid
    messages, followups = from_turns(get(record, "system", str, default=""), turns)
    return Conversation(default_id if rid is None else str(rid), messages, followups, meta)


def _pop_turn_fields(meta: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The per-turn extra fields kept in ``meta`` (removed from it), or empty ones when they do not fit ``n`` turns."""
    fields = meta.pop(_TURN_FIELDS, None)
    if isinstance(fields, list) and len(fields) == n and all(isinstance(f, dict) for f in fields):
        return fields
    return [{} for _ in range(n)]


def write_mt_eval(item: Item) -> dict[str, Any]:
    conv = as_conversation(item)
    meta = dict(conv.meta)
    turns = to_turns(conv)
    fields = _pop_turn_fields(meta, len(turns))
    session = [{"user": user} | ({"sys": answer} if answer is not None else {}) | extra
               for (user, answer), extra in zip(turns, fields, strict=True)]
    record = {} if "question_id" in meta or "id" in meta else {"id": conv.id}
    return _with_system({**record, **meta, "conversation": session}, conv)


def read_mudoco(record: dict[str, Any], default_id: str) -> Conversation:
    """A MuDoCo-QR dialog, ``{"dialog_id", "turns": [{"number", "utterance", ...}], "split", ...}``.

    Odd-numbered turns are the user's, even ones the system's; the id is ``dialog_id`` (the key of the dialog in
    the ``{"dialogs": {...}}`` file, which :mod:`turnwise.data.io` reads as one record per dialog). Message ``k``
    is always turn ``number`` k + 1: a number the data skips (some dialogs lack turns, some start at 2) becomes the
    message ``[turn N is missing from the data]``, listed in ``meta["missing_turns"]``. A turn's other fields
    (``rewrite_required``, ``named_entities``...) are kept in ``meta``.
    """
    turns = get(record, "turns", list)
    by_number: dict[int, dict[str, Any]] = {}
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("utterance"), str):
            raise SchemaError(f"turns[{i}] must be an object with an 'utterance' string")
        number = turn.get("number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise SchemaError(f"turns[{i}] has no positive integer 'number'")
        if number in by_number:
            raise SchemaError(f"turns[{i}] repeats turn number {number}")
        by_number[number] = turn
    if not by_number:
        raise SchemaError("the dialog has no turns")
    missing = [n for n in range(1, max(by_number) + 1) if n not in by_number]
    messages: list[Message] = [
        {"role": "user" if n % 2 else "assistant",
         "content": by_number[n]["utterance"] if n in by_number else MISSING_TURN.format(n=n)}
        for n in range(1, max(by_number) + 1)]
    meta = _rest(record, ("turns", "dialog_id"))
    fields = [{k: v for k, v in by_number.get(n, {}).items() if k not in ("number", "utterance")}
              for n in range(1, len(messages) + 1)]
    if any(fields):
        meta[_TURN_FIELDS] = fields
    if missing:
        meta["missing_turns"] = missing
    rid = get(record, "dialog_id", ID_TYPES, default=None)
    return Conversation(default_id if rid is None else str(rid), messages, [], meta)


MISSING_TURN = "[turn {n} is missing from the data]"


def write_mudoco(item: Item) -> dict[str, Any]:
    conv = as_conversation(item)
    if conv.system is not None or conv.followups:
        raise SchemaError("MuDoCo dialogs have no system message and no follow-ups")
    meta = dict(conv.meta)
    fields = _pop_turn_fields(meta, len(conv.messages))
    missing = set(meta.pop("missing_turns", []) or [])
    turns = [{"number": k + 1, "utterance": m["content"], **extra}
             for k, (m, extra) in enumerate(zip(conv.messages, fields, strict=True)) if k + 1 not in missing]
    return {"dialog_id": conv.id, **meta, "turns": turns}
