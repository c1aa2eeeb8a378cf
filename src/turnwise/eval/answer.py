"""Answer a benchmark turn by turn: the core of `turnwise eval answer`.

    turnwise eval answer question.jsonl answers.jsonl --model Qwen/Qwen2.5-7B-Instruct --base-url ...

With an *own* history (MT-Bench, MT-Eval, your N-turn files) the model answers the first turn, then each
next one with its own earlier answers in the history: exactly :func:`turnwise.generate.core.answer_conversation`,
which this module reuses. With a *gold* history (MT-Bench-101) each judged turn is answered on its own,
after the benchmark's history, so those calls run at once.

Sampling follows FastChat's MT-Bench: temperature 0.7 for writing and roleplay, 0 for math, coding,
reasoning and extraction, 0.1 for stem and humanities, 0.7 for anything else (or one temperature for all).
Each dialogue becomes one record: the item's fields, ``answers`` (one per turn, ``null`` where a turn was
not answered) and ``meta`` (model, temperature, cost). A failed call makes the record ``failed`` with the
turns answered before it and the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from turnwise.data.schema import Conversation
from turnwise.errors import ConfigError, InputError
from turnwise.eval.items import EvalItem
from turnwise.generate.core import answer_conversation
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.records import RecordStore, make_record, read_stage_output
from turnwise.stage.runner import Cost, run_bounded, unfinished

# FastChat fastchat/llm_judge/common.py: temperature_config.
MT_BENCH_TEMPERATURES: Mapping[str, float] = MappingProxyType({
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
    "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0,
})


@dataclass(frozen=True)
class AnswerConfig:
    """How the evaluated model is sampled.

    Attributes:
        name: the model's name in records and reports (default: the backend's model name).
        temperature: one temperature for every category; None uses ``temperatures``.
        temperatures: temperature per category (FastChat's MT-Bench table by default).
        default_temperature: for categories missing from ``temperatures``.
        max_tokens: most new tokens per answer (FastChat: 1024).
        top_p: nucleus sampling mass.
        seed: sampling seed, where the backend honours one.
    """

    name: str | None = None
    temperature: float | None = None
    temperatures: Mapping[str, float] = field(default_factory=lambda: MT_BENCH_TEMPERATURES)
    default_temperature: float = 0.7
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None

    def settings(self, category: str) -> GenerationSettings:
        """The generation settings for a dialogue of ``category``."""
        temperature = self.temperature
        if temperature is None:
            temperature = self.temperatures.get(category, self.default_temperature)
        return GenerationSettings(temperature=temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                                  seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "temperatures": dict(self.temperatures),
                "default_temperature": self.default_temperature, "max_tokens": self.max_tokens,
                "top_p": self.top_p, "seed": self.seed}


@dataclass
class StageTotals:
    """What a run of a stage wrote and paid for (this run only)."""

    cost: Cost = field(default_factory=Cost)
    records: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        self.cost += Cost(**record["meta"]["cost"])


def with_attempts(items: Iterable[EvalItem], attempts: int) -> list[EvalItem]:
    """Each item ``attempts`` times, as ``ID#k`` with ``meta["item"]`` and ``meta["attempt"]`` (once: unchanged)."""
    if attempts <= 1:
        return list(items)
    return [replace(item, id=f"{item.id}#{k}", meta={**item.meta, "item": item.id, "attempt": k})
            for item in items for k in range(1, attempts + 1)]


async def answer_item(item: EvalItem, model: ChatModel, config: AnswerConfig) -> dict[str, Any]:
    """Answer one dialogue (own or gold history); return its answer record."""
    settings = config.settings(item.category)
    attempt = item.meta.get("attempt")
    if isinstance(attempt, int):  # each attempt its own sample (and its own cache entry)
        settings = replace(settings, seed=(config.seed or 0) + attempt - 1)
    if item.history == "own":
        answers, cost, reason = await _own(item, model, settings)
    else:
        answers, cost, reason = await _gold(item, model, settings)
    meta = {"model": {"backend": model.backend, "model": model.model}, "name": config.name or model.model,
            "temperature": settings.temperature, "cost": cost.to_dict(), "source": item.meta,
            **{k: item.meta[k] for k in ("item", "attempt") if k in item.meta}}
    payload = {**item.to_payload(), "answers": answers}
    return make_record(item.id, "failed" if reason else "ok", payload, reason=reason, meta=meta)


async def _own(item: EvalItem, model: ChatModel, settings: GenerationSettings) -> tuple[list, Cost, str | None]:
    """The model's own history: the generate stage's turn-by-turn loop over the whole dialogue."""
    system = [{"role": "system", "content": item.system}] if item.system else []
    conv = Conversation(item.id, [*system, {"role": "user", "content": item.turns[0]}], item.turns[1:])
    record = await answer_conversation(conv, model, settings)
    answers: list[str | None] = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    reason = None
    if record["status"] != "ok":
        # generate names the message index; a report names the user turn (1-based).
        cause = record.get("reason", "").partition(": ")[2] or record.get("reason", "")
        reason = f"turn {len(answers) + 1}: {cause}"
    return answers + [None] * (len(item.turns) - len(answers)), Cost(**record["meta"]["cost"]), reason


async def _gold(item: EvalItem, model: ChatModel, settings: GenerationSettings) -> tuple[list, Cost, str | None]:
    """A gold history: each judged turn answered after the benchmark's own earlier turns, all at once."""
    convs = [Conversation(f"{item.id}#{k}", item.prefix(k)) for k in item.judged]
    records = await asyncio.gather(*(answer_conversation(c, model, settings) for c in convs))
    answers: list[str | None] = [None] * len(item.turns)
    cost, reasons = Cost(), []
    for k, record in zip(item.judged, records, strict=True):
        cost += Cost(**record["meta"]["cost"])
        if record["status"] == "ok":
            answers[k - 1] = record["messages"][-1]["content"]
        else:
            cause = record.get("reason", "").partition(": ")[2] or record.get("reason", "")
            reasons.append(f"turn {k}: {cause}")
    return answers, cost, "; ".join(reasons) or None


async def run_answer(
    items: Iterable[EvalItem],
    model: ChatModel,
    store: RecordStore,
    config: AnswerConfig,
    *,
    max_in_flight: int = 256,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> StageTotals:
    """Answer every dialogue not yet in ``store``; each record is written as soon as it is done.

    Args:
        items: the benchmark's dialogues.
        model: the evaluated model (wrap it in CachedChatModel to make re-runs free).
        store: the resumable output; finished ids are skipped.
        config: sampling settings and the model's name.
        max_in_flight: dialogues answered at once (the backend bounds its own requests).
        on_record: called with each record written (progress bars).
    """
    totals = StageTotals()

    async def work(item: EvalItem) -> None:
        record = await answer_item(item, model, config)
        store.append(record)
        totals.add(record)
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(items, store.done, "dialogue"), work, max_in_flight)
    return totals


ANSWER_KEYS = ("benchmark", "category", "turns", "judged", "answers")


def load_answers(path: str | Path, questions: str | Path | None = None) -> list[dict[str, Any]]:
    """The records of an answer file; a file `eval answer` did not write raises InputError naming it.

    A MultiChallenge responses file in the published layout (``{"QUESTION_ID", "RESPONSE"}``) is read as answer
    records too, with the benchmark's ``questions`` (default: ``benchmark_questions.jsonl`` beside it).
    """
    from turnwise.data.io import iter_records
    from turnwise.eval import multichallenge

    first = next((record for _, record in iter_records(path)), None)
    if first is not None and multichallenge.is_response(first):
        source = Path(questions) if questions else multichallenge.questions_beside(path)
        if not source.is_file():
            raise InputError(str(path), None, f"MultiChallenge responses need the benchmark's questions: {source} "
                                              "not found (--questions FILE)")
        return multichallenge.read_responses(path, multichallenge.load_multichallenge(source))
    records = read_stage_output(path)
    for record in records:
        missing = [k for k in ANSWER_KEYS if k not in record]
        if missing:
            rule = f"not an eval answer record (no {', '.join(missing)}); pass what `turnwise eval answer` wrote"
            raise InputError(str(path), f"record {record['id']!r}", rule)
    return records


def check_same_model(path: str | Path, name: str | None) -> None:
    """Refuse to resume an answer file written for another model (its records would be judged as this one's)."""
    if not Path(path).exists():
        return
    names = {r["meta"].get("name") for r in read_stage_output(path)}
    if names and names != {name}:
        raise ConfigError(f"{path} holds answers of {', '.join(sorted(map(str, names)))}, not {name}: "
                          "use another output folder (or --name)")
