"""The capo stage core: context-aware preference pairs for the dependent turns of dialogues.

    turnwise capo dialogues.jsonl pairs.jsonl --model ./tiny                      # any model
    turnwise capo dialogues.jsonl pairs.jsonl --model M --base-url URL --prompted  # instruction model

The stage's settings and its one adapter are in :mod:`turnwise.capo.adapter`.

For each dependent user turn (from a detect run, or the cue rules on the fly) and each strategy the mix
selects, the negative writer answers the turn with a corrupted view of its history
(:mod:`turnwise.capo.strategies`); the chosen answer is the dialogue's own (or a fresh one with the full
history from ``models.chosen``). One record per pair, ``{id: "<dialogue>:<turn index>:<strategy>", status,
prompt, chosen, rejected, meta}``; a pair whose rejected answer equals or nearly equals the chosen one, or
another strategy's for the same turn, is ``filtered``; a failed call or an unparsable reply is ``failed``
with the raw text. :func:`turnwise.capo.export.export_pairs` writes the ``ok`` ones for the trainer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from turnwise.capo.similarity import normalize, similarity, too_close
from turnwise.capo.strategies import MODES, PARROT, STRATEGIES, CapoModels, Negative, StrategyEnv, write_negative
from turnwise.capo.tasks import PairTask, iter_tasks, selected_strategies
from turnwise.data.schema import Conversation, Message
from turnwise.detect.rules import RuleDetector, TurnDecision
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import search_path
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded


@dataclass(frozen=True)
class CapoConfig:
    """Settings of the capo stage.

    Attributes:
        mix: strategy → ratio; Parrot used its three (the default, 1:1:1). 0 turns a strategy off. ``on_policy``
            (not in the default) samples the policy with the true history and keeps an answer the check fails.
        modes: strategy → mode (see :mod:`turnwise.capo.strategies`), e.g. ``neglect=prompted,misunderstanding=other``.
        prompted: Parrot's three strategies prompted (instruction models), whatever ``modes`` says.
        settings: sampling of the negative writer.
        chosen_settings: sampling of the chosen-answer model, when there is one.
        simulator_settings: sampling of the user simulator's invented opening turns.
        simulator_prompt: ``ask`` (a trained user simulator) or ``prompted`` (an instruction model playing
            the user): which shipped simulator prompt frames the opening turn.
        max_similarity: a rejected answer this similar to the chosen one (0..1, normalised text) is dropped.
        min_confidence: only turns decided dependent with at least this confidence get pairs.
        exchanges: exchanges in a prompted invented history.
        lang: prompt and cue language for every dialogue, ``en`` or ``zh``; ``auto`` (or null) picks it per dialogue.
        seed: the run seed (mix selection, shuffles, borrowed dialogues, simulator samples).
        limit: build pairs for the first N dialogues only (0 = all).
        input_format: the input's format (openai, sharegpt, ...); detected from the first record when null.
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        template_dir: a folder of prompt templates searched before the shipped ones (``capo/neglect.en.jinja``,
            ``simulate/ask.en.jinja``...).
        max_in_flight: dependent turns in work at once.
        structured: a prompted invented history (hallucination) is held to JSON by constrained decoding (a grammar
            on the local backend, ``response_format`` on an OpenAI-compatible server) and read as JSON.
        check: the task's check of an answer against the turn's reference (``meta.references[k]`` for the k-th
            user turn): ``exact``, ``normalized``, ``numeric`` or ``module:function`` (``fn(response, reference)
            -> bool``). With one, every strategy drops a rejected answer that passes it (it is right), and
            ``on_policy`` can run.
        categorize: ``module:function`` (``fn(response, reference, history) -> str``) labelling the kind of error
            of an on-policy rejected answer (``meta.context.category``), e.g.
            ``turnwise.quickstart.world:error_category``.
        samples: answers the policy samples per turn for ``on_policy`` (the first that fails the check is kept).
    """

    mix: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(PARROT, 1.0))
    modes: Mapping[str, str] = field(
        default_factory=lambda: {"neglect": "plain", "hallucination": "simulator", "misunderstanding": "shuffle",
                                 "on_policy": "sampled"}
    )
    prompted: bool = False
    settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.7, max_tokens=512),
                                         metadata={"cli": "", "cli_rename": {"seed": "--sampling-seed"}})
    chosen_settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.7),
                                                metadata={"cli": "chosen-"})
    simulator_settings: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(temperature=1.0, max_tokens=128), metadata={"cli": "simulator-"}
    )
    simulator_prompt: str = "ask"
    max_similarity: float = 0.9
    min_confidence: float = 0.0
    exchanges: int = 1
    lang: str | None = None
    seed: int = 0
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    template_dir: str | None = None
    max_in_flight: int = 64
    structured: bool = False
    check: str | None = None
    categorize: str | None = None
    samples: int = 8

    def __post_init__(self) -> None:
        if self.prompted:
            object.__setattr__(self, "modes", dict.fromkeys(PARROT, "prompted"))
        object.__setattr__(self, "modes", {"on_policy": "sampled", **self.modes})  # its one mode, unless given
        if self.mix.get("on_policy", 0) > 0 and not self.check:
            raise ConfigError("the on_policy strategy needs a check (check: exact, normalized, numeric or "
                              "module:function) and references in the dialogues' meta")
        if self.samples < 1:
            raise ConfigError(f"samples must be at least 1, got {self.samples}")
        if self.lang == "auto":
            object.__setattr__(self, "lang", None)
        if self.lang not in (None, "en", "zh"):
            raise ConfigError(f"lang must be auto, en or zh, got {self.lang!r}")
        for strategy, mode in self.modes.items():
            if strategy not in MODES or mode not in MODES[strategy]:
                raise ConfigError(f"unknown mode {mode!r} for {strategy} (expected one of "
                                  f"{', '.join(MODES.get(strategy, ()))})")
        if set(self.mix) - set(STRATEGIES) or not any(v > 0 for v in self.mix.values()):
            raise ConfigError(f"the mix must give a positive ratio to at least one of {', '.join(STRATEGIES)}")
        if not 0 < self.max_similarity <= 1:
            raise ConfigError(f"max_similarity must be in (0, 1], got {self.max_similarity}")

    def to_dict(self) -> dict[str, Any]:
        return {"mix": dict(self.mix), "modes": dict(self.modes), "settings": self.settings.to_dict(),
                "chosen_settings": self.chosen_settings.to_dict(),
                "simulator_settings": self.simulator_settings.to_dict(), "simulator_prompt": self.simulator_prompt,
                "max_similarity": self.max_similarity, "min_confidence": self.min_confidence,
                "exchanges": self.exchanges, "lang": self.lang, "seed": self.seed,
                **({"check": self.check, "categorize": self.categorize, "samples": self.samples} if self.check
                   else {})}


@dataclass
class CapoResult:
    """Totals of one run (this run only; resumed records are counted by the store)."""

    cost: Cost = field(default_factory=Cost)
    tasks: int = 0
    records: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    ok_by_strategy: Counter[str] = field(default_factory=Counter)


def history_pool(conversations: Iterable[Conversation]) -> list[tuple[str, list[Message]]]:
    """Each dialogue's messages without the system message, cut to whole user/assistant exchanges."""
    pool = []
    for conv in conversations:
        body = [m for m in conv.messages if m["role"] != "system"]
        body = body[: len(body) - len(body) % 2]
        if body:
            pool.append((conv.id, body))
    return pool


def _simulator_views(config: CapoConfig) -> dict[str, list[Message]]:
    """The user simulator's view of an empty dialogue, per language (its system prompt and opener)."""
    from turnwise.simulate.prompts import flip_roles, simulator_prompt

    path = search_path(config.template_dir)
    return {lang: flip_roles([], simulator_prompt(config.simulator_prompt, lang, search_path=path))
            for lang in ("en", "zh")}


async def _chosen_answer(task: PairTask, models: CapoModels, config: CapoConfig) -> tuple[str | None, str, Cost]:
    """The chosen answer, where it came from, and what it cost (None with the reason when there is none)."""
    cost = Cost()
    if models.chosen is None:
        return task.own_answer, "dialogue" if task.own_answer else "no answer in the dialogue", cost
    [completion] = await models.chosen.chat([list(task.prompt)], config.chosen_settings)
    cost.add(completion)
    if not completion.ok or not completion.texts[0].strip():
        return None, f"chosen model failed: {completion.error or 'empty completion'}", cost
    return completion.texts[0], f"model:{models.chosen.model}", cost


def _judge_negatives(
    negatives: dict[str, Negative], chosen: str, threshold: float
) -> dict[str, tuple[str, str | None, float | None]]:
    """Status, reason and similarity to the chosen answer of each negative; duplicates within the turn dropped."""
    verdicts: dict[str, tuple[str, str | None, float | None]] = {}
    kept: dict[str, str] = {}  # normalised rejected text → strategy
    for strategy, neg in negatives.items():
        if neg.text is None:
            verdicts[strategy] = (neg.status, neg.reason, None)
            continue
        score = round(similarity(neg.text, chosen), 3)
        if (why := too_close(neg.text, chosen, threshold)) is not None:
            verdicts[strategy] = ("filtered", why, score)
        elif (key := normalize(neg.text)) in kept:
            verdicts[strategy] = ("filtered", f"duplicate of the {kept[key]} negative", score)
        else:
            kept[key] = strategy
            verdicts[strategy] = ("ok", None, score)
    return verdicts


def _record(task: PairTask, strategy: str, neg: Negative | None, chosen: str | None, chosen_from: str,
            verdict: tuple[str, str | None, float | None], model: ChatModel) -> dict[str, Any]:
    status, reason, score = verdict
    payload: dict[str, Any] = {"prompt": list(task.prompt)}
    if status == "ok" and neg is not None and chosen is not None:
        payload["chosen"] = [{"role": "assistant", "content": chosen}]
        payload["rejected"] = [{"role": "assistant", "content": neg.text}]
    elif neg is not None and (neg.text or neg.raw):
        payload["raw"] = neg.text or neg.raw
    decision = task.decision
    meta = {"strategy": strategy, "mode": neg.mode if neg else None, "source_id": task.source_id,
            "turn_index": task.index, "lang": task.lang, "chosen_from": chosen_from,
            "detection": {"confidence": decision.confidence, "score": decision.score,
                          "decided_by": decision.decided_by, "evidence": decision.evidence},
            "negative_model": {"backend": model.backend, "model": model.model},
            "template": neg.template if neg else None, "context": neg.context if neg else {},
            "similarity": score, "cost": (neg.cost if neg else Cost()).to_dict()}
    return make_record(task.key(strategy), status, payload, reason=reason, meta=meta)


async def build_pairs(task: PairTask, strategies: Sequence[str], env: StrategyEnv, config: CapoConfig
                      ) -> tuple[list[dict[str, Any]], Cost]:
    """The records of one task's pairs (one per strategy), and the chosen answer's cost."""
    chosen, chosen_from, cost = await _chosen_answer(task, env.models, config)
    if chosen is None:
        status = "failed" if chosen_from.startswith("chosen model failed") else "filtered"
        verdict = (status, chosen_from, None)
        return [_record(task, s, None, None, chosen_from, verdict, env.models.negative) for s in strategies], cost
    results = await asyncio.gather(*(write_negative(s, task, env) for s in strategies))
    negatives = dict(zip(strategies, results, strict=True))
    verdicts = _judge_negatives(negatives, chosen, config.max_similarity)
    records = [_record(task, s, negatives[s], chosen, chosen_from, verdicts[s], env.models.negative)
               for s in strategies]
    return records, cost


def strategy_env(conversations: Sequence[Conversation], config: CapoConfig, models: CapoModels) -> StrategyEnv:
    """What the strategies share for a run: models, modes, sampling, the pool of other dialogues' histories.

    Raises:
        ConfigError: two dialogues share an id.
    """
    ids = [c.id for c in conversations]
    if len(ids) != len(set(ids)):
        dup = next(i for i, n in Counter(ids).items() if n > 1)
        raise ConfigError(f"duplicate conversation id {dup!r} in the input: ids must be unique")
    from turnwise.score.verifiable import load_callable, load_check

    needs_views = config.mix.get("hallucination", 0) > 0 and config.modes.get("hallucination") == "simulator"
    return StrategyEnv(models, dict(config.modes), config.settings, config.simulator_settings,
                       pool=history_pool(conversations), seed=config.seed, exchanges=config.exchanges,
                       simulator_views=_simulator_views(config) if needs_views else {},
                       search_path=search_path(config.template_dir), structured=config.structured,
                       check=load_check(config.check) if config.check else None,
                       categorize=load_callable(config.categorize, "categorizer") if config.categorize else None,
                       samples=config.samples)


async def run_capo(
    conversations: Sequence[Conversation],
    store: RecordStore,
    config: CapoConfig,
    models: CapoModels,
    *,
    detections: Mapping[str, Sequence[TurnDecision]] | None = None,
    detector: RuleDetector | None = None,
    max_in_flight: int = 64,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> CapoResult:
    """Build the pairs of every dependent turn not yet in ``store``; each record is written when done.

    Args:
        conversations: the dialogues (held in memory: the misunderstanding strategy borrows from them).
        store: the resumable output; a task whose pairs are all in it is skipped.
        config: strategies, mix, modes and sampling.
        models: negative writer, optional chosen-answer model and user simulator.
        detections: a detect run's decisions by dialogue id; None runs the cue rules (``detector``).
        detector: the cue rules when ``detections`` is None.
        max_in_flight: tasks in work at once.
        on_record: called with each record written (progress bars).
    """
    env = strategy_env(conversations, config, models)
    result = CapoResult()

    def todo() -> Iterable[tuple[PairTask, list[str]]]:
        for task in iter_tasks(conversations, detections, detector=detector, lang=config.lang,
                               min_confidence=config.min_confidence):
            missing = [s for s in selected_strategies(task, config.mix, config.seed) if task.key(s) not in store.done]
            if missing:
                yield task, missing

    async def work(item: tuple[PairTask, list[str]]) -> None:
        records, chosen_cost = await build_pairs(*item, env, config)
        result.tasks += 1
        result.cost += chosen_cost
        for record in records:
            store.append(record)
            result.records += 1
            result.statuses[record["status"]] += 1
            result.cost += Cost(**record["meta"]["cost"])
            if record["status"] == "ok":
                result.ok_by_strategy[record["meta"]["strategy"]] += 1
            if on_record is not None:
                on_record(record)

    await run_bounded(todo(), work, max_in_flight)
    return result
