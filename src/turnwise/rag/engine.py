"""The multi-turn RAG turn: rewrite the follow-up for retrieval, retrieve, answer with the history.

    engine = RagEngine(RagIndex.load("runs/index"), answer_model, rewriter=Rewriter(model),
                       count_tokens=token_counter(tokenizer), config=RagConfig(top_k=4, budget=4096))
    turn = await engine.answer(messages)          # messages end with the user's follow-up
    turn.query, turn.chunk_ids, turn.answer

The rewrite is used for retrieval only. The answering model sees the conversation's own messages; the
retrieved chunks go into the system message (``rag/answer`` template, after the user's own system message,
if any). The prompt is fitted to ``budget`` tokens with :func:`turnwise.data.truncate.truncate_history`:
the oldest whole user/assistant pairs go first, the system message and the question always stay; only
when even that does not fit are passages dropped, the lowest-ranked first, and a turn that still does not
fit fails without a call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnwise.data.render import render
from turnwise.data.schema import Message
from turnwise.data.truncate import TokenCounter, TruncationInfo, truncate_history
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import LANGS, detect_lang
from turnwise.prompts import render as render_template
from turnwise.rag.index import Found
from turnwise.rag.rewriter import Rewrite, Rewriter
from turnwise.retrieval.chunking import count_tokens as regex_tokens
from turnwise.stage.runner import Cost

_MESSAGE_OVERHEAD = 4  # role and separators per message, when no tokenizer is at hand


class Searcher(Protocol):
    """What the engine retrieves from (:class:`~turnwise.rag.index.RagIndex`, or a fake in tests)."""

    def search(self, queries: Sequence[str], k: int = 4) -> list[list[Found]]: ...


def token_counter(tokenizer: Any | None = None) -> TokenCounter:
    """Tokens of a prompt: the chat-template rendering with ``tokenizer``, else words and CJK characters.

    Without a tokenizer the count is an estimate (regex tokens of each message plus 4), which undercounts
    subword tokens by about a quarter in English: leave room in the budget.
    """
    if tokenizer is None:
        return lambda messages: sum(regex_tokens(m["content"]) + _MESSAGE_OVERHEAD for m in messages)

    def count(messages: list[Message]) -> int:
        text = render(tokenizer, messages, add_generation_prompt=True)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


@dataclass(frozen=True)
class RagConfig:
    """How each turn is answered.

    Attributes:
        top_k: chunks retrieved per turn.
        budget: most tokens of the answering prompt (history, system message, passages, question).
        settings: the answering model's generation settings.
        lang: language of the answer prompt's instructions: ``auto`` (the question's), ``en`` or ``zh``.
        search_path: folders searched for templates before the package's own.
    """

    top_k: int = 4
    budget: int = 4096
    settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.0,
                                                                                     max_tokens=512))
    lang: str = "auto"
    search_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.top_k < 0 or self.budget < 1:
            raise ConfigError(f"top_k must be >= 0 and budget >= 1, got {self.top_k} and {self.budget}")
        if self.lang != "auto" and self.lang not in LANGS:
            raise ConfigError(f"no answer prompts in {self.lang!r}; choose auto or one of {', '.join(LANGS)}")

    def describe(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "budget": self.budget, "settings": self.settings.to_dict(), "lang": self.lang,
                "template": "rag/answer"}


@dataclass
class TurnResult:
    """One answered turn, and its log.

    Attributes:
        index: the user turn's position in the messages.
        question: the user's turn as written.
        query: what was searched (the rewrite, or the question).
        rewrite: the rewriter's outcome (None without a rewriter).
        found: the retrieved chunks, best first (all of them, also those dropped to fit the budget).
        passages: how many of them the answering model saw.
        truncation: what fitting the prompt to the budget did.
        answer: the model's answer; None when the turn failed.
        error: why the turn failed.
        cost: the rewrite's and the answer's calls.
    """

    index: int
    question: str
    query: str
    rewrite: Rewrite | None
    found: list[Found]
    passages: int = 0
    truncation: TruncationInfo | None = None
    answer: str | None = None
    error: str | None = None
    cost: Cost = field(default_factory=Cost)

    @property
    def chunk_ids(self) -> list[str]:
        return [f.id for f in self.found]

    def to_log(self) -> dict[str, Any]:
        """The turn's log line: the query actually searched, the chunk ids, the rewrite, the trimming."""
        log: dict[str, Any] = {"turn": self.index, "question": self.question, "query": self.query,
                               "chunk_ids": self.chunk_ids, "chunks": [f.to_dict() for f in self.found],
                               "passages_shown": self.passages,
                               "rewrite": self.rewrite.to_dict() if self.rewrite else None,
                               "truncation": self.truncation.to_dict() if self.truncation else None,
                               "answer": self.answer, "cost": self.cost.to_dict()}
        if self.error:
            log["error"] = self.error
        return log


class RagEngine:
    """Rewrite (optional), retrieve and answer, one turn at a time.

    Args:
        index: where chunks are retrieved from.
        model: the answering model.
        rewriter: rewrites follow-ups for retrieval; None searches with the question as asked.
        count_tokens: tokens of a prompt (see :func:`token_counter`).
        config: top-k, budget, generation settings.
    """

    def __init__(self, index: Searcher, model: ChatModel, *, rewriter: Rewriter | None = None,
                 count_tokens: TokenCounter | None = None, config: RagConfig | None = None):
        self.index = index
        self.model = model
        self.rewriter = rewriter
        self.count_tokens = count_tokens or token_counter()
        self.config = config or RagConfig()

    def answer_prompt(self, messages: Sequence[Message], found: Sequence[Found], lang: str) -> list[Message]:
        """The conversation as it is, with the passages in (or as) the system message."""
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        rest = [dict(m) for m in (messages[1:] if system is not None else messages)]
        content = render_template("rag/answer", lang, search_path=self.config.search_path, system=system,
                                  passages=[f.passage() for f in found])
        return [{"role": "system", "content": content}, *rest]

    def fit(self, messages: Sequence[Message], found: Sequence[Found],
            lang: str) -> tuple[list[Message], TruncationInfo, int]:
        """The prompt within the budget: history trimmed first, then passages; returns it, the trimming and
        the number of passages kept (check ``info.fits``)."""
        for keep in range(len(found), -1, -1):
            prompt = self.answer_prompt(messages, found[:keep], lang)
            kept, info = truncate_history(prompt, self.count_tokens, self.config.budget)
            if info.fits:
                return kept, info, keep
        return kept, info, 0

    async def answer(self, messages: Sequence[Message], topic: str | None = None) -> TurnResult:
        """Answer the last user turn of ``messages``; failures come back in ``TurnResult.error``."""
        if not messages or messages[-1]["role"] != "user":
            raise ConfigError("the conversation must end with the user's turn to answer")
        question, history = messages[-1]["content"], list(messages[:-1])
        cost = Cost()
        rewrite = None
        if self.rewriter is not None:
            rewrite = await self.rewriter.rewrite(history, question, topic)
            cost += rewrite.cost
        query = rewrite.query if rewrite is not None else question
        found = await self._search(query)
        lang = self.config.lang if self.config.lang != "auto" else detect_lang(question)
        prompt, info, shown = self.fit(messages, found, lang)
        turn = TurnResult(len(messages) - 1, question, query, rewrite, found, shown, info, cost=cost)
        if not info.fits:
            turn.error = f"the prompt needs {info.tokens_after} tokens even without history and passages " \
                         f"(budget {self.config.budget})"
            return turn
        [completion] = await self.model.chat([prompt], self.config.settings)
        cost.add(completion)
        if not completion.ok or not completion.texts or not completion.texts[0].strip():
            turn.error = f"answer: {completion.error or 'empty completion'}"
        else:
            turn.answer = completion.texts[0]
        return turn

    async def _search(self, query: str) -> list[Found]:
        if self.config.top_k == 0:
            return []
        # Embedding a query is CPU work: off the event loop, so other conversations keep going.
        [found] = await asyncio.to_thread(self.index.search, [query], self.config.top_k)
        return found

    def describe(self) -> dict[str, Any]:
        return {"answer_model": {"backend": self.model.backend, "model": self.model.model},
                "rewriter": self.rewriter.describe() if self.rewriter else None, **self.config.describe()}


@dataclass
class ChatSession:
    """An interactive conversation over an engine: the messages so far, one turn at a time.

    Args:
        engine: answers each turn.
        system: the system message, kept through every turn and trim.
        topic: context for the rewriter that is not a message.
        on_turn: called with each turn's result (the CLI writes the per-turn log with it).
    """

    engine: RagEngine
    system: str | None = None
    topic: str | None = None
    on_turn: Callable[[TurnResult], None] | None = None
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the system message stays)."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    async def ask(self, text: str) -> TurnResult:
        """Answer ``text``; on success the exchange joins the history, on failure the history is unchanged."""
        turn = await self.engine.answer([*self.messages, {"role": "user", "content": text}], self.topic)
        if turn.answer is not None:
            self.messages += [{"role": "user", "content": text}, {"role": "assistant", "content": turn.answer}]
        if self.on_turn is not None:
            self.on_turn(turn)
        return turn
