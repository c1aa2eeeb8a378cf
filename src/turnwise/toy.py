"""The quickstart's toy world: places with attributes, dialogues that refer back to them, and a check.

    train, held_out = toy_splits(200, 96, seed=0)     # ShareGPT dialogues; held-out entity pairs unseen
    check_answer("It is 6,650 km long.", "the Nile: 6,650 km")  # True: the fact asked for, no other entity

Sixteen rivers and mountains, each with a kind, a continent and a length or height. Every dialogue has
four turns about two of them, A then B: a standalone opener that names A, then three follow-ups that
only make sense with their history: a pronoun ("How long is it?"), an ellipsis ("And Fuji?", meaning
"how high is Fuji?"), and either a one-anaphora back past B ("How long is the first one?") or a pronoun
for B ("Where is it?"). Each answer has a reference, the facts a right answer states about the entity
the user meant (``meta.references``, one per assistant turn), so every turn is scored without a judge
(:func:`check_answer`, :func:`outcomes`). The split holds out whole (A, B) pairs: a held-out dialogue
combines entities that training saw, but never together.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from turnwise.score.verifiable import normalize


@dataclass(frozen=True)
class Entity:
    """A place the toy world knows three facts about."""

    name: str
    kind: str
    where: str
    size: str

    @property
    def title(self) -> str:
        """The name at the start of a sentence."""
        return self.name[0].upper() + self.name[1:]


ENTITIES = (
    Entity("the Nile", "river", "Africa", "6,650 km"),
    Entity("the Amazon", "river", "South America", "6,400 km"),
    Entity("the Danube", "river", "Europe", "2,850 km"),
    Entity("the Mekong", "river", "Asia", "4,900 km"),
    Entity("the Volga", "river", "Europe", "3,530 km"),
    Entity("the Congo", "river", "Africa", "4,700 km"),
    Entity("the Yukon", "river", "North America", "3,190 km"),
    Entity("the Murray", "river", "Australia", "2,508 km"),
    Entity("Mount Kenya", "mountain", "Africa", "5,199 m"),
    Entity("Mont Blanc", "mountain", "Europe", "4,806 m"),
    Entity("Aconcagua", "mountain", "South America", "6,961 m"),
    Entity("Fuji", "mountain", "Asia", "3,776 m"),
    Entity("Denali", "mountain", "North America", "6,190 m"),
    Entity("Elbrus", "mountain", "Europe", "5,642 m"),
    Entity("Kosciuszko", "mountain", "Australia", "2,228 m"),
    Entity("Kilimanjaro", "mountain", "Africa", "5,895 m"),
)
OPENERS = ("Tell me about {a}.", "What is {a}?", "What do you know about {a}?")
SIZE_QUESTIONS = {"river": ("How long is it?", "What is its length?"),
                  "mountain": ("How high is it?", "What is its height?")}
ADJECTIVE = {"river": "long", "mountain": "high"}
ELLIPSES = ("And {b}?", "What about {b}?")
SEPARATOR = " | "  # between the facts of one reference


def _last_turn(a: Entity, b: Entity, rng: random.Random) -> tuple[str, str, str]:
    """The fourth turn: back to the first entity past the second one, or a pronoun for the second."""
    choice = rng.randrange(3)
    if choice == 0:
        question = rng.choice(("Where is the first one?", "And where is the first one?"))
        return question, f"{a.title} is in {a.where}.", _reference(a, a.where)
    if choice == 1:
        question = "How long is the first one?" if a.kind == "river" else "How high is the first one?"
        return question, f"{a.title} is {a.size} {ADJECTIVE[a.kind]}.", _reference(a, a.size)
    return rng.choice(("Where is it?", "And where is that one?")), f"{b.title} is in {b.where}.", \
        _reference(b, b.where)


def _reference(entity: Entity, *facts: str) -> str:
    """What :func:`check_answer` checks: the entity meant, and the facts a right answer states."""
    return f"{entity.name}: {SEPARATOR.join(facts)}"


def dialogue_turns(a: Entity, b: Entity, rng: random.Random) -> list[tuple[str, str, str]]:
    """The four (question, answer, reference) turns of a dialogue about ``a``, then ``b``."""
    return [
        (rng.choice(OPENERS).format(a=a.name), f"{a.title} is a {a.kind} in {a.where}.",
         _reference(a, a.kind, a.where)),
        (rng.choice(SIZE_QUESTIONS[a.kind]), f"It is {a.size} {ADJECTIVE[a.kind]}.", _reference(a, a.size)),
        (rng.choice(ELLIPSES).format(b=b.name), f"{b.title} is {b.size} {ADJECTIVE[b.kind]}.",
         _reference(b, b.size)),
        _last_turn(a, b, rng),
    ]


def toy_dialogues(n: int, seed: int = 0, pairs: list[tuple[int, int]] | None = None,
                  prefix: str = "toy") -> list[dict[str, Any]]:
    """``n`` ShareGPT dialogues (ids ``<prefix>-000``...) over ``pairs`` of entity indices (all pairs when None).

    Each record's ``meta`` holds ``references`` (one per assistant turn) and the two entities.
    """
    rng = random.Random(seed)
    pairs = pairs or all_pairs()
    dialogues = []
    for i in range(n):
        ia, ib = pairs[rng.randrange(len(pairs))]
        turns = dialogue_turns(ENTITIES[ia], ENTITIES[ib], rng)
        conv = [{"from": who, "value": text} for q, ans, _ in turns for who, text in (("human", q), ("gpt", ans))]
        meta = {"references": [ref for _, _, ref in turns], "entities": [ENTITIES[ia].name, ENTITIES[ib].name]}
        dialogues.append({"id": f"{prefix}-{i:03d}", "conversations": conv, "meta": meta})
    return dialogues


def all_pairs() -> list[tuple[int, int]]:
    """Every ordered pair of two different entities."""
    return [(a, b) for a in range(len(ENTITIES)) for b in range(len(ENTITIES)) if a != b]


def toy_splits(n_train: int, n_held_out: int, seed: int = 0, held_out_share: float = 0.2
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and held-out dialogues whose (A, B) entity pairs do not overlap (a fixed seed decides which)."""
    pairs = all_pairs()
    random.Random(seed).shuffle(pairs)
    cut = max(1, round(len(pairs) * held_out_share))
    held, train = pairs[:cut], pairs[cut:]
    return (toy_dialogues(n_train, seed + 1, train, "train"),
            toy_dialogues(n_held_out, seed + 2, held, "heldout"))


def texts(dialogues: list[dict[str, Any]]) -> list[str]:
    """Every turn's text, to train the tokenizer on."""
    return [turn["value"] for d in dialogues for turn in d["conversations"]]


def check_answer(response: str, reference: str) -> bool:
    """Whether ``response`` is right for the entity the user meant.

    ``reference`` is ``"<entity>: <fact> | <fact>"`` (the entity part is optional): the response must state
    every fact, as whole words, and name no other entity of the toy world. Both sides are normalised as
    the ``normalized`` scorer does (case, punctuation, English articles), so "It is 6,650 KM long" states
    "6,650 km", while "The Congo is in Africa" is wrong when the user meant Mount Kenya, also in Africa.
    """
    entity, _, facts = reference.rpartition(": ")
    said = f" {normalize(response)} "
    others = [e.name for e in ENTITIES if normalize(e.name) != normalize(entity)] if entity else []
    return all(_says(said, fact) for fact in facts.split(SEPARATOR)) and not any(_says(said, o) for o in others)


def _says(normalized_text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\S){re.escape(normalize(phrase))}(?!\S)", normalized_text) is not None


TURNS = ("turn 1: names A", 'turn 2: "it"', 'turn 3: "And B?"', 'turn 4: "the first one" / "it"')


def outcomes(records: list[dict[str, Any]]) -> dict[str, list[bool]]:
    """Per dialogue id, whether each assistant turn states its reference (a turn never answered is wrong).

    Args:
        records: answers to toy scripts (``turnwise generate`` records whose ``meta.references`` came
            with the script).
    """
    result = {}
    for record in records:
        answers = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        references = record["meta"]["references"]
        result[record["id"]] = [k < len(answers) and check_answer(answers[k], ref) for k, ref in enumerate(references)]
    return result


def _cell(right: int, total: int) -> str:
    return f"{right / total:.0%} ({right}/{total})" if total else "—"


def _counts(by_id: dict[str, list[bool]], turns: range) -> tuple[int, int]:
    marks = [turn_marks[k] for turn_marks in by_id.values() for k in turns]
    return sum(marks), len(marks)


def results_markdown(by_model: dict[str, dict[str, list[bool]]], *, against: str | None = None
                     ) -> tuple[str, dict[str, Any]]:
    """The evaluation table (Markdown) and its numbers, for models answering the same held-out scripts.

    Turn 1 names its entity (standalone); turns 2–4 can only be answered right with the history
    (dependent). Below the table: how many dependent turns the last model got right that ``against``
    (default: the first model) got wrong and the other way round, so a difference can be told from noise.
    """
    lines = ["| model | standalone (turn 1) | dependent (turns 2–4) | " + " | ".join(TURNS[1:]) + " |",
             "|---|---|---|" + "---|" * (len(TURNS) - 1)]
    summary: dict[str, Any] = {}
    for name, by_id in by_model.items():
        cells = [_counts(by_id, range(0, 1)), _counts(by_id, range(1, len(TURNS)))]
        cells += [_counts(by_id, range(k, k + 1)) for k in range(1, len(TURNS))]
        lines.append(f"| {name} | " + " | ".join(_cell(*c) for c in cells) + " |")
        summary[name] = {"dialogues": len(by_id), "standalone": _ratio(*cells[0]), "dependent": _ratio(*cells[1]),
                         "by_turn": [_ratio(*_counts(by_id, range(k, k + 1))) for k in range(len(TURNS))]}
    first, last = against or next(iter(by_model)), list(by_model)[-1]
    fixed, broken = _changes(by_model[first], by_model[last])
    summary["changes"] = {"fixed": fixed, "broken": broken}
    dialogues = len(by_model[first])
    lines += ["", f"{dialogues} held-out dialogues (entity pairs unseen in training), answered turn by turn with "
              "each model's own history, greedy; a turn is right when it states the fact(s) asked for and names no "
              f"entity but the one the user meant (`turnwise.toy.check_answer`). Dependent turns, {last} vs "
              f"{first}: {fixed} now right, {broken} now wrong."]
    return "\n".join(lines) + "\n", summary


def _ratio(right: int, total: int) -> float:
    return round(right / total, 4) if total else 0.0


def _changes(before: dict[str, list[bool]], after: dict[str, list[bool]]) -> tuple[int, int]:
    """Dependent turns right after but not before, and the other way round."""
    pairs = [(b, a) for rid in before for b, a in zip(before[rid][1:], after.get(rid, [])[1:], strict=False)]
    return sum(a and not b for b, a in pairs), sum(b and not a for b, a in pairs)


def rejected_right(pairs: list[Any], dialogues: list[Any]) -> int:
    """How many CaPO pairs' rejected answers state the right fact all the same (a wrong history can share it).

    Args:
        pairs: :class:`~turnwise.data.schema.PreferencePair` rows of ``turnwise capo`` (``meta.source_id``
            and ``meta.turn_index``, the turn's position in the dialogue's messages).
        dialogues: the toy dialogues they came from (conversations with ``meta.references``).
    """
    references = {conv.id: conv.meta["references"] for conv in dialogues}
    return sum(check_answer(p.rejected, references[p.meta["source_id"]][p.meta["turn_index"] // 2]) for p in pairs)
