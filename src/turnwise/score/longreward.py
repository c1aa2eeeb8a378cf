"""LongReward (arXiv 2410.21252): four AI-feedback dimensions, each 0–10, averaged.

    scorer = LongRewardScorer(Judge(judge_model), Retriever())
    batch = await scorer.score(ScoreInput.from_prompt(id, prompt, meta), candidates)
    [r.total for r in batch.results]

- helpfulness, logicality: question + answer (:mod:`turnwise.score.dimensions`);
- faithfulness: statements → top-5 retrieved 128-token chunks → support (:mod:`turnwise.score.faithfulness`);
- completeness: key points per 4,096-token chunk → coverage (:mod:`turnwise.score.completeness`).

The context is a long document or, in a dialogue, the conversation before the question; with no context,
faithfulness and completeness are ``n/a`` and the total averages the other two. What the candidates to
one prompt share (the context's retrieval index, the completeness key points) is computed once, even when
they are scored concurrently, and charged to the batch's ``shared`` cost; everything else runs in
parallel: the dimensions of a response, the statements of its faithfulness, and the responses themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from turnwise.errors import ConfigError
from turnwise.judge.core import Judge
from turnwise.prompts import resolve_lang
from turnwise.retrieval.retriever import Retriever
from turnwise.score.completeness import KeyPoints, completeness, extract_points
from turnwise.score.dimensions import history_view, rate
from turnwise.score.faithfulness import faithfulness
from turnwise.score.types import DimensionScore, ScoreBatch, ScoreCost, ScoreInput, ScoreResult

DIMENSIONS = ("helpfulness", "logicality", "faithfulness", "completeness")


@dataclass(frozen=True)
class LongRewardConfig:
    """How LongReward scores.

    Attributes:
        dimensions: which of the four to score (in this order in results).
        lang: judge prompt language: ``auto`` (from the question and the start of the context), ``en``, ``zh``.
        top_k: chunks retrieved per factual statement.
        extract_chunk_tokens: tokens per chunk for the completeness key points.
        history_messages: turns before the question shown to helpfulness and logicality (dialogues).
        history_chars: characters kept of each of those turns.
    """

    dimensions: tuple[str, ...] = DIMENSIONS
    lang: str = "auto"
    top_k: int = 5
    extract_chunk_tokens: int = 4096
    history_messages: int = 6
    history_chars: int = 2000

    def __post_init__(self) -> None:
        unknown = [d for d in self.dimensions if d not in DIMENSIONS]
        if unknown or not self.dimensions:
            raise ConfigError(f"unknown LongReward dimensions {unknown}; choose from {', '.join(DIMENSIONS)}")
        if self.top_k < 1 or self.extract_chunk_tokens < 1:
            raise ConfigError("top_k and extract_chunk_tokens must be at least 1")


@dataclass
class Shared:
    """The work one (context, question) needs once, whatever the number of candidate answers."""

    points: KeyPoints | None = None
    cost: ScoreCost = field(default_factory=ScoreCost)


class OnceMap:
    """Compute each key once per event loop, even when many tasks ask for it at the same time.

    ``get`` returns the value and whether this call computed it (so the cost is charged once).
    """

    def __init__(self, max_items: int = 1024):
        self.max_items = max_items
        self._tasks: OrderedDict[str, asyncio.Task[Any]] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, key: str, compute: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # tasks of another (finished) loop cannot be awaited here
            self._tasks.clear()
            self._loop = loop
        task = self._tasks.get(key)
        if task is not None and not task.cancelled():
            self._tasks.move_to_end(key)
            return await asyncio.shield(task), False
        task = asyncio.ensure_future(compute())
        self._tasks[key] = task
        while len(self._tasks) > self.max_items:
            self._tasks.popitem(last=False)
        return await asyncio.shield(task), True


class LongRewardScorer:
    """The LongReward scorer; see the module docstring.

    Args:
        judge: the judge model, its retry policy and template folders.
        retriever: retrieves evidence for faithfulness (default: dense, the offline all-MiniLM-L6-v2);
            its tokenizer also cuts the completeness chunks.
        config: dimensions, language, chunk sizes.
    """

    name = "longreward"

    def __init__(self, judge: Judge, retriever: Retriever | None = None, config: LongRewardConfig | None = None):
        self.judge = judge
        self.config = config or LongRewardConfig()
        self.retriever = retriever or Retriever()
        self.dimensions = self.config.dimensions
        self._shared = OnceMap()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self.config), "judge": self.judge.describe(),
                "retriever": self.retriever.describe()}

    async def score(self, item: ScoreInput, responses: Sequence[str]) -> ScoreBatch:
        """Score every response to ``item``; the shared work is done (and charged) once."""
        lang = resolve_lang(self.config.lang, item.query, item.context[:1000])
        key = hashlib.sha256("\0".join((lang, item.query, item.context)).encode("utf-8")).hexdigest()
        shared, fresh = await self._shared.get(key, lambda: self._prepare(item, lang))
        results = await asyncio.gather(*(self._score_one(item, r, lang, shared) for r in responses))
        return ScoreBatch(list(results), shared.cost if fresh else ScoreCost())

    async def _prepare(self, item: ScoreInput, lang: str) -> Shared:
        shared = Shared()
        if not item.context.strip():
            return shared
        jobs: list[Awaitable[Any]] = []
        if "faithfulness" in self.dimensions:
            jobs.append(self._index(item.context, shared))
        if "completeness" in self.dimensions:
            jobs.append(self._points(item, lang, shared))
        await asyncio.gather(*jobs)
        return shared

    async def _index(self, context: str, shared: Shared) -> None:
        _, embedded = await asyncio.to_thread(self.retriever.index, context)
        shared.cost.embedded += embedded

    async def _points(self, item: ScoreInput, lang: str, shared: Shared) -> None:
        shared.points = await extract_points(self.judge, lang, item, self.config.extract_chunk_tokens,
                                             self.retriever.tokenizer)
        shared.cost += shared.points.cost

    async def _score_one(self, item: ScoreInput, response: str, lang: str, shared: Shared) -> ScoreResult:
        history = history_view(item.history, self.config.history_messages, self.config.history_chars)
        jobs: list[Awaitable[DimensionScore]] = []
        for name in self.dimensions:
            if name == "faithfulness":
                jobs.append(faithfulness(self.judge, self.retriever, lang, item, response, self.config.top_k))
            elif name == "completeness":
                jobs.append(completeness(self.judge, lang, item, response, shared.points))
            else:
                jobs.append(rate(self.judge, name, lang, item, response, history))
        return ScoreResult(list(await asyncio.gather(*jobs)))
