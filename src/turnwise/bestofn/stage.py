"""Best-of-N preference pairs: sample N answers per prompt, score them, keep the best and the worst.

    turnwise bestofn prompts.jsonl pairs.jsonl --model runs/sft --judge-model ... --n 10

Per prompt (a conversation ending with a user turn): one sampling call for N answers, every non-empty
answer scored (concurrently, sharing the context's work), then :func:`~turnwise.bestofn.pick.pick_pair`.
Every prompt becomes one record in the resumable record file: ``ok`` with the pair, ``filtered`` with the
reason (too few scored, too small a margin, no user turn to answer), or ``failed`` (sampling failed);
all candidates, their scores and the judges' evidence stay in it. :func:`write_pairs` turns the ``ok``
records into TRL's conversational preference file, with every score in a uniformly typed ``meta``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from turnwise.bestofn.pick import Candidate, Pick, pick_pair
from turnwise.data.formats import write_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.records import RecordStore, make_record, read_stage_output
from turnwise.score.settings import ScoringSettings
from turnwise.score.stage import ScoringTotals
from turnwise.score.types import ScoreBatch, ScoreCost, ScoreInput, Scorer
from turnwise.stage.runner import Cost, run_bounded, unfinished

PROMPTS = ("whole", "every_turn", "last")


@dataclass(frozen=True)
class BestOfNConfig(ScoringSettings):
    """Settings of best-of-N: how answers are sampled, scored (:class:`~turnwise.score.settings.ScoringSettings`)
    and paired.

    Attributes:
        n: answers sampled per prompt (LongReward: 10).
        min_scored: skip a prompt with fewer successfully scored answers (LongReward: 5).
        min_margin: smallest total-score gap (0–10 scale) between chosen and rejected.
        settings: the policy's sampling settings (``n`` is set from the field above).
        prompts: what a prompt is: ``whole`` (each input conversation as it stands; it ends with a user turn),
            ``every_turn`` (each user turn of a dialogue, with the history before it; its reference answer from
            the dialogue's ``meta.references``) or ``last`` (only the last user turn of each dialogue).
        limit: only the first N input conversations (0 = all).
        input_format: the input's format (openai, sharegpt, ...); detected from the first record when null.
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        max_in_flight: prompts worked on at once.
    """

    n: int = 10
    min_scored: int = 5
    min_margin: float = 1.0
    settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=1.0, max_tokens=1024),
                                         metadata={"cli": "", "cli_rename": {"n": "--sampling-n"}})
    prompts: str = "whole"
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    max_in_flight: int = 16

    def __post_init__(self) -> None:
        if self.n < 2 or not 2 <= self.min_scored <= self.n:
            raise ConfigError(f"need n >= 2 and 2 <= min_scored <= n (got n={self.n}, min_scored={self.min_scored})")
        if self.min_margin < 0:
            raise ConfigError(f"min_margin must be >= 0, got {self.min_margin}")
        if self.prompts not in PROMPTS:
            raise ConfigError(f"prompts must be one of {', '.join(PROMPTS)}, got {self.prompts!r}")


@dataclass
class BestOfNTotals:
    """What a run paid for: policy sampling and scoring."""

    policy: Cost = field(default_factory=Cost)
    scoring: ScoringTotals = field(default_factory=ScoringTotals)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.to_dict(), "scoring": self.scoring.to_dict()}


def _candidates(texts: list[str], batch: ScoreBatch, scored_idx: list[int], dims: tuple[str, ...],
                details: bool) -> list[dict[str, Any]]:
    results = dict(zip(scored_idx, batch.results, strict=True))
    out = []
    for i, text in enumerate(texts):
        if i not in results:
            out.append({"index": i, "text": text, "status": "empty", "reason": "empty response", "total": None,
                        "scores": {**dict.fromkeys(dims), "total": None}})
            continue
        result = results[i].to_dict(details)
        out.append({"index": i, "text": text, **result})
    return out


async def best_of_n(conv: Conversation, policy: ChatModel, scorer: Scorer, cfg: BestOfNConfig,
                    totals: BestOfNTotals | None = None) -> dict[str, Any]:
    """Sample, score and pick for one prompt; returns its record."""
    totals = totals or BestOfNTotals()
    base = {**conv.meta, "policy": {"backend": policy.backend, "model": policy.model}, "scorer": scorer.name}
    if conv.messages[-1]["role"] != "user":
        return make_record(conv.id, "filtered", {"prompt": conv.messages}, reason="the prompt does not end with a "
                           "user turn", meta=base)
    [completion] = await policy.chat([conv.messages], replace(cfg.settings, n=cfg.n))
    totals.policy.add(completion)
    cost: dict[str, Any] = {"policy": _one_cost(completion)}
    if not completion.ok:
        return make_record(conv.id, "failed", {"prompt": conv.messages}, reason=f"sampling failed: {completion.error}",
                           meta={**base, "cost": cost})
    texts = list(completion.texts)
    scored_idx = [i for i, t in enumerate(texts) if t.strip()]
    item = ScoreInput.from_prompt(conv.id, conv.messages, conv.meta)
    batch = await scorer.score(item, [texts[i] for i in scored_idx])
    totals.scoring.add(batch)
    candidates = _candidates(texts, batch, scored_idx, scorer.dimensions, cfg.details)
    pick = pick_pair([Candidate(c["index"], c["text"], c["total"]) for c in candidates],
                     min_scored=cfg.min_scored, min_margin=cfg.min_margin)
    own = ScoreCost()
    for result in batch.results:
        own += result.cost
    cost["scoring"] = {"shared": batch.shared.to_dict(), "responses": own.to_dict()}
    return _record(conv, candidates, pick, {**base, "n": cfg.n, "cost": cost})


def _one_cost(completion: Any) -> dict[str, int]:
    cost = Cost()
    cost.add(completion)
    return cost.to_dict()


def _record(conv: Conversation, candidates: list[dict[str, Any]], pick: Pick, meta: dict[str, Any]) -> dict[str, Any]:
    meta["scored"] = sum(c["status"] == "ok" for c in candidates)
    payload: dict[str, Any] = {"prompt": conv.messages}
    if not pick.ok:
        return make_record(conv.id, "filtered", {**payload, "candidates": candidates}, reason=pick.reason, meta=meta)
    meta.update(chosen_index=pick.chosen, rejected_index=pick.rejected, margin=pick.margin)
    payload.update(chosen=candidates[pick.chosen]["text"], rejected=candidates[pick.rejected]["text"])
    return make_record(conv.id, "ok", {**payload, "candidates": candidates}, meta=meta)


async def run_bestofn(
    conversations: Iterable[Conversation],
    policy: ChatModel,
    scorer: Scorer,
    store: RecordStore,
    cfg: BestOfNConfig,
    *,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> BestOfNTotals:
    """Run best-of-N over every prompt not yet in ``store``; each record is written as soon as it is done."""
    totals = BestOfNTotals()
    async def work(conv: Conversation) -> None:
        record = await best_of_n(conv, policy, scorer, cfg, totals)
        store.append(record)
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(conversations, store.done, "conversation"), work, cfg.max_in_flight)
    return totals


def pair_meta(record: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a pair: the same keys and JSON types in every row, so pyarrow loads the file."""
    meta, candidates = record["meta"], record["candidates"]
    return {
        "source": "bestofn",
        "scorer": str(meta["scorer"]),
        "policy": str(meta["policy"]["model"]),
        "n": int(meta["n"]),
        "scored": int(meta["scored"]),
        "chosen_index": int(meta["chosen_index"]),
        "rejected_index": int(meta["rejected_index"]),
        "margin": float(meta["margin"]),
        "scores": {"chosen": candidates[meta["chosen_index"]]["scores"],
                   "rejected": candidates[meta["rejected_index"]]["scores"]},
        "candidates": [{"index": c["index"], "status": c["status"], "total": c["total"], "scores": c["scores"]}
                       for c in candidates],
    }


def write_pairs(records_path: str | Path, pairs_path: str | Path) -> int:
    """Write the ``ok`` records of a best-of-N record file as TRL preference pairs (atomically), in id order (the
    records are in the order their calls finished); returns the count."""
    pairs = (PreferencePair(r["id"], r["prompt"], r["chosen"], r["rejected"], pair_meta(r))
             for r in sorted(read_stage_output(records_path), key=lambda r: r["id"]) if r["status"] == "ok")
    return write_records(pairs_path, pairs, "trl-pref")


def turn_prompts(conversations: Iterable[Conversation], which: str = "every_turn") -> Iterator[Conversation]:
    """The prompts of dialogues (see :attr:`BestOfNConfig.prompts`): ``whole`` yields each conversation as it is;
    ``every_turn`` and ``last`` yield ``<id>:<k>``, the history up to user turn k, with ``meta.reference`` from
    ``meta.references[k]``."""
    for conv in conversations:
        if which == "whole":
            yield conv
            continue
        references = conv.meta.get("references") or []
        users = [i for i, m in enumerate(conv.messages) if m["role"] == "user"]
        for k, index in enumerate(users):
            if which == "last" and k != len(users) - 1:
                continue
            meta = {"reference": references[k]} if k < len(references) else {}
            yield Conversation(f"{conv.id}:{k}", conv.messages[: index + 1], meta=meta)
