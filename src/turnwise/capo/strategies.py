"""The three CaPO negatives (Parrot, arXiv 2310.07301 v2): each decides what the model sees, then asks it.

=================  ============  ==========================================================================
strategy           mode          what the negative writer is shown
=================  ============  ==========================================================================
neglect            plain         the dependent user turn alone (after the system message, if any)
neglect            prompted      the turn alone, wrapped in an instruction to answer it as it stands
hallucination      simulator     an invented history: an opening user turn sampled from the user
                                 simulator (any chat model; the negative writer by default), the
                                 writer's own answer to it, then the turn
hallucination      prompted      a history the writer invents for the turn (template, parsed strictly)
misunderstanding   shuffle       a shuffled subset of the true history without its last exchange (the
                                 one the turn most likely points at); falls back to ``other`` when the
                                 turn has a single exchange before it
misunderstanding   other         the history of another dialogue, cut to the same number of exchanges
misunderstanding   prompted      the true history and an instruction to misread what the turn refers to
on_policy          sampled       the true history: the policy (the negative writer) samples N answers, a
                                 check against the turn's reference keeps the first that fails as the
                                 rejected answer, labelled with the kind of error it makes
=================  ============  ==========================================================================

``plain``, ``simulator``, ``shuffle`` and ``other`` work with any model, tiny local ones included; the
``prompted`` modes need an instruction model; ``on_policy`` needs a check (``check(response, reference) ->
bool``) and references, and is not in the default mix. Every call goes through the ChatModels given (the CLI
wraps them in the response cache); a failed call or an unparsable reply is a :class:`Negative` with no
text, the raw reply and the reason.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from turnwise.capo.tasks import PairTask, stable_seed
from turnwise.data.schema import Message, validate_messages
from turnwise.errors import SchemaError
from turnwise.judge.parse import ParseError
from turnwise.judge.replies import Reply, json_object, room, structured_messages, words
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import render
from turnwise.stage.runner import Cost

STRATEGIES = ("neglect", "hallucination", "misunderstanding", "on_policy")
PARROT = STRATEGIES[:3]  # the paper's three corruptions: the default mix
MODES: dict[str, tuple[str, ...]] = {
    "neglect": ("plain", "prompted"),
    "hallucination": ("simulator", "prompted"),
    "misunderstanding": ("shuffle", "other", "prompted"),
    "on_policy": ("sampled",),
}
_TAGGED = re.compile(r"^\s*\**\s*(user|assistant)\s*\**\s*[:：]\s*(.*)$", re.IGNORECASE)


@dataclass
class CapoModels:
    """The roles of the capo stage.

    Attributes:
        negative: writes the rejected answers.
        chosen: writes the chosen answers with the full history; None keeps the dialogue's own answer.
        simulator: samples invented opening turns (hallucination/simulator); None uses ``negative``.
    """

    negative: ChatModel
    chosen: ChatModel | None = None
    simulator: ChatModel | None = None


@dataclass(frozen=True)
class StrategyEnv:
    """What a strategy needs besides its task.

    Attributes:
        models: the stage's models.
        modes: strategy → mode (see the table above).
        settings: generation settings of the negative writer.
        simulator_settings: settings of the simulator's opening turn (a per-task seed is set on top).
        pool: ``(dialogue id, history)`` of other dialogues, each history whole user/assistant pairs.
        seed: the run seed.
        exchanges: exchanges in a prompted invented history.
        simulator_views: language → the user simulator's view of an empty dialogue (system prompt and
            opener), from :mod:`turnwise.simulate.prompts`.
        search_path: template folders searched before the package's own.
        structured: a prompted invented history is held to JSON by constrained decoding and read as JSON.
        check: ``check(response, reference) -> bool`` of the task, or None; with one, a rejected answer of any
            strategy that passes it is dropped, and ``on_policy`` keeps only samples that fail it.
        categorize: ``categorize(response, reference, history) -> str``, the kind of error of an on-policy
            rejected answer (e.g. :func:`turnwise.quickstart.world.error_category`), or None.
        samples: answers the policy samples per turn for ``on_policy``.
    """

    models: CapoModels
    modes: dict[str, str]
    settings: GenerationSettings
    simulator_settings: GenerationSettings
    pool: Sequence[tuple[str, list[Message]]] = ()
    seed: int = 0
    exchanges: int = 1
    simulator_views: Mapping[str, Sequence[Message]] = field(default_factory=dict)
    search_path: tuple[str, ...] = ()
    structured: bool = False
    check: Callable[[str, str], Any] | None = None
    categorize: Callable[[str, str, Sequence[Message]], str] | None = None
    samples: int = 8


@dataclass
class Negative:
    """A rejected answer, or why there is none.

    Attributes:
        text: the rejected answer; None when it could not be written.
        mode: the strategy's mode.
        status: ``ok``; ``failed`` (a call failed or a reply could not be parsed); ``filtered`` (the
            strategy does not apply, e.g. no other dialogue to borrow a history from).
        reason: why there is no text.
        raw: the raw reply that could not be used.
        template: the prompt template used, if any.
        context: what was shown instead of the true history (invented history, other dialogue id, ...).
        cost: what the strategy's calls paid for.
    """

    text: str | None
    mode: str
    status: str = "ok"
    reason: str | None = None
    raw: str | None = None
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)


class _CallFailed(Exception):
    def __init__(self, reason: str, raw: str | None = None):
        super().__init__(reason)
        self.reason, self.raw = reason, raw


async def _ask(model: ChatModel, messages: list[Message], settings: GenerationSettings, cost: Cost) -> str:
    [completion] = await model.chat([messages], settings)
    cost.add(completion)
    if not completion.ok:
        raise _CallFailed(f"call failed: {completion.error}")
    text = completion.texts[0]
    if not text.strip():
        raise _CallFailed("empty completion", text)
    return text


def _system(task: PairTask) -> list[Message]:
    return [task.system] if task.system else []


async def neglect(task: PairTask, env: StrategyEnv, cost: Cost) -> Negative:
    """Answer the dependent turn alone."""
    mode = env.modes["neglect"]
    template = None
    content = task.query
    if mode == "prompted":
        template = f"capo/neglect.{task.lang}.jinja"
        content = render("capo/neglect", task.lang, search_path=env.search_path, query=task.query)
    text = await _ask(env.models.negative, [*_system(task), {"role": "user", "content": content}], env.settings, cost)
    return Negative(text, mode, template=template)


async def hallucination(task: PairTask, env: StrategyEnv, cost: Cost) -> Negative:
    """Answer the dependent turn after an invented history."""
    mode = env.modes["hallucination"]
    if mode == "prompted":
        invented, template = await _invent_prompted(task, env, cost), f"capo/hallucination.{task.lang}.jinja"
    else:
        invented, template = await _invent_with_simulator(task, env, cost), None
    messages = [*_system(task), *invented, {"role": "user", "content": task.query}]
    text = await _ask(env.models.negative, messages, env.settings, cost)
    return Negative(text, mode, template=template, context={"invented_history": invented})


async def _invent_prompted(task: PairTask, env: StrategyEnv, cost: Cost) -> list[Message]:
    prompt = render("capo/hallucination", task.lang, search_path=env.search_path, query=task.query,
                    exchanges=env.exchanges, structured=env.structured)
    messages, settings, parse = [{"role": "user", "content": prompt}], env.settings, parse_history
    if env.structured:
        reply = history_reply(env.exchanges, env.settings.max_tokens)
        messages = structured_messages(messages, reply, task.lang, env.search_path)
        settings, parse = replace(settings, json_schema=reply.schema_text), reply.parse_json
    raw = await _ask(env.models.negative, messages, settings, cost)
    try:
        return parse(raw)
    except (SchemaError, ParseError) as exc:
        raise _CallFailed(f"invented history unparsable: {exc}", raw) from None


_LABEL = re.compile(r"(user|assistant|human|ai|用户|助手)\s*[:：]?", re.IGNORECASE)


def history_reply(exchanges: int, max_tokens: int = 256) -> Reply[list[Message]]:
    """An invented history: ``User:``/``Assistant:`` lines in text, ``{"exchanges": [{user, assistant}]}`` as JSON
    (each turn bounded so that the object fits ``max_tokens`` at about three characters a token); either form is
    checked by :func:`parse_history`."""

    def read(value: dict[str, Any]) -> list[Message]:
        items = value.get("exchanges")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ParseError("the JSON reply has no list 'exchanges'")
        lines = [f"{role.title()}: {i.get(role, '')}" for i in items for role in ("user", "assistant")]
        try:
            return parse_history("\n".join(lines))
        except SchemaError as exc:
            raise ParseError(str(exc)) from None

    turn = words(min(300, room(max_tokens) // (2 * max(1, exchanges))))
    schema = json_object({"exchanges": {"type": "array", "minItems": 1, "maxItems": max(1, exchanges),
                                        "items": json_object({"user": turn, "assistant": turn})}})
    return Reply(parse_history, schema, read, '{"exchanges": [{"user": "...", "assistant": "..."}]}')


async def _invent_with_simulator(task: PairTask, env: StrategyEnv, cost: Cost) -> list[Message]:
    simulator = env.models.simulator or env.models.negative
    settings = replace(env.simulator_settings, seed=stable_seed(env.seed, task.source_id, task.index, "simulator"))
    opening = await _ask(simulator, list(env.simulator_views[task.lang]), settings, cost)
    user = {"role": "user", "content": opening.strip()}
    answer = await _ask(env.models.negative, [*_system(task), user], env.settings, cost)
    return [user, {"role": "assistant", "content": answer}]


def parse_history(text: str, most_exchanges: int = 3) -> list[Message]:
    """``User:``/``Assistant:`` lines as messages; untagged lines continue the message before them.

    Raises:
        SchemaError: text before the first tag, roles out of order, no closing assistant turn, too long, a turn
            that is only a speaker's label (as a small model writes it).
    """
    messages: list[Message] = []
    for line in text.strip().splitlines():
        match = _TAGGED.match(line)
        if match:
            messages.append({"role": match.group(1).lower(), "content": match.group(2).strip()})
        elif line.strip():
            if not messages:
                raise SchemaError("text before the first 'User:' line")
            messages[-1]["content"] = (messages[-1]["content"] + "\n" + line.strip()).strip()
    validate_messages(messages)
    for message in messages:
        if _LABEL.fullmatch(message["content"].strip()):
            raise SchemaError(f"the invented {message['role']} turn is only a speaker's label: {message['content']!r}")
    if messages[-1]["role"] != "assistant":
        raise SchemaError("it does not end with an Assistant line")
    if len(messages) > 2 * most_exchanges:
        raise SchemaError(f"more than {most_exchanges} exchanges")
    return messages


async def misunderstanding(task: PairTask, env: StrategyEnv, cost: Cost) -> Negative:
    """Answer the dependent turn with the wrong history (or, prompted, the wrong referent)."""
    mode = env.modes["misunderstanding"]
    if mode == "prompted":
        prompt = render("capo/misunderstanding", task.lang, search_path=env.search_path, history=task.history,
                        query=task.query)
        text = await _ask(env.models.negative, [*_system(task), {"role": "user", "content": prompt}], env.settings,
                          cost)
        return Negative(text, mode, template=f"capo/misunderstanding.{task.lang}.jinja")
    rng = random.Random(stable_seed(env.seed, task.source_id, task.index, "misunderstanding"))
    history, context = (shuffled_history(task.history, rng) if mode == "shuffle" else None), {}
    if history is not None:
        context = {"history": "shuffled subset", "kept": history}
    else:
        borrowed = borrow_history(task, env.pool, rng)
        if borrowed is None:
            return Negative(None, mode, status="filtered", reason="no other dialogue to borrow a history from")
        other_id, history = borrowed
        context = {"history": "other dialogue", "other_id": other_id}
    messages = [*_system(task), *history, {"role": "user", "content": task.query}]
    text = await _ask(env.models.negative, messages, env.settings, cost)
    return Negative(text, "other" if "other_id" in context else mode, context=context)


def shuffled_history(history: Sequence[Message], rng: random.Random) -> list[Message] | None:
    """The history's exchanges without the last one, in shuffled order; None when fewer than two exchanges."""
    pairs = [list(history[i : i + 2]) for i in range(0, len(history) - 1, 2)]
    if len(pairs) < 2:
        return None
    kept = pairs[:-1]
    rng.shuffle(kept)
    return [m for pair in kept for m in pair]


def borrow_history(
    task: PairTask, pool: Sequence[tuple[str, list[Message]]], rng: random.Random
) -> tuple[str, list[Message]] | None:
    """Another dialogue's history, cut to at most as many exchanges as the task's own."""
    others = [(oid, hist) for oid, hist in pool if oid != task.source_id and hist and hist != task.history]
    if not others:
        return None
    other_id, history = others[rng.randrange(len(others))]
    keep = max(2, len(task.history) - len(task.history) % 2)
    return other_id, history[: min(keep, len(history) - len(history) % 2)]


def passes(env: StrategyEnv, task: PairTask, text: str) -> bool | None:
    """Whether ``text`` passes the task's check (None: no check, or no reference for this turn).

    Raises:
        _CallFailed: the check itself raised (a user's check: its failure is data, not a crash).
    """
    if env.check is None or task.reference is None:
        return None
    try:
        return bool(env.check(text, task.reference))
    except Exception as exc:  # any error of a user's check is reported, never raised
        raise _CallFailed(f"the check raised {type(exc).__name__}: {exc}", text) from None


async def on_policy(task: PairTask, env: StrategyEnv, cost: Cost) -> Negative:
    """Sample the policy ``samples`` times with the true history; the first sample that fails the check is the
    rejected answer (an error the model really makes, in the very prompt DPO trains on)."""
    if env.check is None:
        raise _CallFailed("on_policy needs a check (the capo setting check: module:function or a built-in name)")
    if task.reference is None:
        return Negative(None, "sampled", status="filtered", reason="no reference for this turn (meta.references)")
    settings = replace(env.settings, n=env.samples, seed=stable_seed(env.seed, task.source_id, task.index,
                                                                     "on_policy"))
    [completion] = await env.models.negative.chat([list(task.prompt)], settings)
    cost.add(completion)
    if not completion.ok:
        raise _CallFailed(f"call failed: {completion.error}")
    verdicts = [(text, passes(env, task, text)) for text in completion.texts]
    failing = [text for text, ok in verdicts if text.strip() and not ok]
    context: dict[str, Any] = {"samples": len(verdicts), "passing": sum(bool(ok) for _, ok in verdicts)}
    if not failing:
        return Negative(None, "sampled", status="filtered", context=context,
                        reason=f"all {len(verdicts)} samples pass the check: no error of the policy to push down")
    rejected = failing[0]
    if env.categorize is not None:
        try:
            context["category"] = env.categorize(rejected, task.reference, task.history)
        except Exception as exc:  # a user's labeller: reported, never raised
            raise _CallFailed(f"the categorizer raised {type(exc).__name__}: {exc}", rejected) from None
    return Negative(rejected, "sampled", context=context)


STRATEGY_FUNCTIONS: dict[str, Callable[[PairTask, StrategyEnv, Cost], Awaitable[Negative]]] = {
    "neglect": neglect,
    "hallucination": hallucination,
    "misunderstanding": misunderstanding,
    "on_policy": on_policy,
}


async def write_negative(strategy: str, task: PairTask, env: StrategyEnv) -> Negative:
    """Run one strategy; a failed call or an unparsable reply becomes a failed Negative, never an exception."""
    cost = Cost()
    try:
        negative = await STRATEGY_FUNCTIONS[strategy](task, env, cost)
        if negative.text is not None and strategy != "on_policy" and passes(env, task, negative.text):
            negative = replace(negative, text=None, status="filtered", raw=negative.text,
                               reason="the rejected answer passes the check: it is right")
    except _CallFailed as exc:
        negative = Negative(None, env.modes[strategy], status="failed", reason=exc.reason, raw=exc.raw)
    negative.cost = cost
    return negative
