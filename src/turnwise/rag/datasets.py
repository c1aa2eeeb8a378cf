"""Follow-up rewriting data sets, read as one example per user turn: history, question, human rewrite.

    examples = read_rewrite_data("../shared/data/context/canard_dev.json", "canard")
    examples[1].question, examples[1].reference     # "When did they disband?", "When did Zappa and ... disband?"

Formats (``--format``):

============  ==============================================================================================
canard        CANARD (Elgohary et al., EMNLP 2019): a JSON array of ``{History, QuAC_dialog_id, Question,
              Question_no, Rewrite}``; ``History[0:2]`` are the Wikipedia title and section (kept as the
              example's ``topic``), then QuAC questions and answers alternate.
cast          TREC CAsT 2019–2021 preprocessings: ``{conv_id, turns: [{question, response, manual_rewrite}]}``
              per conversation (JSON array or JSON Lines); ``raw_utterance``, ``manual_rewritten_utterance``
              and ``passage`` are read as the same fields. A turn without a response leaves two user turns
              in a row in the history, which the rewriter accepts (CAsT 2019 has no responses).
mudoco        MuDoCo-QR (``apple/ml-cread``): ``{domain, dialogs: {id: {split, turns: [...]}}}``; odd-numbered
              turns are the user's; every graded user turn is an example, with its ``rewrite_required`` label.
zh-rewrite    Chinese utterance rewriting (Su et al., ACL 2019): one example per line, four fields separated by
              two tabs: utterance 1 (user), utterance 2 (assistant), current utterance, rewrite.
============  ==============================================================================================

Conversations in any turnwise format become examples too (:func:`examples_from_conversation`): one per
user turn, with no reference, and the conversation's ``meta["topic"]`` as the topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from turnwise.data.formats import SkipReport, read_records
from turnwise.data.io import iter_records
from turnwise.data.schema import Conversation, Message
from turnwise.errors import ConfigError, InputError, SchemaError
from turnwise.prompts import detect_lang
from turnwise.rag.metrics import tokens


@dataclass(frozen=True)
class RewriteExample:
    """One user turn to rewrite.

    Attributes:
        id: stable id (``dialogue:turn``).
        history: the messages before the turn, oldest first (a system message first, if any).
        question: the turn as the user wrote it.
        topic: context that is not a message (CANARD's "title — section"); the rewriter sees it.
        reference: the human rewrite, when the data has one.
        needs_rewrite: the data's own label (MuDoCo's ``rewrite_required``); None when it has none, and
            :attr:`requires_rewrite` then compares the reference with the question.
        lang: ``en`` or ``zh``.
        group: the dialogue the turn belongs to.
        meta: anything else from the source worth keeping.
    """

    id: str
    history: tuple[Message, ...]
    question: str
    topic: str | None = None
    reference: str | None = None
    needs_rewrite: bool | None = None
    lang: str = "en"
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def requires_rewrite(self) -> bool | None:
        """The label, or whether the reference differs from the question in its words (None without one)."""
        if self.needs_rewrite is not None:
            return self.needs_rewrite
        if self.reference is None:
            return None
        return tokens(self.reference, self.lang) != tokens(self.question, self.lang)

    def to_conversation(self) -> Conversation:
        """The history and the question as one conversation, the topic in ``meta["topic"]``.

        Raises:
            SchemaError: the history does not alternate (e.g. CAsT 2019, which has no responses).
        """
        meta = {**self.meta, "topic": self.topic, "reference": self.reference}
        return Conversation(self.id, [*map(dict, self.history), {"role": "user", "content": self.question}],
                            meta={k: v for k, v in meta.items() if v is not None})


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), None, f"not readable as JSON ({exc})") from exc


def _field(row: dict[str, Any], path: Path, where: Any, *names: str, required: bool = True) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    if required:
        raise InputError(str(path), where, f"missing key {names[0]!r}")
    return None


def read_canard(path: Path) -> Iterator[RewriteExample]:
    """CANARD rows; the title and section become the topic, the rest of ``History`` the messages."""
    rows = _load_json(path)
    if not isinstance(rows, list):
        raise InputError(str(path), None, "CANARD data is a JSON array of rows")
    for n, row in enumerate(rows, start=1):
        history = _field(row, path, f"row {n}", "History")
        if not isinstance(history, list) or len(history) < 2:
            raise InputError(str(path), f"row {n}", "History must start with the title and the section")
        title, section, *turns = history
        messages = tuple({"role": "user" if k % 2 == 0 else "assistant", "content": text}
                         for k, text in enumerate(turns))
        dialog = str(_field(row, path, f"row {n}", "QuAC_dialog_id"))
        yield RewriteExample(f"{dialog}:{_field(row, path, f'row {n}', 'Question_no')}", messages,
                             _field(row, path, f"row {n}", "Question"), f"{title} — {section}",
                             _field(row, path, f"row {n}", "Rewrite"), None, "en", dialog)


def read_cast(path: Path) -> Iterator[RewriteExample]:
    """CAsT conversations ``{conv_id, turns: [{question, response, manual_rewrite}]}``, JSON array or JSON Lines."""
    for line, conv in iter_records(str(path)):
        conv_id = str(_field(conv, path, line, "conv_id", "id", "number"))
        history: list[Message] = []
        for k, turn in enumerate(_field(conv, path, line, "turns"), start=1):
            question = str(_field(turn, path, line, "question", "raw_utterance")).strip()
            reference = _field(turn, path, line, "manual_rewrite", "manual_rewritten_utterance", required=False)
            number = turn.get("number", k)
            yield RewriteExample(f"{conv_id}:{number}", tuple(history), question, None, reference, None,
                                 detect_lang(question), conv_id)
            history.append({"role": "user", "content": question})
            response = _field(turn, path, line, "response", "passage", required=False)
            if isinstance(response, str) and response.strip():
                history.append({"role": "assistant", "content": response.strip()})


def read_mudoco(path: Path) -> Iterator[RewriteExample]:
    """MuDoCo-QR: every graded user (odd-numbered) turn, with its ``rewrite_required`` label."""
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("dialogs"), dict):
        raise InputError(str(path), None, "MuDoCo data is an object with 'dialogs'")
    for dialog_id, dialog in data["dialogs"].items():
        history: list[Message] = []
        for turn in sorted(dialog["turns"], key=lambda t: t["number"]):
            role = "user" if turn["number"] % 2 == 1 else "assistant"
            if role == "user" and turn.get("graded"):
                yield RewriteExample(f"{dialog_id}:{turn['number']}", tuple(history), turn["utterance"], None,
                                     turn["rewritten_utterance"], bool(turn["rewrite_required"]), "en", dialog_id,
                                     {"split": dialog.get("split")})
            history.append({"role": role, "content": turn["utterance"]})


def read_zh_rewrite(path: Path) -> Iterator[RewriteExample]:
    """The Chinese rewriting corpus: ``u1 \\t\\t u2 \\t\\t current \\t\\t rewrite`` per line."""
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.rstrip("\n").split("\t\t")]
            if len(fields) != 4:
                raise InputError(str(path), n, f"expected 4 fields separated by two tabs, got {len(fields)}")
            first, answer, current, rewrite = fields
            history = ({"role": "user", "content": first}, {"role": "assistant", "content": answer})
            yield RewriteExample(f"zh-{n}", history, current, None, rewrite, None, "zh", f"zh-{n}")


READERS: dict[str, Callable[[Path], Iterator[RewriteExample]]] = {
    "canard": read_canard,
    "cast": read_cast,
    "mudoco": read_mudoco,
    "zh-rewrite": read_zh_rewrite,
}


def read_rewrite_data(path: str | Path, fmt: str, *, limit: int | None = None) -> list[RewriteExample]:
    """The examples of a rewrite data set, in file order (the first ``limit`` only, when given).

    Raises:
        ConfigError: unknown format.
        InputError: the file does not hold that format.
    """
    if fmt not in READERS:
        raise ConfigError(f"unknown rewrite data format {fmt!r} (expected one of {', '.join(READERS)})")
    examples = []
    try:
        for example in READERS[fmt](Path(path)):
            if limit is not None and len(examples) >= limit:
                break
            examples.append(example)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(str(path), None, f"not a {fmt} file ({type(exc).__name__}: {exc})") from exc
    return examples


def examples_from_conversation(conv: Conversation) -> list[RewriteExample]:
    """One example per user turn of a conversation (its follow-ups are not asked yet and are left out)."""
    topic = conv.meta.get("topic") if isinstance(conv.meta.get("topic"), str) else None
    lang = detect_lang(" ".join(m["content"] for m in conv.messages if m["role"] == "user"))
    return [RewriteExample(f"{conv.id}:{i}", tuple(conv.messages[:i]), m["content"], topic, None, None, lang, conv.id)
            for i, m in enumerate(conv.messages) if m["role"] == "user"]


def read_turns(path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False,
               limit: int | None = None) -> tuple[Iterator[RewriteExample], SkipReport]:
    """Turns to rewrite from a rewrite data set (``fmt`` in :data:`READERS`) or any conversation file.

    Returns:
        The examples (lazily for conversations; one per user turn) and the conversation reader's report
        (empty for a rewrite data set).
    """
    if fmt in READERS:
        return iter(read_rewrite_data(path, fmt, limit=limit)), SkipReport(str(path), fmt)
    items, report = read_records(path, fmt, skip_invalid=skip_invalid)

    def turns() -> Iterator[RewriteExample]:
        for conv in islice(_conversations(items), limit):
            yield from examples_from_conversation(conv)

    return turns(), report


def read_conversations(path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False,
                       limit: int | None = None) -> tuple[Iterator[Conversation], SkipReport]:
    """Conversations from any conversation file, or one per example of a rewrite data set (its history and
    question, the topic in ``meta``)."""
    if fmt in READERS:
        examples = read_rewrite_data(path, fmt, limit=limit)
        return (_as_conversation(e, path) for e in examples), SkipReport(str(path), fmt)
    items, report = read_records(path, fmt, skip_invalid=skip_invalid)
    return islice(_conversations(items), limit), report


def _as_conversation(example: RewriteExample, path: str | Path) -> Conversation:
    try:
        return example.to_conversation()
    except SchemaError as exc:
        raise InputError(str(path), example.id, f"{exc} (the history must alternate to be answered)") from None


def _conversations(items: Iterator[Any]) -> Iterator[Conversation]:
    for item in items:
        if not isinstance(item, Conversation):
            raise ConfigError(f"expected conversations, not preference pairs (record {item.id!r})")
        yield item
