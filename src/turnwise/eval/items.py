"""What an evaluation is made of: a dialogue to answer turn by turn, which turns to judge, and how to score.

An :class:`EvalItem` holds the user turns of one dialogue (2 for MT-Bench, 5 for MT-Eval's extended
MT-Bench, 8 for an MT-Bench++-style file), the turns the judge grades, the reference answers where the
benchmark has them, and whether each turn is answered with the model's *own* earlier answers in the
history (MT-Bench, MT-Eval) or with a *gold* history written by the benchmark (MT-Bench-101).

A :class:`Benchmark` says how a benchmark turns per-turn scores into its numbers: ``mean`` (MT-Bench:
the mean of every judged turn) or ``min`` (MT-Bench-101: a dialogue scores its lowest judged turn, a task
the mean of its dialogues, the benchmark the mean of its tasks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import SchemaError

HISTORIES = ("own", "gold")


@dataclass(frozen=True)
class Benchmark:
    """How a benchmark is answered and scored.

    Attributes:
        name: the benchmark's name in records and reports.
        history: ``own`` (the model's earlier answers) or ``gold`` (the benchmark's) by default.
        aggregate: ``mean`` or ``min`` (see the module docstring).
        source: where the benchmark and its protocol come from.
    """

    name: str
    history: str
    aggregate: str
    source: str


BENCHMARKS: dict[str, Benchmark] = {
    "mt-bench": Benchmark("mt-bench", "own", "mean", "Zheng et al. 2023 (arXiv 2306.05685), lm-sys/FastChat"),
    "mt-eval": Benchmark("mt-eval", "own", "mean", "Kwan et al. 2024 (arXiv 2401.16745): mt-bench_extended.jsonl"),
    "mt-bench-101": Benchmark("mt-bench-101", "gold", "min",
                              "Bai et al. 2024 (arXiv 2402.14762), mtbench101/mt-bench-101"),
    "turns": Benchmark("turns", "own", "mean", "turnwise's N-turn JSONL format (docs/eval.md)"),
    "multichallenge": Benchmark("multichallenge", "gold", "mean",
                                "Sirdeshmukh et al. 2025 (arXiv 2501.17399), ekwinox117/multi-challenge"),
}


def aggregate_of(benchmark: str) -> str:
    """``mean`` or ``min`` for a benchmark name (``mean`` for names turnwise does not know)."""
    known = BENCHMARKS.get(benchmark)
    return known.aggregate if known else "mean"


@dataclass
class EvalItem:
    """One dialogue of a benchmark.

    Attributes:
        id: stable id (MT-Bench's question_id, MT-Bench-101's ``TASK-id``).
        benchmark: the benchmark's name.
        category: MT-Bench's category, MT-Bench-101's task, or the user's own label.
        turns: the user turns, in order.
        judged: 1-based numbers of the turns the judge grades (every turn unless the benchmark says not).
        history: ``own`` or ``gold``: what the model sees as the assistant's earlier turns.
        gold: the benchmark's own answers per turn (needed for a gold history; kept when a file has them).
        references: a reference answer per turn (None where there is none), or None.
        system: a system message for the answering model, or None.
        meta: what else the source record carried.
    """

    id: str
    benchmark: str
    category: str
    turns: list[str]
    judged: list[int]
    history: str = "own"
    gold: list[str | None] | None = None
    references: list[str | None] | None = None
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_item(self)

    def prefix(self, upto: int) -> list[Message]:
        """The gold history before turn ``upto`` (1-based) followed by that user turn."""
        messages: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        for i in range(upto - 1):
            messages += [{"role": "user", "content": self.turns[i]},
                         {"role": "assistant", "content": self.gold[i]}]  # type: ignore[index]
        messages.append({"role": "user", "content": self.turns[upto - 1]})
        return messages

    def to_payload(self) -> dict[str, Any]:
        """The fields an answer record carries, so that judging needs nothing but the answer file."""
        payload: dict[str, Any] = {"benchmark": self.benchmark, "category": self.category, "turns": self.turns,
                                   "judged": self.judged, "history": self.history}
        for key in ("gold", "references", "system"):
            if getattr(self, key) is not None:
                payload[key] = getattr(self, key)
        return payload

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvalItem:
        """The item an answer (or judgement) record was made from."""
        return cls(record["id"], record["benchmark"], record["category"], list(record["turns"]),
                   list(record["judged"]), record.get("history", "own"), record.get("gold"),
                   record.get("references"), record.get("system"), dict(record.get("meta", {}).get("source", {})))


def check_item(item: EvalItem) -> None:
    """The rules every item keeps; a broken one raises SchemaError naming the rule."""
    n = len(item.turns)
    if not n:
        raise SchemaError("a dialogue needs at least one user turn")
    if any(not isinstance(t, str) or not t.strip() for t in item.turns):
        raise SchemaError("every turn must be a non-empty string")
    if not item.judged or any(not 1 <= k <= n for k in item.judged) or sorted(set(item.judged)) != item.judged:
        raise SchemaError(f"judged turns must be distinct, increasing and within 1–{n}, got {item.judged}")
    if item.history not in HISTORIES:
        raise SchemaError(f"history must be one of {', '.join(HISTORIES)}, got {item.history!r}")
    for key in ("gold", "references"):
        value = getattr(item, key)
        if value is not None and len(value) != n:
            raise SchemaError(f"{key} has {len(value)} entries for {n} turns")
    if item.history == "gold":
        needed = range(max(item.judged) - 1)
        if item.gold is None or any(not item.gold[i] for i in needed):
            raise SchemaError(f"a gold history needs the gold answers of turns 1–{max(item.judged) - 1}")
