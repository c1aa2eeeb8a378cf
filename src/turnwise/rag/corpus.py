"""Documents to index: JSON Lines records, a folder of text files, or the answer spans of CANARD.

    docs = read_corpus("corpus.jsonl")                        # {"id", "text", "title"?} per line
    docs = read_corpus("notes/", "dir")                       # every .txt and .md file under the folder
    docs = read_corpus("canard_dev.json", "canard")           # one document per QuAC dialogue

``canard``: CANARD's ``History[2:]`` alternates QuAC questions and the Wikipedia spans that answer them;
the spans of one dialogue (its longest history; QuAC's "I don't know." left out) make one document, titled
with the article's title and section. It is a small local corpus on which follow-ups of the same
dialogues can be asked (see ``docs/rag.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from turnwise.data.io import iter_records
from turnwise.errors import ConfigError, InputError

CORPUS_FORMATS = ("jsonl", "dir", "canard")
_UNANSWERED = {"i don't know.", "cannotanswer"}


@dataclass(frozen=True)
class Document:
    """A text to index.

    Attributes:
        id: unique within the corpus; chunk ids are ``{id}#{n}``.
        text: the document's text.
        title: shown with each of its chunks and indexed with them.
    """

    id: str
    text: str
    title: str | None = None


def read_jsonl_corpus(path: Path) -> list[Document]:
    """Records ``{"id"?, "text" | "contents", "title"?}``, JSON Lines or a JSON array."""
    docs = []
    for line, record in iter_records(str(path)):
        text = record.get("text", record.get("contents"))
        if not isinstance(text, str):
            raise InputError(str(path), line, "a document needs a 'text' string")
        title = record.get("title")
        docs.append(Document(str(record.get("id", f"{path.stem}-{line}")), text, title if title else None))
    return docs


def read_text_dir(path: Path) -> list[Document]:
    """Every ``.txt`` and ``.md`` file under a folder, in path order; the id is the relative path."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".md"))
    return [Document(str(p.relative_to(path)), p.read_text(encoding="utf-8"), p.stem) for p in files]


def read_canard_corpus(path: Path) -> list[Document]:
    """One document per QuAC dialogue of a CANARD file: its answer spans, titled "title — section"."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), None, f"not readable as JSON ({exc})") from exc
    longest: dict[str, list[str]] = {}
    for row in rows:
        dialog, history = row["QuAC_dialog_id"], row["History"]
        if len(history) > len(longest.get(dialog, [])):
            longest[dialog] = history
    docs = []
    for dialog, history in longest.items():
        answers = [a.strip() for a in history[3::2] if a.strip().lower() not in _UNANSWERED]
        if answers:
            docs.append(Document(dialog, "\n".join(answers), f"{history[0]} — {history[1]}"))
    return docs


def read_corpus(path: str | Path, fmt: str = "auto") -> list[Document]:
    """The documents of a corpus; ``auto`` reads a folder as ``dir`` and a file as ``jsonl``.

    Raises:
        ConfigError: unknown format, or duplicate document ids.
        InputError: a malformed file.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = "dir" if path.is_dir() else "jsonl"
    readers = {"jsonl": read_jsonl_corpus, "dir": read_text_dir, "canard": read_canard_corpus}
    if fmt not in readers:
        raise ConfigError(f"unknown corpus format {fmt!r} (expected auto or one of {', '.join(CORPUS_FORMATS)})")
    docs = readers[fmt](path)
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise ConfigError(f"{path}: document id {doc.id!r} appears twice; ids must be unique")
        seen.add(doc.id)
    return docs
