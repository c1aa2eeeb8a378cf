"""Rewrite data readers: CANARD, CAsT, MuDoCo and the Chinese corpus, on hand-written files and the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.data.schema import Conversation
from turnwise.errors import ConfigError, InputError
from turnwise.rag.datasets import examples_from_conversation, read_conversations, read_rewrite_data, read_turns

CANARD = [
    {"History": ["Frank Zappa", "Disbandment"], "QuAC_dialog_id": "C_1", "Question": "What group disbanded?",
     "Question_no": 1, "Rewrite": "What group disbanded?"},
    {"History": ["Frank Zappa", "Disbandment", "What group disbanded?", "Zappa and the Mothers of Invention"],
     "QuAC_dialog_id": "C_1", "Question": "When did they disband?", "Question_no": 2,
     "Rewrite": "When did Zappa and the Mothers of Invention disband?"},
]

CAST = [
    {"conv_id": "31", "turns": [
        {"question": "What is throat cancer?", "response": "Cancer of the throat.",
         "manual_rewrite": "What is throat cancer?"},
        {"question": "Is it treatable?", "response": "Yes, often.", "manual_rewrite": "Is throat cancer treatable?"},
        {"question": "What about lung cancer?", "manual_rewrite": "What about lung cancer treatment?"},
    ]},
    {"conv_id": "32", "turns": [
        {"raw_utterance": "Tell me about the Bronze Age collapse.",
         "manual_rewritten_utterance": "Tell me about the Bronze Age collapse."},
        {"raw_utterance": "What caused it?", "manual_rewritten_utterance": "What caused the Bronze Age collapse?"},
    ]},
]

MUDOCO = {"domain": "news", "dialogs": {"d1": {"split": "test", "turns": [
    {"number": 1, "utterance": "Who won the award?", "graded": True, "rewritten_utterance": "Who won the award?",
     "rewrite_required": False},
    {"number": 2, "utterance": "Bob Evans did.", "graded": True, "rewritten_utterance": "Bob Evans did.",
     "rewrite_required": False},
    {"number": 3, "utterance": "Why him?", "graded": True, "rewritten_utterance": "Why Bob Evans?",
     "rewrite_required": True},
    {"number": 4, "utterance": "Cleanliness.", "graded": False},
    {"number": 5, "utterance": "Not graded", "graded": False},
]}}}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_canard(tmp_path: Path) -> None:
    first, second = read_rewrite_data(write(tmp_path / "c.json", CANARD), "canard")
    assert first.id == "C_1:1" and first.history == () and first.topic == "Frank Zappa — Disbandment"
    assert first.requires_rewrite is False
    assert second.history == ({"role": "user", "content": "What group disbanded?"},
                              {"role": "assistant", "content": "Zappa and the Mothers of Invention"})
    assert second.requires_rewrite is True and second.group == "C_1"
    conv = second.to_conversation()
    assert conv.messages[-1] == {"role": "user", "content": "When did they disband?"}
    assert conv.meta["topic"] == "Frank Zappa — Disbandment"


def test_cast_layout_and_its_aliases(tmp_path: Path) -> None:
    examples = read_rewrite_data(write(tmp_path / "cast.json", CAST), "cast")
    assert [e.id for e in examples] == ["31:1", "31:2", "31:3", "32:1", "32:2"]
    assert examples[2].history[-1] == {"role": "assistant", "content": "Yes, often."}
    assert examples[2].reference == "What about lung cancer treatment?"
    # CAsT 2019 has no responses: the user turns follow each other, which the rewriter accepts ...
    assert [m["role"] for m in examples[4].history] == ["user"]
    assert examples[4].reference == "What caused the Bronze Age collapse?"
    jsonl = tmp_path / "cast.jsonl"
    jsonl.write_text("".join(json.dumps(c) + "\n" for c in CAST), encoding="utf-8")
    assert [e.id for e in read_rewrite_data(jsonl, "cast")] == [e.id for e in examples]


def test_cast_without_responses_cannot_be_answered_as_a_conversation(tmp_path: Path) -> None:
    conversations, _ = read_conversations(write(tmp_path / "cast.json", CAST[1:]), "cast")
    with pytest.raises(InputError, match="must alternate"):
        list(conversations)


def test_mudoco_reads_graded_user_turns_with_their_labels(tmp_path: Path) -> None:
    examples = read_rewrite_data(write(tmp_path / "m.json", MUDOCO), "mudoco")
    assert [e.id for e in examples] == ["d1:1", "d1:3"]
    assert examples[1].needs_rewrite is True and examples[1].reference == "Why Bob Evans?"
    assert [m["content"] for m in examples[1].history] == ["Who won the award?", "Bob Evans did."]


def test_zh_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "zh.txt"
    path.write_text("你喜欢什么书\t\t全球通史\t\t没看过\t\t没看过全球通史\n西安天气\t\t多云\t\t明天呢\t\t西安明天天气\n",
                    encoding="utf-8")
    first, second = read_rewrite_data(path, "zh-rewrite")
    assert (first.id, first.question, first.reference, first.lang) == ("zh-1", "没看过", "没看过全球通史", "zh")
    assert second.history[1] == {"role": "assistant", "content": "多云"}
    path.write_text("only\t\tthree\t\tfields\n", encoding="utf-8")
    with pytest.raises(InputError, match="4 fields"):
        read_rewrite_data(path, "zh-rewrite")


def test_limit_and_unknown_format(tmp_path: Path) -> None:
    assert len(read_rewrite_data(write(tmp_path / "c.json", CANARD), "canard", limit=1)) == 1
    with pytest.raises(ConfigError, match="unknown rewrite data format"):
        read_rewrite_data(tmp_path / "c.json", "quac")
    with pytest.raises(InputError):
        read_rewrite_data(write(tmp_path / "bad.json", {"x": 1}), "canard")


def test_conversations_become_one_turn_each(tmp_path: Path) -> None:
    conv = Conversation("a", [{"role": "user", "content": "What is the Nile?"},
                              {"role": "assistant", "content": "A river."},
                              {"role": "user", "content": "How long is it?"}], meta={"topic": "Rivers"})
    first, second = examples_from_conversation(conv)
    assert (first.id, second.id) == ("a:0", "a:2") and second.topic == "Rivers" and len(second.history) == 2
    path = tmp_path / "convs.jsonl"
    path.write_text(json.dumps({"id": "a", "messages": conv.messages}) + "\n", encoding="utf-8")
    turns, report = read_turns(path)
    assert [t.id for t in turns] == ["a:0", "a:2"] and report.fmt == "openai"


def test_the_shared_data(shared_data: Path) -> None:
    context = shared_data / "context"
    canard = read_rewrite_data(context / "canard_dev.json", "canard")
    mudoco = read_rewrite_data(context / "mudoco_news.json", "mudoco")
    chinese = read_rewrite_data(context / "zh_rewrite_dev.txt", "zh-rewrite")
    assert (len(canard), len(mudoco), len(chinese)) == (3430, 387, 2000)
    assert sum(e.requires_rewrite for e in mudoco) == 180
    assert canard[1].reference == "When did Zappa and the Mothers of Invention disband?"
