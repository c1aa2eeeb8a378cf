"""The quickstart's toy world: places with facts, dialogues that refer back to them, and a check.

    splits = toy_splits(200, 96, seed=0)      # ShareGPT dialogues: train, held_out (entity pairs unseen), ...
    check_answer("The Nile is 6,650 km long.", "the Nile: 6,650 km")  # True: the entity meant, its fact

Sixteen rivers and mountains, each with a kind, a continent and a length or height. A dialogue has six
turns about two or three of them. It opens by naming one ("Tell me about the Nile."); every later turn
either brings in another entity, by name, in a standalone question ("Where is Fuji?") or by ellipsis
("And Fuji?", meaning the question before it, asked of Fuji), or refers back to one already in play: a
pronoun for the last one talked about ("How big is it?"), an ordinal ("Where is the first one?") or,
with two in play, "the other one" (which also leaves the question to the turn before: "And the other
one?"). Sizes are asked without giving the kind away ("How big is it?": a river's answer is its length,
a mountain's its height), and answers always name the entity, so a right answer shows whom the model
thought the user meant.

Every record's ``meta`` holds ``references`` (per assistant turn, the entity meant and the facts a right
answer states; :func:`check_answer`) and ``turn_kinds`` (``standalone``, ``ellipsis``, ``pronoun``,
``ordinal``, ``other``), so every turn is scored without a judge (:func:`outcomes`) and reported by
whether it needs its history (:func:`results_markdown`). The split holds out entity pairs: a held-out
dialogue's first two entities were never together in a training dialogue.

``INVENTED`` is the same world under invented names and facts (``world="invented"``), for a pretrained model that
would otherwise know the Nile's length; :func:`check_answer` knows the names of both.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turnwise.data.schema import Message
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

    @property
    def adjective(self) -> str:
        """What its size measures."""
        return "long" if self.kind == "river" else "high"


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
# The same world with invented names and facts, for a pretrained model (it cannot know them): names no place on
# Earth has, the same kinds and continents, sizes that are no real river's or mountain's.
INVENTED = (
    Entity("the Orvane", "river", "Africa", "5,320 km"),
    Entity("the Telmis", "river", "South America", "4,180 km"),
    Entity("the Quessa", "river", "Europe", "1,940 km"),
    Entity("the Brandul", "river", "Asia", "3,660 km"),
    Entity("the Hollvar", "river", "Europe", "2,270 km"),
    Entity("the Zafrine", "river", "Africa", "3,050 km"),
    Entity("the Merrisk", "river", "North America", "2,810 km"),
    Entity("the Kadova", "river", "Australia", "1,730 km"),
    Entity("Mount Varo", "mountain", "Africa", "4,470 m"),
    Entity("Tarnhelm", "mountain", "Europe", "3,915 m"),
    Entity("Ossiric", "mountain", "South America", "6,320 m"),
    Entity("Pelavo", "mountain", "Asia", "5,085 m"),
    Entity("Drumlas", "mountain", "North America", "4,760 m"),
    Entity("Vesperin", "mountain", "Europe", "3,340 m"),
    Entity("Calloway Peak", "mountain", "Australia", "2,615 m"),
    Entity("Ambrek", "mountain", "Africa", "5,560 m"),
)
WORLDS = {"real": ENTITIES, "invented": INVENTED}
NAMES = tuple(e.name for world in WORLDS.values() for e in world)  # what check_answer knows as entities
BY_NAME = {normalize(name): e for name, e in zip(NAMES, (*ENTITIES, *INVENTED), strict=True)}  # normalized name
SEPARATOR = " | "  # between the facts of one reference
KINDS = ("standalone", "ellipsis", "pronoun", "ordinal", "other")
DEPENDENT = KINDS[1:]  # the kinds that can only be answered with the history
TURNS = 6
ORDINALS = ("the first one", "the second one", "the third one")

# How a question about a fact names its subject ({x}: a name, "it", "the first one"...).
QUESTIONS = {"about": ("Tell me about {x}.", "What do you know about {x}?"),
             "size": ("How big is {x}?", "What is the size of {x}?"),
             "where": ("Where is {x}?", "On which continent is {x}?")}
ELLIPSES = ("And {x}?", "What about {x}?")


def answer(entity: Entity, fact: str) -> tuple[str, str]:
    """The gold answer about ``entity``'s ``fact`` (``about``, ``size``, ``where``) and its reference."""
    if fact == "about":
        return f"{entity.title} is a {entity.kind} in {entity.where}.", _reference(entity, entity.kind, entity.where)
    if fact == "size":
        return f"{entity.title} is {entity.size} {entity.adjective}.", _reference(entity, entity.size)
    return f"{entity.title} is in {entity.where}.", _reference(entity, entity.where)


def _reference(entity: Entity, *facts: str) -> str:
    """What :func:`check_answer` checks: the entity meant, and the facts a right answer states."""
    return f"{entity.name}: {SEPARATOR.join(facts)}"


def _ask(fact: str, subject: str, rng: random.Random) -> str:
    question = rng.choice(QUESTIONS[fact]).format(x=subject)
    return question[0].upper() + question[1:]


@dataclass
class _Dialogue:
    """What a dialogue has said so far: who is in play (in order), who was talked about last, and about what."""

    in_play: list[Entity]
    last: Entity
    fact: str


def dialogue_turns(entities: list[Entity], rng: random.Random, turns: int = TURNS, referring: bool = True
                   ) -> list[tuple[str, str, str, str]]:
    """The (question, answer, reference, kind) turns of a dialogue that brings in ``entities`` in order.

    With ``referring`` off, every question names its entity (no pronoun, ordinal, "the other one" or ellipsis): the
    same dialogue with no turn that needs its history.
    """
    if not referring:
        return [_named(turn, rng) for turn in dialogue_turns(entities, rng, turns)]
    first = entities[0]
    state = _Dialogue([first], first, "about")
    gold, reference = answer(first, "about")
    out = [(_ask("about", first.name, rng), gold, reference, "standalone")]
    # Where the other entities come in: somewhere in the follow-ups, the second one early enough to be
    # referred back to past the third.
    slots = sorted(rng.sample(range(1, turns - 1), len(entities) - 1))
    for position in range(1, turns):
        if slots and position == slots[0]:
            slots.pop(0)
            out.append(_introduce(entities[len(state.in_play)], state, rng))
        else:
            out.append(_refer_back(state, rng))
    return out


def _named(turn: tuple[str, str, str, str], rng: random.Random) -> tuple[str, str, str, str]:
    """A turn asked again as a standalone question that names its entity."""
    _question, gold, reference, kind = turn
    if kind == "standalone":
        return turn
    entity = BY_NAME[normalize(reference.rpartition(": ")[0])]
    fact = next(f for f in QUESTIONS if answer(entity, f) == (gold, reference))
    return _ask(fact, entity.name, rng), gold, reference, "standalone"


def _introduce(entity: Entity, state: _Dialogue, rng: random.Random) -> tuple[str, str, str, str]:
    """A new entity, by name: an ellipsis of the last question, or a standalone one."""
    if rng.random() < 0.6:
        question, kind, fact = rng.choice(ELLIPSES).format(x=entity.name), "ellipsis", state.fact
    else:
        fact = rng.choice(("size", "where"))
        question, kind = _ask(fact, entity.name, rng), "standalone"
    state.in_play.append(entity)
    state.last, state.fact = entity, fact
    return (question, *answer(entity, fact), kind)


def _refer_back(state: _Dialogue, rng: random.Random) -> tuple[str, str, str, str]:
    """A question about an entity in play, named by a pronoun, an ordinal or "the other one"."""
    choices = ["pronoun", "ordinal"] + (["other"] if len(state.in_play) == 2 else [])
    kind = rng.choice(choices) if len(state.in_play) > 1 else "pronoun"
    facts = ("size", "where")
    fact = rng.choice([f for f in facts if f != state.fact] if kind == "pronoun" else facts)  # never the same again
    if kind == "pronoun":
        entity, question = state.last, _ask(fact, "it", rng)
    elif kind == "ordinal":
        index = rng.choice([k for k, e in enumerate(state.in_play) if (e, fact) != (state.last, state.fact)])
        entity, question = state.in_play[index], _ask(fact, ORDINALS[index], rng)
    else:
        entity = next(e for e in state.in_play if e != state.last)
        if rng.random() < 0.5 and state.fact != "about":
            fact, question = state.fact, rng.choice(ELLIPSES).format(x="the other one")
        else:
            question = _ask(fact, "the other one", rng)
    state.last, state.fact = entity, fact
    return (question, *answer(entity, fact), kind)


def toy_dialogues(n: int, seed: int = 0, pairs: list[tuple[int, int]] | None = None,
                  prefix: str = "toy", avoid: set[frozenset[int]] | None = None, world: str = "real",
                  referring: bool = True) -> list[dict[str, Any]]:
    """``n`` ShareGPT dialogues (ids ``<prefix>-000``...) whose first two entities are one of ``pairs``.

    Args:
        n: how many.
        seed: decides everything.
        pairs: ordered pairs of entity indices the dialogues open with (default: every pair).
        prefix: the ids' prefix.
        avoid: unordered pairs no two entities of a dialogue may form (the held-out ones, for training).
        world: ``real`` (``ENTITIES``) or ``invented`` (``INVENTED``: the same world under names and facts no
            pretrained model can know).
        referring: off = every question names its entity (no turn needs its history; :func:`dialogue_turns`).
    """
    entities = _world(world)
    rng = random.Random(seed)
    pairs = pairs or all_pairs()
    avoid = avoid or set()
    dialogues = []
    for i in range(n):
        ia, ib = pairs[rng.randrange(len(pairs))]
        chosen = [ia, ib]
        if rng.random() < 0.5:  # a third entity in play, never one that forms a held-out pair
            options = [c for c in range(len(entities))
                       if c not in chosen and not {frozenset((c, ia)), frozenset((c, ib))} & avoid]
            chosen += [rng.choice(options)] if options else []
        turns = dialogue_turns([entities[k] for k in chosen], rng, referring=referring)
        conv = [{"from": who, "value": text} for q, ans, _, _ in turns for who, text in (("human", q), ("gpt", ans))]
        meta = {"references": [t[2] for t in turns], "turn_kinds": [t[3] for t in turns],
                "entities": [entities[k].name for k in chosen]}
        dialogues.append({"id": f"{prefix}-{i:03d}", "conversations": conv, "meta": meta})
    return dialogues


def _world(name: str) -> tuple[Entity, ...]:
    if name not in WORLDS:
        raise ValueError(f"unknown toy world {name!r}; worlds: {', '.join(WORLDS)}")
    return WORLDS[name]


def all_pairs() -> list[tuple[int, int]]:
    """Every ordered pair of two different entities."""
    return [(a, b) for a in range(len(ENTITIES)) for b in range(len(ENTITIES)) if a != b]


def toy_splits(n_train: int, n_held_out: int, seed: int = 0, held_out_share: float = 0.2, n_prefs: int = 0,
               prefs_share: float = 0.2, n_dev: int = 0, dev_share: float = 0.1, world: str = "real",
               n_named: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Dialogues for SFT (``train``), for preference data (``prefs``), for choosing settings (``dev``) and for the
    evaluation (``held_out``).

    The unordered entity pairs are dealt out (a fixed seed decides how): ``held_out_share`` of them to the
    evaluation, ``prefs_share`` to the preference data, ``dev_share`` to the development split (when ``n_dev``),
    the rest to SFT. A dialogue opens with a pair of its split, and no two entities a ``train`` or ``prefs``
    dialogue names form a held-out or dev pair; no two a ``train`` dialogue names form a ``prefs`` pair either.
    So the preference data asks about combinations the SFT model never saw (as dialogues a user simulator grows
    would), and the dev split and the evaluation about ones that no training saw, the two on different pairs
    (settings chosen on dev are tested once on pairs they were not chosen on). ``named`` (``n_named`` of them) are
    SFT dialogues on the same pairs whose every question names its entity: training data with no dependent turn.
    """
    unordered = sorted({frozenset(p) for p in all_pairs()}, key=sorted)
    random.Random(seed).shuffle(unordered)
    cut = max(1, round(len(unordered) * held_out_share))
    cut_prefs = cut + (max(1, round(len(unordered) * prefs_share)) if n_prefs else 0)
    cut_dev = cut_prefs + (max(1, round(len(unordered) * dev_share)) if n_dev else 0)
    held, prefs, dev = set(unordered[:cut]), set(unordered[cut:cut_prefs]), set(unordered[cut_prefs:cut_dev])

    def opening(group: set[frozenset[int]] | None) -> list[tuple[int, int]]:
        return [p for p in all_pairs() if (frozenset(p) in group if group is not None
                                           else frozenset(p) not in held | prefs | dev)]

    return {"train": toy_dialogues(n_train, seed + 1, opening(None), "train", avoid=held | prefs | dev, world=world),
            "prefs": toy_dialogues(n_prefs, seed + 3, opening(prefs), "prefs", avoid=held | dev, world=world)
            if n_prefs else [],
            "dev": toy_dialogues(n_dev, seed + 4, opening(dev), "dev", avoid=held, world=world) if n_dev else [],
            "held_out": toy_dialogues(n_held_out, seed + 2, opening(held), "heldout", world=world),
            "named": toy_dialogues(n_named, seed + 1, opening(None), "named", avoid=held | prefs | dev, world=world,
                                   referring=False) if n_named else []}


def check_answer(response: str, reference: str) -> bool:
    """Whether ``response`` is right for the entity the user meant.

    ``reference`` is ``"<entity>: <fact> | <fact>"`` (the entity part is optional): the response must state
    every fact and the entity's name, as whole words, and name no other entity of the toy world. Both
    sides are normalised as the ``normalized`` scorer does (case, punctuation, English articles), so "THE
    NILE is 6,650 km long" is right, "It is 6,650 km long" is not (whom does it mean?), and "The Congo is in
    Africa" is wrong when the user meant Mount Kenya, also in Africa.
    """
    entity, _, facts = reference.rpartition(": ")
    said = f" {normalize(response)} "
    others = [name for name in NAMES if normalize(name) != normalize(entity)] if entity else []
    named = _says(said, entity) if entity else True
    return named and all(_says(said, fact) for fact in facts.split(SEPARATOR)) and not any(_says(said, o)
                                                                                          for o in others)


def error_category(response: str, reference: str, history: Sequence[Message]) -> str:
    """The kind of error a wrong ``response`` makes, by the entities it names (for on-policy CaPO pairs).

    ``misunderstanding``: it names another entity that is in play (named earlier in the dialogue: the wrong
    referent); ``neglect_or_hallucination``: it names an entity the dialogue never mentioned (an answer that
    ignores the history or invents one; the two cannot be told apart from the answer); ``no_referent``: it names
    no entity at all; ``fact``: it names only the right entity, with a wrong or missing fact (not a context
    error); ``right`` when :func:`check_answer` passes.
    """
    if check_answer(response, reference):
        return "right"
    entity = reference.rpartition(": ")[0]
    said = f" {normalize(response)} "
    named = {name for name in NAMES if _says(said, name)}
    earlier = f" {normalize(' '.join(m['content'] for m in history))} "
    in_play = {name for name in NAMES if _says(earlier, name)}
    wrong = {name for name in named if normalize(name) != normalize(entity)}
    if wrong & in_play:
        return "misunderstanding"
    if wrong:
        return "neglect_or_hallucination"
    return "fact" if named else "no_referent"


def _says(normalized_text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\S){re.escape(normalize(phrase))}(?!\S)", normalized_text) is not None


Outcomes = dict[str, list[tuple[str, bool]]]  # dialogue id -> (kind, right) per assistant turn


def outcomes(records: list[dict[str, Any]]) -> Outcomes:
    """Per dialogue id, each assistant turn's kind and whether it states its reference (unanswered = wrong).

    Args:
        records: answers to toy scripts (``turnwise generate`` records whose ``meta`` came with the script:
            ``references`` and ``turn_kinds``).
    """
    result = {}
    for record in records:
        answers = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        meta = record["meta"]
        result[record["id"]] = [(kind, k < len(answers) and check_answer(answers[k], ref))
                                for k, (ref, kind) in enumerate(zip(meta["references"], meta["turn_kinds"],
                                                                    strict=True))]
    return result


def teacher_forced_prompts(dialogues: Sequence[Any]) -> list[Any]:
    """Each turn of each gold dialogue as its own prompt: the gold history up to that question (teacher forcing).

    Args:
        dialogues: :class:`~turnwise.data.schema.Conversation` objects with their gold answers and the toy
            ``meta`` (``references``, ``turn_kinds``).

    Returns:
        Conversations ``<id>/t<k>`` ending with the k-th question, whose ``meta`` holds that turn's reference and
        kind, and ``dialogue`` and ``turn`` (:func:`teacher_forced_outcomes` puts the answers back together).
    """
    from turnwise.data.schema import Conversation

    prompts = []
    for dialogue in dialogues:
        users = [k for k, m in enumerate(dialogue.messages) if m["role"] == "user"]
        for turn, (end, ref, kind) in enumerate(zip(users, dialogue.meta["references"], dialogue.meta["turn_kinds"],
                                                    strict=False)):
            prompts.append(Conversation(f"{dialogue.id}/t{turn}", dialogue.messages[:end + 1],
                                        meta={"references": [ref], "turn_kinds": [kind], "dialogue": dialogue.id,
                                              "turn": turn}))
    return prompts


def teacher_forced_outcomes(records: list[dict[str, Any]]) -> Outcomes:
    """:func:`outcomes` of the answers to :func:`teacher_forced_prompts`: per dialogue, each turn answered with the
    gold history (unanswered = wrong)."""
    turns: dict[str, dict[int, tuple[str, bool]]] = {}
    for record in records:
        meta = record["meta"]
        messages = record["messages"]
        answered = bool(messages) and messages[-1]["role"] == "assistant" and record.get("status", "ok") == "ok"
        right = answered and check_answer(messages[-1]["content"], meta["references"][0])
        turns.setdefault(meta["dialogue"], {})[meta["turn"]] = (meta["turn_kinds"][0], right)
    return {rid: [by_turn[k] for k in sorted(by_turn)] for rid, by_turn in turns.items()}


ERRORS = ("misunderstanding", "neglect_or_hallucination", "no_referent", "fact")


def error_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many of the dependent turns the answers got wrong fall in each :func:`error_category` (``ERRORS``), each
    judged against the history the model itself had (its own earlier answers)."""
    counts = dict.fromkeys(ERRORS, 0)
    for record in records:
        meta, messages = record["meta"], record["messages"]
        spots = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
        for k, (ref, kind) in enumerate(zip(meta["references"], meta["turn_kinds"], strict=True)):
            if kind not in DEPENDENT:
                continue
            if k >= len(spots):
                counts["no_referent"] += 1  # unanswered: no entity named
                continue
            category = error_category(messages[spots[k]]["content"], ref, messages[:spots[k]])
            if category != "right":
                counts[category] += 1
    return counts


def _subject(text: str, state: _Dialogue | None) -> tuple[Entity, str] | None:
    """Whom a question's subject means, and how it names them (``standalone``: by name; ``pronoun``, ``ordinal``,
    ``other``), given the dialogue so far."""
    said = normalize(text)
    if said in BY_NAME:
        return BY_NAME[said], "standalone"
    if state is None:
        return None
    if said == "it":
        return state.last, "pronoun"
    ordinals = [normalize(o) for o in ORDINALS]
    if said in ordinals and ordinals.index(said) < len(state.in_play):
        return state.in_play[ordinals.index(said)], "ordinal"
    if said == normalize("the other one") and len(state.in_play) == 2:
        return next(e for e in state.in_play if e != state.last), "other"
    return None


def _read(question: str, state: _Dialogue | None) -> tuple[Entity, str, str] | None:
    """A question asked the way the world asks them, read: (entity, fact, kind), or None."""
    text = " ".join(question.split())
    for template in ELLIPSES:
        head, tail = template.split("{x}")
        if text.lower().startswith(head.lower()) and text.endswith(tail) and state is not None:
            found = _subject(text[len(head):len(text) - len(tail)], state)
            if found:
                return found[0], state.fact, "ellipsis" if found[1] == "standalone" else found[1]
    for fact, templates in QUESTIONS.items():
        for template in templates:
            head, tail = template.split("{x}")
            if text.lower().startswith(head.lower()) and text.endswith(tail):
                found = _subject(text[len(head):len(text) - len(tail)], state)
                if found:
                    return found[0], fact, found[1]
    return None


def oracle_turns(messages: Sequence[Message]) -> list[tuple[str, str, str]] | None:
    """The gold (answer, reference, kind) of every user turn of a toy dialogue, read from its questions alone (the
    world's own answers, whatever the assistant said), or None when a question is not one the world asks."""
    state: _Dialogue | None = None
    out = []
    for message in messages:
        if message["role"] != "user":
            continue
        read = _read(message["content"], state)
        if read is None:
            return None
        entity, fact, kind = read
        if state is None:
            state = _Dialogue([entity], entity, fact)
        elif entity not in state.in_play:
            state.in_play.append(entity)
        state.last, state.fact = entity, fact
        out.append((*answer(entity, fact), kind))
    return out


def oracle_reference(messages: Sequence[Message]) -> str | None:
    """The reference of the dialogue's last question (:func:`check_answer`'s), or None when the world does not ask it:
    a user simulator's reference (``user_reference: turnwise.quickstart.world:oracle_reference``), so the turns a
    trained ask model writes are scored without a judge."""
    turns = oracle_turns(messages)
    return turns[-1][1] if turns else None


def off_world(text: str, messages: Sequence[Message]) -> str | None:
    """A user-turn filter (``filters: {check: turnwise.quickstart.world:off_world}``): ``off_world`` when the world
    does not ask ``text`` after ``messages`` (:func:`oracle_turns` cannot read it), so a simulator regenerates it."""
    return None if oracle_turns([*messages, {"role": "user", "content": text}]) is not None else "off_world"


class OracleModel:
    """The toy world as an assistant: the gold answer to the last question (a ``module:Class`` backend).

        models:
          oracle: {model: toy-world, backend: "turnwise.quickstart.world:OracleModel"}

    It reads the questions as the world asks them (:func:`oracle_turns`: names, "it", ordinals, "the other one",
    "And X?"), so dialogues a user simulator grows get right answers without a judge; a question it cannot read is
    a failed call (the dialogue ends there, its turns so far kept in the failed record).
    """

    backend = "toy-oracle"

    def __init__(self, spec: Any):
        self.spec = spec
        self.model = spec.model

    @property
    def cache_identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model}

    async def chat(self, conversations: Sequence[list[Message]], settings: Any) -> list[Any]:
        from turnwise.models.base import Completion

        out = []
        for messages in conversations:
            turns = oracle_turns(messages)
            if turns is None:
                question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
                out.append(Completion(error=f"the toy world does not ask {question[:80]!r}"))
            else:
                out.append(Completion([turns[-1][0]] * max(1, settings.n), ["stop"] * max(1, settings.n)))
        return out

    async def aclose(self) -> None:
        return None
