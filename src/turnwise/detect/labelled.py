"""Public data sets with context-dependence labels, read as (history, turn, label) examples.

- MuDoCo-QR news (``mudoco_news.json``): odd-numbered turns are the user's, even ones the system's; a
  graded user turn after the first is dependent when ``rewrite_required`` is true.
- CANARD dev (``canard_dev.json``): ``History[0:2]`` are the article title and section, then question and
  answer alternate; a question is dependent when its human rewrite differs from it. The first question
  of each dialogue is left out, as the detector labels user turns after the first.
- Chinese utterance rewriting (``zh_rewrite_dev.txt``, Su et al. 2019): utterance 1 (user), utterance 2
  (assistant), the current user utterance and its rewrite, separated by two tabs; dependent when the
  rewrite differs.
- The toy world (``toy_world``, generated, no file): 200 dialogues of the real and 200 of the invented world
  (:func:`turnwise.quickstart.world.toy_dialogues`), user turns after the first labelled by their
  ``turn_kinds`` (``standalone`` or a kind of reference).

Each public example keeps its human rewrite where there is one: a rewrite is a standalone turn in the same place
(:func:`with_rewrites`), which the learned detector trains on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from turnwise.data.schema import Message


@dataclass(frozen=True)
class LabelledTurn:
    """One labelled user turn.

    Attributes:
        group: the dialogue it comes from (folds of a cross-validation keep a dialogue together).
        messages: the conversation up to and including the turn (the turn is the last message).
        dependent: the gold label.
        lang: ``en`` or ``zh``.
        rewrite: a self-contained rewrite of the turn by a person, where the data has one.
    """

    group: str
    messages: tuple[Message, ...]
    dependent: bool
    lang: str
    rewrite: str | None = None

    @property
    def turn(self) -> str:
        return self.messages[-1]["content"]

    @property
    def history(self) -> list[str]:
        return [m["content"] for m in self.messages[:-1] if m["role"] != "system"]


def load_mudoco(path: str | Path) -> list[LabelledTurn]:
    dialogs = json.loads(Path(path).read_text(encoding="utf-8"))["dialogs"]
    examples = []
    for dialog_id, dialog in dialogs.items():
        messages: list[Message] = []
        for turn in sorted(dialog["turns"], key=lambda t: t["number"]):
            role = "user" if turn["number"] % 2 == 1 else "assistant"
            messages.append({"role": role, "content": turn["utterance"]})
            if role == "user" and turn["number"] > 1 and turn.get("graded"):
                examples.append(LabelledTurn(dialog_id, tuple(messages), bool(turn["rewrite_required"]), "en",
                                             turn.get("rewritten_utterance")))
    return examples


def load_canard(path: str | Path) -> list[LabelledTurn]:
    examples = []
    for row in json.loads(Path(path).read_text(encoding="utf-8")):
        if row["Question_no"] < 2:
            continue
        title, section, *turns = row["History"]
        messages: list[Message] = [{"role": "system", "content": f"{title} — {section}"}]
        for k, text in enumerate(turns):
            messages.append({"role": "user" if k % 2 == 0 else "assistant", "content": text})
        messages.append({"role": "user", "content": row["Question"]})
        dependent = row["Question"].strip() != row["Rewrite"].strip()
        examples.append(LabelledTurn(row["QuAC_dialog_id"], tuple(messages), dependent, "en", row["Rewrite"]))
    return examples


def load_zh_rewrite(path: str | Path) -> list[LabelledTurn]:
    examples = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        fields = line.split("\t\t")
        if len(fields) != 4:
            continue
        first, answer, current, rewrite = (f.strip() for f in fields)
        messages = ({"role": "user", "content": first}, {"role": "assistant", "content": answer},
                    {"role": "user", "content": current})
        examples.append(LabelledTurn(f"zh-{n}", messages, current != rewrite, "zh", rewrite))
    return examples


def load_toy_world(_: Path | None = None) -> list[LabelledTurn]:
    from turnwise.quickstart.world import toy_dialogues

    examples = []
    for world, seed in (("real", 11), ("invented", 12)):
        for dialogue in toy_dialogues(200, seed=seed, world=world, prefix=f"toy-{world}"):
            messages: list[Message] = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]}
                                       for t in dialogue["conversations"]]
            users = [i for i, m in enumerate(messages) if m["role"] == "user"]
            for k, i in enumerate(users[1:], 1):
                dependent = dialogue["meta"]["turn_kinds"][k] != "standalone"
                examples.append(LabelledTurn(dialogue["id"], tuple(messages[: i + 1]), dependent, "en"))
    return examples


def with_rewrites(examples: list[LabelledTurn]) -> list[LabelledTurn]:
    """The examples and, for each dependent turn with a different human rewrite, that rewrite as a standalone turn."""
    extra = [LabelledTurn(e.group, (*e.messages[:-1], {"role": "user", "content": e.rewrite}), False, e.lang)
             for e in examples if e.dependent and e.rewrite and e.rewrite.strip() != e.turn.strip()]
    return examples + extra


# name → (file under the data folder, or None for generated data; loader)
DATASETS: dict[str, tuple[str | None, Callable[[Path], list[LabelledTurn]]]] = {
    "mudoco_news": ("context/mudoco_news.json", load_mudoco),
    "canard_dev": ("context/canard_dev.json", load_canard),
    "zh_rewrite_dev": ("context/zh_rewrite_dev.txt", load_zh_rewrite),
    "toy_world": (None, load_toy_world),
}


def load_dataset(name: str, data_dir: str | Path) -> list[LabelledTurn]:
    """Load one of :data:`DATASETS` from the shared data folder."""
    relative, loader = DATASETS[name]
    return loader(Path(data_dir) / relative if relative else Path(data_dir))
