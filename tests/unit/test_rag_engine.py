"""The RAG turn with fakes: the rewrite reaches the retriever and never the answering prompt; first and standalone
turns make no rewrite call; the history is trimmed to the budget and the system message survives."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from turnwise.errors import ConfigError
from turnwise.rag.engine import ChatSession, RagConfig, RagEngine, token_counter
from turnwise.rag.index import Found
from turnwise.rag.rewriter import Rewriter
from turnwise.testing.fake import FakeChatModel

REWRITE = "Reasoning: it is the Nile.\nRewrite: How long is the Nile?"
NILE_CHUNK = Found("nile#0", "nile", "Nile", "The Nile is about 6,650 km long.", 1.0)


class FakeIndex:
    """Records every query; returns the Nile chunk when the query names the Nile."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, queries: Sequence[str], k: int = 4) -> list[list[Found]]:
        self.queries.extend(queries)
        return [[NILE_CHUNK] if "Nile" in q else [] for q in queries][:k]


def rewriter_reply(messages: list[dict[str, str]]) -> str:
    return REWRITE


def build(budget: int = 4096, *, rewriter: bool = True, count=None) -> tuple[RagEngine, FakeIndex, FakeChatModel,
                                                                               FakeChatModel]:
    index, answerer, rewriting = FakeIndex(), FakeChatModel(), FakeChatModel(rewriter_reply)
    engine = RagEngine(index, answerer, rewriter=Rewriter(rewriting) if rewriter else None,
                       count_tokens=count, config=RagConfig(top_k=3, budget=budget))
    return engine, index, answerer, rewriting


def conversation(*turns: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


async def test_rewrite_reaches_the_retriever_and_not_the_answering_prompt() -> None:
    engine, index, answerer, rewriting = build()
    messages = conversation("What is the Nile?", "A river in Africa.", "How long is it?", system="Be brief.")
    turn = await engine.answer(messages)
    assert len(rewriting.seen) == 1 and index.queries == ["How long is the Nile?"]
    assert turn.query == "How long is the Nile?" and turn.chunk_ids == ["nile#0"]
    [prompt] = answerer.seen
    assert "How long is the Nile?" not in "\n".join(m["content"] for m in prompt)
    assert prompt[1:] == messages[1:]  # the conversation's own messages, unchanged
    assert prompt[0]["role"] == "system" and prompt[0]["content"].startswith("Be brief.")
    assert "[Passage 1] Nile\nThe Nile is about 6,650 km long." in prompt[0]["content"]
    assert turn.answer == "answer to: How long is it?"
    log = turn.to_log()
    assert (log["query"], log["chunk_ids"], log["rewrite"]["status"]) == ("How long is the Nile?", ["nile#0"],
                                                                          "rewritten")


async def test_first_turn_makes_no_rewrite_call() -> None:
    engine, index, _, rewriting = build()
    turn = await engine.answer(conversation("What is the Nile?", system="Be brief."))
    assert rewriting.seen == [] and index.queries == ["What is the Nile?"]
    assert turn.rewrite is not None and turn.rewrite.gate.reason == "first turn"


async def test_standalone_turn_makes_no_rewrite_call() -> None:
    engine, index, _, rewriting = build()
    await engine.answer(conversation("What is the Nile?", "A river.", "When was the Eiffel Tower built?"))
    assert rewriting.seen == [] and index.queries == ["When was the Eiffel Tower built?"]


async def test_a_failed_rewrite_searches_the_question() -> None:
    index, answerer = FakeIndex(), FakeChatModel()
    engine = RagEngine(index, answerer, rewriter=Rewriter(FakeChatModel(lambda _m: "It is 6,650 km.")))
    turn = await engine.answer(conversation("What is the Nile?", "A river.", "How long is it?"))
    assert index.queries == ["How long is it?"] and turn.answer is not None
    assert turn.to_log()["rewrite"]["raw"] == ["It is 6,650 km."]


def words(messages: list[dict[str, str]]) -> int:
    """One token per word: budgets below are counted by hand."""
    return sum(len(m["content"].split()) for m in messages)


async def test_history_is_trimmed_to_the_budget_and_the_system_message_survives() -> None:
    history = []
    for i in range(6):
        history += [f"old question number {i} about rivers", f"old answer number {i} about rivers too"]
    messages = conversation(*history, "How long is it?", system="Be brief.")
    engine, _, answerer, _ = build(budget=90, count=words)
    full = engine.answer_prompt(messages, [NILE_CHUNK], "en")
    assert words(full) > 90
    turn = await engine.answer(messages)
    [prompt] = answerer.seen
    assert words(prompt) <= 90 and turn.truncation.pairs_dropped > 0 and turn.truncation.fits
    assert prompt[0]["content"].startswith("Be brief.") and "6,650 km" in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "How long is it?"}
    kept_pairs = (len(prompt) - 2) // 2
    assert kept_pairs == 6 - turn.truncation.pairs_dropped and prompt[1:-1] == messages[-1 - 2 * kept_pairs:-1]


async def test_passages_go_only_when_the_history_alone_cannot_make_room() -> None:
    engine, _, answerer, _ = build(count=words)
    messages = conversation("What is the Nile?", "A river.", "How long is it?")
    bare = words(engine.answer_prompt(messages[-1:], [], "en"))
    engine.config = RagConfig(top_k=3, budget=bare + 1)  # room for the instructions and the question only
    turn = await engine.answer(messages)
    assert turn.passages == 0 and turn.chunk_ids == ["nile#0"] and turn.truncation.pairs_dropped == 1
    assert "(No passage was found.)" in answerer.seen[0][0]["content"]
    engine.config = RagConfig(top_k=3, budget=bare - 1)
    turn = await engine.answer(messages)
    assert turn.answer is None and "even without history and passages" in turn.error and len(answerer.seen) == 1


async def test_without_a_rewriter_the_question_is_searched() -> None:
    engine, index, _, _ = build(rewriter=False)
    turn = await engine.answer(conversation("What is the Nile?", "A river.", "How long is it?"))
    assert index.queries == ["How long is it?"] and turn.rewrite is None and turn.to_log()["rewrite"] is None


async def test_failed_answer_is_reported() -> None:
    engine = RagEngine(FakeIndex(), FakeChatModel(lambda _m: None))
    turn = await engine.answer(conversation("What is the Nile?"))
    assert turn.answer is None and turn.error == "answer: scripted failure"
    with pytest.raises(ConfigError):
        await engine.answer(conversation("What is the Nile?", "A river."))


async def test_chinese_turns_get_the_chinese_answer_prompt() -> None:
    engine, _, answerer, _ = build(rewriter=False)
    await engine.answer(conversation("长城有多长？"))
    assert answerer.seen[0][0]["content"].startswith("请结合整个对话回答")


async def test_chat_session_keeps_history_and_logs_each_turn() -> None:
    engine, index, _, rewriting = build()
    logs = []
    session = ChatSession(engine, system="Be brief.", on_turn=lambda turn: logs.append(turn.to_log()))
    await session.ask("What is the Nile?")
    await session.ask("How long is it?")
    assert index.queries == ["What is the Nile?", "How long is the Nile?"] and len(rewriting.seen) == 1
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert [log["query"] for log in logs] == ["What is the Nile?", "How long is the Nile?"]
    assert logs[1]["chunk_ids"] == ["nile#0"] and logs[1]["turn"] == 3
    session.reset()
    assert session.messages == [{"role": "system", "content": "Be brief."}]


def test_estimated_token_counter() -> None:
    count = token_counter()
    assert count([{"role": "user", "content": "How long is it?"}]) == 5 + 4
    assert count([{"role": "user", "content": "长城有多长"}]) == 5 + 4
