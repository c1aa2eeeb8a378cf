"""Sharded evaluation (Laban et al. 2025, arXiv 2505.06120, "LLMs Get Lost In Multi-Turn Conversation").

    tasks = read_gsm8k("test.jsonl", limit=50)          # question + checkable answer ("#### 18")
    split_math(tasks[0].instruction)                      # the facts one sentence a shard, the question last
    await run_sharded(tasks, model, store, ShardedConfig(samples=3))
    summarize(read_stage_output(store.path))              # accuracy, aptitude, unreliability per setting

Each task runs in three settings, ``samples`` times each (attempt k samples with seed ``seed + k``):

- ``full``: the whole instruction in one turn;
- ``concat``: every shard in one turn, as a list (the same information, reworded the way sharding rewords it);
- ``sharded``: one shard per user turn; the assistant answers every turn with its own history, as a user who
  reveals a problem piece by piece would have it. Verbatim, or with a ``simulator`` model each shard in the
  simulator's own words (template ``eval/shard_user``); a rewording that drops a number of its shard, or comes back
  empty, is not used: that shard is said verbatim and counted in the record (``verbatim_fallbacks``).

Every answer is scored by extracting its final number and comparing it with the reference (the checker); a task's
score in a setting is that of the last answer. Per setting, over tasks: accuracy (the mean score), *aptitude* (the
mean over tasks of the 90th percentile of a task's sample scores) and *unreliability* (the mean of the 90th minus
the 10th percentile), each with a 95% bootstrap interval over tasks; for ``sharded`` also the accuracy of the
answer at each turn. The paper found an average drop of 39% from full to sharded over 15 models, mostly from
unreliability.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from turnwise.data.io import iter_records
from turnwise.data.schema import Conversation
from turnwise.errors import InputError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded

SETTINGS = ("full", "concat", "sharded")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# A sentence ends at . ! ? (and a closing quote) before white space and a capital, a digit, a quote or "$";
# not after a title or a one-letter initial ("Mr. Smith", "J. Doe").
_END = re.compile(r"(?<![A-Z])(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bvs)"
                  r"[.!?][\"'”’)]?\s+(?=[A-Z0-9\"“'$(])")


@dataclass(frozen=True)
class ShardedTask:
    """A single-turn task with a checkable answer, and its shards (the question last)."""

    id: str
    instruction: str
    shards: tuple[str, ...]
    reference: str


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each an exact stretch of it (white space between them dropped)."""
    sentences, start = [], 0
    for match in _END.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        sentences.append(text[start:end].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def split_math(question: str) -> list[str]:
    """Shards of a math word problem: each sentence of facts, then the sentence that asks (the last with a "?",
    else the last), so that no shard but the last asks for anything."""
    sentences = split_sentences(question)
    asks = [i for i, s in enumerate(sentences) if "?" in s]
    last = asks[-1] if asks else len(sentences) - 1
    return [s for i, s in enumerate(sentences) if i != last] + [sentences[last]]


def parse_shards(text: str) -> list[str]:
    """The ``- `` lines of a sharder's reply (at least two), in order.

    Raises:
        ParseError: fewer than two such lines.
    """
    from turnwise.judge.parse import ParseError

    shards = [line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("- ")]
    shards = [s for s in shards if s]
    if len(shards) < 2:
        raise ParseError(f"{len(shards)} '- ' lines in the reply; a split needs at least two")
    return shards


async def shard_with_model(tasks: Sequence[ShardedTask], sharder: ChatModel, settings: GenerationSettings,
                           lang: str = "en", search_path: Sequence[str] = ()
                           ) -> tuple[list[ShardedTask], dict[str, Any], Cost]:
    """Each task split by ``sharder`` where the split is verified, else by rule.

    A split is kept when it parses, keeps every number of the problem, and the sharder itself, given the shards
    joined into one message, answers the reference (the shards still determine the answer). Returns the tasks, the
    counts of kept and rejected splits by reason, and the calls' cost.
    """
    from turnwise.judge.parse import ParseError
    from turnwise.prompts import render

    prompts = [[{"role": "user", "content": render("eval/shard_split", lang, search_path=search_path,
                                                   instruction=t.instruction)}] for t in tasks]
    replies = await sharder.chat(prompts, settings)
    candidates: dict[int, list[str]] = {}
    counts: Counter[str] = Counter()
    for i, (task, reply) in enumerate(zip(tasks, replies, strict=True)):
        try:
            shards = parse_shards(reply.texts[0] if reply.ok and reply.texts else "")
        except ParseError:
            counts["unparsable"] += 1
            continue
        if Counter(numbers(task.instruction)) - Counter(n for shard in shards for n in numbers(shard)):
            counts["a number lost"] += 1
            continue
        candidates[i] = shards
    checks = await sharder.chat([[{"role": "user", "content": "\n".join(candidates[i])}] for i in candidates],
                                settings)
    cost = Cost()
    for completion in [*replies, *checks]:
        cost.add(completion)
    out = list(tasks)
    for i, check in zip(candidates, checks, strict=True):
        answer = check.texts[0] if check.ok and check.texts else ""
        if is_correct(extract_answer(answer), tasks[i].reference):
            out[i] = replace(tasks[i], shards=tuple(candidates[i]))
            counts["kept"] += 1
        else:
            counts["the shards no longer give the answer"] += 1
    return out, {"kept": counts.pop("kept", 0), "by rule instead": dict(counts)}, cost


def numbers(text: str) -> list[str]:
    """Every number in ``text``, thousands separators removed ("1,200" → "1200")."""
    return [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)]


def extract_answer(text: str) -> str | None:
    """The final answer of a reply: the number after the last ``####`` or "answer is", else the last number."""
    for marker in ("####", "answer is", "Answer:"):
        at = text.rfind(marker)
        if at >= 0 and numbers(text[at:]):
            return numbers(text[at:])[0]
    found = numbers(text)
    return found[-1] if found else None


def is_correct(extracted: str | None, reference: str) -> bool:
    """Whether an extracted answer equals the reference as a number."""
    if extracted is None:
        return False
    try:
        return abs(float(extracted) - float(reference)) < 1e-6
    except ValueError:
        return extracted.strip() == reference.strip()


def read_gsm8k(path: str | Path, limit: int | None = None) -> list[ShardedTask]:
    """GSM8K's ``{"question", "answer": "... #### n"}`` lines as tasks; a bad line raises InputError."""
    tasks = []
    for line, record in iter_records(path):
        question, answer = record.get("question"), record.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise InputError(str(path), line, "'question' must be a non-empty string (gsm8k)")
        if not isinstance(answer, str) or "####" not in answer:
            raise InputError(str(path), line, "'answer' must be a string ending with '#### <number>' (gsm8k)")
        reference = answer.rsplit("####", 1)[1].strip().replace(",", "")
        tasks.append(ShardedTask(str(record.get("id", f"gsm8k-{line}")), question.strip(),
                                 tuple(split_math(question.strip())), reference))
        if limit is not None and len(tasks) >= limit:
            break
    return tasks


def user_turns(task: ShardedTask, setting: str) -> list[str]:
    """What the user says, turn by turn, in ``setting``."""
    if setting == "full":
        return [task.instruction]
    if setting == "concat":
        return ["\n".join(f"- {shard}" for shard in task.shards)]
    return list(task.shards)


@dataclass(frozen=True)
class ShardedConfig:
    """How the tasks are run.

    Attributes:
        samples: runs per task and setting (aptitude and unreliability need several).
        settings: which of ``full``, ``concat``, ``sharded``.
        generation: the answering model's sampling (attempt k uses seed ``seed + k``).
        name: the model's name in the records (``turnwise eval report`` groups by it).
        simulator: the user simulator's sampling, when there is one (sample k uses seed k).
    """

    samples: int = 3
    settings: tuple[str, ...] = SETTINGS
    generation: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(temperature=1.0, max_tokens=512, seed=0))
    name: str = "model"
    simulator: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.0, max_tokens=128))


async def reword_shards(task: ShardedTask, simulator: ChatModel, settings: GenerationSettings, lang: str = "en",
                        search_path: Sequence[str] = ()) -> tuple[list[str], int, Cost]:
    """The shards in the simulator's words (one batched call), the number said verbatim instead, and the cost."""
    from turnwise.prompts import render

    prompts = [[{"role": "user", "content": render("eval/shard_user", lang, search_path=search_path, shard=shard,
                                                   first=i == 0)}] for i, shard in enumerate(task.shards)]
    completions = await simulator.chat(prompts, settings)
    turns, fallbacks, cost = [], 0, Cost()
    for shard, completion in zip(task.shards, completions, strict=True):
        cost.add(completion)
        text = completion.texts[0].strip() if completion.ok and completion.texts else ""
        if text and not Counter(numbers(shard)) - Counter(numbers(text)):
            turns.append(text)
        else:
            turns.append(shard)
            fallbacks += 1
    return turns, fallbacks, cost


async def run_one(task: ShardedTask, setting: str, sample: int, model: ChatModel,
                  generation: GenerationSettings, name: str = "model", simulator: ChatModel | None = None,
                  simulator_settings: GenerationSettings | None = None) -> dict[str, Any]:
    """One run: the user turns of ``setting`` answered one by one; every answer scored."""
    from turnwise.generate.core import answer_conversation

    turns, fallbacks, simulated = user_turns(task, setting), 0, Cost()
    if setting == "sharded" and simulator is not None:
        said = replace(simulator_settings or GenerationSettings(temperature=0.0, max_tokens=128), seed=sample)
        turns, fallbacks, simulated = await reword_shards(task, simulator, said)
    settings = replace(generation, seed=(generation.seed or 0) + sample)
    conv = Conversation(f"{task.id}/{setting}/{sample}", [{"role": "user", "content": turns[0]}], turns[1:])
    record = await answer_conversation(conv, model, settings)
    answers = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    extracted = [extract_answer(a) for a in answers]
    correct = [is_correct(x, task.reference) for x in extracted]
    complete = record["status"] == "ok" and len(answers) == len(turns)
    payload = {"model": name, "task": task.id, "setting": setting, "sample": sample, "turns": turns, "answers": answers,
               "extracted": extracted, "correct": correct, "score": float(complete and correct[-1]),
               "reference": task.reference}
    if setting == "sharded" and simulator is not None:
        payload["verbatim_fallbacks"] = fallbacks
    meta = {"cost": record["meta"]["cost"], **({"simulator_cost": simulated.to_dict()} if simulator else {})}
    return make_record(conv.id, "ok" if complete else "failed", payload,
                       reason=None if complete else record.get("reason", "not every turn answered"), meta=meta)


async def run_sharded(tasks: Sequence[ShardedTask], model: ChatModel, store: RecordStore, config: ShardedConfig, *,
                      max_in_flight: int = 64, on_record: Callable[[dict[str, Any]], None] | None = None,
                      simulator: ChatModel | None = None) -> Cost:
    """Run every (task, setting, sample) not yet in ``store``; each record is written as soon as it is done.

    ``simulator``: a model that says each shard in its own words (None: verbatim).
    """
    cost = Cost()
    units = [(t, s, k) for t in tasks for s in config.settings for k in range(config.samples)
             if f"{t.id}/{s}/{k}" not in store.done]

    async def work(unit: tuple[ShardedTask, str, int]) -> None:
        nonlocal cost
        record = await run_one(*unit, model, config.generation, config.name, simulator, config.simulator)
        store.append(record)
        cost += Cost(**record["meta"]["cost"])
        cost += Cost(**record["meta"].get("simulator_cost", {}))
        if on_record is not None:
            on_record(record)

    await run_bounded(units, work, max_in_flight)
    return cost


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _interval(per_task: Sequence[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean over tasks."""
    rng = random.Random(seed)
    n = len(per_task)
    means = sorted(sum(per_task[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def _stat(per_task: Sequence[float]) -> dict[str, Any]:
    if not per_task:
        return {"mean": None, "low": None, "high": None, "tasks": 0}
    low, high = _interval(per_task)
    return {"mean": sum(per_task) / len(per_task), "low": low, "high": high, "tasks": len(per_task)}


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per setting: accuracy, aptitude, unreliability (module docstring); for ``sharded``, accuracy per turn."""
    scores: dict[str, dict[str, list[float]]] = {}
    per_turn: dict[int, list[float]] = {}
    for r in records:
        scores.setdefault(r["setting"], {}).setdefault(r["task"], []).append(float(r["score"]))
        if r["setting"] == "sharded":
            for k, ok in enumerate(r["correct"], 1):
                per_turn.setdefault(k, []).append(float(ok))
    out: dict[str, Any] = {}
    for setting in [s for s in SETTINGS if s in scores]:
        tasks = scores[setting]
        out[setting] = {"accuracy": _stat([sum(v) / len(v) for v in tasks.values()]),
                        "aptitude": _stat([percentile(v, 90) for v in tasks.values()]),
                        "unreliability": _stat([percentile(v, 90) - percentile(v, 10) for v in tasks.values()]),
                        "samples": max(len(v) for v in tasks.values())}
    turns = {k: sum(v) / len(v) for k, v in sorted(per_turn.items())}
    runs = {k: len(v) for k, v in sorted(per_turn.items())}
    return {"settings": out, "sharded_accuracy_by_turn": turns, "sharded_runs_by_turn": runs}


def interval_text(stat: dict[str, Any]) -> str:
    """``12.0 [4.0, 20.0]``: a statistic in percent with its 95% interval."""
    if stat["mean"] is None:
        return "–"
    return f"{100 * stat['mean']:.1f} [{100 * stat['low']:.1f}, {100 * stat['high']:.1f}]"


def markdown(summary: dict[str, Any], model: str) -> str:
    """The settings side by side: accuracy, aptitude and unreliability with their 95% intervals."""
    cell = interval_text

    lines = [f"### sharded evaluation: {model} (percent; 95% bootstrap intervals over tasks)", "",
             "| setting | tasks | samples | accuracy | aptitude (P90) | unreliability (P90 − P10) |",
             "|:--|--:|--:|--:|--:|--:|"]
    for setting, row in summary["settings"].items():
        lines.append(f"| {setting} | {row['accuracy']['tasks']} | {row['samples']} | {cell(row['accuracy'])} | "
                     f"{cell(row['aptitude'])} | {cell(row['unreliability'])} |")
    by_turn, runs = summary["sharded_accuracy_by_turn"], summary.get("sharded_runs_by_turn", {})
    if by_turn:
        lines += ["", "sharded, accuracy of the answer at each turn (over the runs that reach it): "
                  + ", ".join(f"turn {k} {100 * v:.1f}" + (f" ({runs[k]} runs)" if k in runs else "")
                              for k, v in by_turn.items())]
    return "\n".join(lines) + "\n"
