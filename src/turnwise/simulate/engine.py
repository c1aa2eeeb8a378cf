"""Self-play dialogue synthesis (Parrot, arXiv 2310.07301): a user simulator and an assistant take turns.

    turnwise simulate --seeds seeds.txt --user-model ./ask-model --assistant-model M --base-url URL -o out.jsonl

Each seed first turn grows on its own async loop: the assistant answers, the user simulator proposes the
next user turn from the flipped history (:mod:`turnwise.simulate.prompts`), the filters
(:mod:`turnwise.simulate.filters`) accept it or it is generated again with another seed, up to
``max_regenerations`` times, and so on until ``turns`` answers. Fast dialogues never wait for slow ones;
in-process backends merge the concurrent calls into batches. Every call goes through the ChatModels the
caller gives (wrap them in CachedChatModel and a re-run or a resume pays for nothing twice).

A dialogue ends early when the simulator writes the end marker (``finished_by: user``) or when a user turn
is still rejected after every regeneration (``finished_by: filter``); it is kept if it has at least
``min_turns`` answers, and otherwise recorded as ``filtered``. A call that fails after the backend's own
retries ends it as ``failed``, with the reason and the turns so far (``--retry-failed`` tries it again).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import search_path
from turnwise.records import RecordStore, make_record
from turnwise.score.verifiable import load_callable
from turnwise.simulate.filters import FilterConfig, TurnHistory, check_user_turn, detect_language
from turnwise.simulate.prompts import LANGS, MODES, SimulatorPrompt, flip_roles, simulator_prompt
from turnwise.simulate.seeds import Seed
from turnwise.stage.runner import Cost, run_bounded, unfinished

# Backends that batch concurrent calls only when their settings are equal (MicroBatcher): a sampling seed
# per dialogue would give every call settings of its own and no batch would form.
IN_PROCESS_BACKENDS = frozenset({"local", "vllm"})
SEED_SCOPES = ("auto", "dialogue", "attempt")


@dataclass
class SimulateConfig:
    """Settings of a simulation run.

    Attributes:
        turns: assistant answers per dialogue (``turns - 1`` simulated user turns after the seed).
        min_turns: a dialogue that ends early is kept only with at least this many answers.
        max_regenerations: times a rejected user turn is generated again before the dialogue ends.
        mode: ``ask`` (a trained ask model) or ``prompted`` (an instruction model told to play the user).
        lang: simulator prompt language: ``en``, ``zh``, or ``auto`` (``zh`` for Chinese seeds, else ``en``).
        end_marker: the text with which the simulator ends a conversation (e.g. ``[END]``); None = off.
        user_system: replaces the simulator's system prompt (text or a file).
        opener: replaces the simulator's opener (text or a file).
        assistant_system: system prompt for the assistant, for seeds that bring none.
        user_settings: sampling of the user simulator (its ``seed`` is set per call).
        assistant_settings: sampling of the assistant (its ``seed`` is set per call).
        filters: the user-turn filters.
        seed: the run seed; each dialogue's seed derives from it and the dialogue id.
        seed_scope: ``dialogue`` (each call's sampling seed from the dialogue seed, turn and attempt),
            ``attempt`` (from the run seed and the attempt only, so in-process backends can batch calls of
            different dialogues), or ``auto`` (``attempt`` for local and vllm, ``dialogue`` otherwise).
        max_in_flight: dialogues running at once; more than the backend's concurrency keeps it busy.
        limit: grow only the first N seeds (0 = all).
        input_format: the seeds file's format (``text`` for one first turn per line, openai, sharegpt, ...); null
            detects it (``text`` for a ``.txt`` file).
        skip_invalid: skip malformed seed records and count them in the manifest, instead of stopping.
        template_dir: a folder of prompt templates searched before the shipped ones
            (``simulate/ask.en.jinja``...).
    """

    turns: int = 8
    min_turns: int = 2
    max_regenerations: int = 3
    mode: str = "ask"
    lang: str = "auto"
    end_marker: str | None = None
    user_system: str | None = None
    opener: str | None = None
    assistant_system: str | None = None
    user_settings: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(temperature=1.0, top_p=0.9, max_tokens=256),
        metadata={"cli": "user-"})
    assistant_settings: GenerationSettings = field(
        default_factory=lambda: GenerationSettings(temperature=0.7, max_tokens=1024), metadata={"cli": "assistant-"})
    filters: FilterConfig = field(default_factory=FilterConfig, metadata={"cli": ""})
    seed: int = 0
    seed_scope: str = "auto"
    max_in_flight: int = 1024
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    template_dir: str | None = None

    def __post_init__(self) -> None:
        if self.turns < 1 or not 1 <= self.min_turns <= self.turns:
            raise ConfigError(f"need turns >= 1 and 1 <= min_turns <= turns, got {self.turns}, {self.min_turns}")
        if self.max_regenerations < 0 or self.max_in_flight < 1:
            raise ConfigError("max_regenerations must be >= 0 and max_in_flight >= 1")
        if self.mode not in MODES or self.lang not in (*LANGS, "auto") or self.seed_scope not in SEED_SCOPES:
            raise ConfigError(f"mode must be one of {MODES}, lang auto or one of {LANGS}, seed_scope one of "
                              f"{SEED_SCOPES}; got {self.mode!r}, {self.lang!r}, {self.seed_scope!r}")
        if self.user_settings.n != 1 or self.assistant_settings.n != 1:
            raise ConfigError("simulation samples one completion per call (n = 1)")
        self._prompts: dict[str, SimulatorPrompt] = {}

    def prompt(self, lang: str) -> SimulatorPrompt:
        """The simulator prompt for a dialogue in ``lang`` (``en`` or ``zh``)."""
        if lang not in self._prompts:
            self._prompts[lang] = simulator_prompt(self.mode, lang, end_marker=self.end_marker,
                                                   system=self.user_system, opener=self.opener,
                                                   search_path=search_path(self.template_dir))
        return self._prompts[lang]

    def dialogue_lang(self, seed_text: str) -> str:
        if self.lang != "auto":
            return self.lang
        return "zh" if detect_language(seed_text) == "zh" else "en"

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["user_settings"] = self.user_settings.to_dict()
        data["assistant_settings"] = self.assistant_settings.to_dict()
        data["filters"] = {k: list(v) if isinstance(v, tuple | list) else v
                           for k, v in asdict(self.filters).items() if not k.startswith("_")}
        return data


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from its parts, the same on every machine and run (not Python's salted ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass
class _Dialogue:
    """One dialogue in progress."""

    seed: Seed
    seed_value: int
    lang: str
    seed_lang: str | None
    prompt: SimulatorPrompt
    messages: list[Message]
    history: TurnHistory = field(default_factory=TurnHistory)
    filters: Counter[str] = field(default_factory=Counter)
    user_cost: Cost = field(default_factory=Cost)
    assistant_cost: Cost = field(default_factory=Cost)

    def add(self, role: str, text: str) -> None:
        self.messages.append({"role": role, "content": text})
        if role == "user":
            self.history.add_user(text)
        else:
            self.history.add_answer(text)

    def turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "assistant")


@dataclass
class _End:
    """Why a dialogue stopped before its last turn."""

    by: str  # user (end marker), filter (regenerations spent), error (a call failed)
    reason: str | None = None


class _Simulation:
    """The models and settings every dialogue of a run shares."""

    def __init__(self, user_model: ChatModel, assistant_model: ChatModel, cfg: SimulateConfig):
        self.user_model, self.assistant_model, self.cfg = user_model, assistant_model, cfg
        self._check = load_callable(cfg.filters.check, "user-turn filter") if cfg.filters.check else None
        self.scopes = {role: self._scope(model) for role, model in (("user", user_model),
                                                                    ("assistant", assistant_model))}

    def _scope(self, model: ChatModel) -> str:
        if self.cfg.seed_scope != "auto":
            return self.cfg.seed_scope
        return "attempt" if model.backend in IN_PROCESS_BACKENDS else "dialogue"

    def settings(self, d: _Dialogue, role: str, turn: int, attempt: int) -> GenerationSettings:
        base = self.cfg.user_settings if role == "user" else self.cfg.assistant_settings
        if self.scopes[role] == "attempt":
            return replace(base, seed=stable_seed(self.cfg.seed, role, attempt))
        return replace(base, seed=stable_seed(d.seed_value, role, turn, attempt))

    def start(self, seed: Seed) -> _Dialogue:
        lang = self.cfg.dialogue_lang(seed.text)
        system = seed.system if seed.system is not None else self.cfg.assistant_system
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        d = _Dialogue(seed, stable_seed(self.cfg.seed, seed.id), lang, detect_language(seed.text),
                      self.cfg.prompt(lang), messages)
        d.add("user", seed.text)
        return d

    async def run(self, seed: Seed) -> dict[str, Any]:
        """Grow one seed into a dialogue; return its record."""
        d = self.start(seed)
        end = _End("turns")
        for turn in range(self.cfg.turns):
            if turn:
                outcome = await self.user_turn(d, turn)
                if isinstance(outcome, _End):
                    end = outcome
                    break
                d.add("user", outcome)
            error = await self.assistant_turn(d, turn)
            if error is not None:
                end = _End("error", error)
                break
        return self.record(d, end)

    async def assistant_turn(self, d: _Dialogue, turn: int) -> str | None:
        """Answer the last user turn; the failure reason, or None."""
        [completion] = await self.assistant_model.chat([d.messages], self.settings(d, "assistant", turn, 0))
        d.assistant_cost.add(completion)
        if not completion.ok or not completion.texts[0].strip():
            return f"turn {turn}: assistant: {completion.error or 'empty completion'}"
        d.add("assistant", completion.texts[0])
        return None

    async def user_turn(self, d: _Dialogue, turn: int) -> str | _End:
        """The next user turn that passes the filters, or why the dialogue ends here."""
        view = flip_roles(d.messages, d.prompt)
        marker = d.prompt.end_marker
        reason, error = "", ""
        for attempt in range(self.cfg.max_regenerations + 1):
            [completion] = await self.user_model.chat([view], self.settings(d, "user", turn, attempt))
            d.user_cost.add(completion)
            if completion.ok:
                text = completion.texts[0].strip()
                if marker and marker in text:
                    return _End("user")
                reason = check_user_turn(text, d.history, d.seed_lang, self.cfg.filters)
                if reason is None and self._check is not None:
                    reason = self._check(text, list(d.messages)) or None
                if reason is None:
                    return text
            else:
                reason, error = "failed", completion.error or "failed"
            d.filters[reason] += 1
        if reason == "failed":
            return _End("error", f"turn {turn}: user simulator: {error}")
        return _End("filter", f"turn {turn}: {reason}")

    def record(self, d: _Dialogue, end: _End) -> dict[str, Any]:
        turns = d.turns()
        meta = {
            **d.seed.meta, "turns": turns, "finished_by": end.by, "filters": dict(d.filters),
            "seed": d.seed_value, "lang": d.lang, "mode": self.cfg.mode,
            "models": {"user": _name(self.user_model), "assistant": _name(self.assistant_model)},
            "cost": {"user": d.user_cost.to_dict(), "assistant": d.assistant_cost.to_dict()},
        }
        if end.reason and end.by != "error":
            meta["end_reason"] = end.reason
        payload = {"messages": d.messages}
        if end.by == "error":
            return make_record(d.seed.id, "failed", payload, reason=end.reason, meta=meta)
        if turns < self.cfg.min_turns:
            why = end.reason or "the user ended it"
            reason = f"{turns} turns < min_turns {self.cfg.min_turns} ({why})"
            return make_record(d.seed.id, "filtered", payload, reason=reason, meta=meta)
        return make_record(d.seed.id, "ok", payload, meta=meta)


def _name(model: ChatModel) -> str:
    return f"{model.backend}:{model.model}"


async def simulate_dialogue(
    seed: Seed, user_model: ChatModel, assistant_model: ChatModel, cfg: SimulateConfig
) -> dict[str, Any]:
    """Grow one seed into a dialogue and return its record (see the module docstring)."""
    return await _Simulation(user_model, assistant_model, cfg).run(seed)


@dataclass
class SimulateResult:
    """What this run did (records resumed from an earlier run are not in it).

    Counts only: the full statistics (context dependence included) come from the output afterwards,
    :func:`turnwise.simulate.stats.summarize` (the ``simulate`` stage feeds it each dialogue's detector count,
    taken by its ``on_record`` as the dialogue was written).
    """

    user_cost: Cost = field(default_factory=Cost)
    assistant_cost: Cost = field(default_factory=Cost)
    status: Counter[str] = field(default_factory=Counter)
    filters: Counter[str] = field(default_factory=Counter)

    @property
    def dialogues(self) -> int:
        return sum(self.status.values())

    def add(self, record: dict[str, Any]) -> None:
        self.user_cost += Cost(**record["meta"]["cost"]["user"])
        self.assistant_cost += Cost(**record["meta"]["cost"]["assistant"])
        self.status[record["status"]] += 1
        self.filters.update(record["meta"]["filters"])

    def cost(self) -> dict[str, dict[str, int]]:
        return {"user": self.user_cost.to_dict(), "assistant": self.assistant_cost.to_dict()}


async def run_simulate(
    seeds: Iterable[Seed],
    user_model: ChatModel,
    assistant_model: ChatModel,
    store: RecordStore,
    cfg: SimulateConfig,
    *,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> SimulateResult:
    """Grow every seed not yet in ``store`` into a dialogue; each record is written as soon as it is done.

    Args:
        seeds: the seeds, consumed lazily (ids must be unique).
        user_model: the user simulator (an ask model, or any instruction model with ``mode="prompted"``).
        assistant_model: the assistant; may be the same object as ``user_model``.
        store: the resumable output; finished ids are skipped.
        cfg: the run's settings.
        on_record: called with each record written (progress bars).

    Raises:
        ConfigError: two seeds share an id.
    """
    simulation = _Simulation(user_model, assistant_model, cfg)
    result = SimulateResult()
    async def work(seed: Seed) -> None:
        record = await simulation.run(seed)
        store.append(record)
        result.add(record)
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(seeds, store.done, "seed"), work, cfg.max_in_flight)
    return result
