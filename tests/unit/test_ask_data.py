"""Ask-model training data: the flipped view, and labels on the real user turns only, pinned by hand.

The position tests use a tokenizer with no BPE merges (256 bytes + special tokens), so every ASCII
character is one token and positions can be counted by hand.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from turnwise.cli.main import app
from turnwise.data.render import IGNORE_INDEX
from turnwise.quickstart.tiny_model import build_tiny_tokenizer
from turnwise.simulate.ask_data import AskDataConfig, ask_example, ask_messages, write_ask_dataset
from turnwise.simulate.prompts import SimulatorPrompt

# A hand-written 3-turn dialogue, with the assistant's own system prompt (which the flip leaves out).
DIALOGUE = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "content": "A2"},
    {"role": "user", "content": "U3"},
    {"role": "assistant", "content": "A3"},
]


@pytest.fixture(scope="module")
def chatml_bytes():
    return build_tiny_tokenizer(template="chatml", vocab_size=1)


def loss_positions(labels: list[int]) -> list[int]:
    return [i for i, label in enumerate(labels) if label != IGNORE_INDEX]


def test_mask_on_user_turns_by_hand(chatml_bytes):
    """Token counts per block (``<|im_start|>`` and ``<|im_end|>`` one token each, one per character):

    ``<|im_start|>system\\nS<|im_end|>\\n``      1+6+1+1+1+1 = 11   (0-10)    simulator prompt
    ``<|im_start|>user\\nO<|im_end|>\\n``        1+4+1+1+1+1 =  9   (11-19)   opener
    ``<|im_start|>assistant\\nU1<|im_end|>\\n``  1+9+1+2+1+1 = 15   (20-34)   real user turn 1
    ``<|im_start|>user\\nA1<|im_end|>\\n``       1+4+1+2+1+1 = 10   (35-44)   real answer 1

    Loss on ``U``, ``1``, ``<|im_end|>`` of each real user turn: 20+11 = 31..33, then +25 per turn pair:
    56..58 and 81..83. The last answer, A3, is followed by no user turn and is left out: 85 tokens.
    """
    prompt = SimulatorPrompt(system="S", opener="O")
    row = ask_example(chatml_bytes, DIALOGUE, prompt)
    ids, labels = row["input_ids"], row["labels"]
    assert len(ids) == 85
    assert loss_positions(labels) == [31, 32, 33, 56, 57, 58, 81, 82, 83]
    assert chatml_bytes.decode(ids[31:34]) == "U1<|im_end|>"
    assert chatml_bytes.decode(ids[81:84]) == "U3<|im_end|>"
    assert all(labels[i] == ids[i] for i in loss_positions(labels))


def test_mask_with_end_marker_by_hand(chatml_bytes):
    """With the marker ``E``: A3 stays (85-94, 10 tokens) and ``<|im_start|>assistant\\nE<|im_end|>\\n``
    follows (95-108); the loss adds ``E`` and its ``<|im_end|>``: 95+11 = 106, 107. 109 tokens."""
    prompt = SimulatorPrompt(system="S", opener="O", end_marker="E")
    row = ask_example(chatml_bytes, DIALOGUE, prompt)
    assert len(row["input_ids"]) == 109
    assert loss_positions(row["labels"]) == [31, 32, 33, 56, 57, 58, 81, 82, 83, 106, 107]


def test_llama3_loss_spans_are_the_user_turns():
    tokenizer = build_tiny_tokenizer(template="llama3", vocab_size=512)
    row = ask_example(tokenizer, DIALOGUE, SimulatorPrompt(system="S", opener="O", end_marker="[END]"))
    spans, run = [], []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != IGNORE_INDEX:
            run.append(token)
        elif run:
            spans.append(tokenizer.decode(run))
            run = []
    spans += [tokenizer.decode(run)] if run else []
    assert spans == ["U1<|eot_id|>", "U2<|eot_id|>", "U3<|eot_id|>", "[END]<|eot_id|>"]


def test_ask_messages_unanswered_last_turn_keeps_its_loss():
    prompt = SimulatorPrompt(system="S", opener="O", end_marker="[END]")
    flipped = ask_messages(DIALOGUE[:-1], prompt)  # ends on the user turn U3: no marker after it
    assert flipped[-1] == {"role": "assistant", "content": "U3"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


SHAREGPT = [
    {"id": "en", "conversations": [{"from": "human", "value": "What is a cache?"}, {"from": "gpt", "value": "A store."},
                                   {"from": "human", "value": "Why is it fast?"}, {"from": "gpt", "value": "Memory."}]},
    {"id": "zh", "conversations": [{"from": "human", "value": "缓存是什么？"}, {"from": "gpt", "value": "存储。"}]},
]


def test_write_ask_dataset_flips_every_dialogue(tmp_path):
    src = write_jsonl(tmp_path / "sg.jsonl", SHAREGPT)
    report = write_ask_dataset(src, tmp_path / "ask.jsonl", AskDataConfig(end_marker="[END]"))
    assert report.written == 2
    rows = [json.loads(line) for line in (tmp_path / "ask.jsonl").read_text(encoding="utf-8").splitlines()]
    en, zh = rows
    assert [m["role"] for m in en["messages"]] == ["system", "user", "assistant", "user", "assistant", "user",
                                                   "assistant"]
    assert [m["content"] for m in en["messages"][2:]] == [
        "What is a cache?", "A store.", "Why is it fast?", "Memory.", "[END]"]
    assert "curious human user" in en["messages"][0]["content"] and "用户" in zh["messages"][0]["content"]
    assert en["meta"]["source_id"] == "en"
    skipped = write_ask_dataset(src, tmp_path / "multi.jsonl", AskDataConfig(min_user_turns=2), to="trl-sft")
    assert skipped.written == 1


def test_ask_data_command(tmp_path):
    src = write_jsonl(tmp_path / "sg.jsonl", SHAREGPT)
    result = CliRunner().invoke(app, ["ask-data", str(src), str(tmp_path / "ask.jsonl"), "--lang", "en",
                                      "--system", "", "--opener", "Go."])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "ask.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[1]["messages"] == [{"role": "user", "content": "Go."}, {"role": "assistant", "content": "缓存是什么？"}]
