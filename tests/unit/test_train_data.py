"""Records → trainer rows: labels at literal positions, history truncation and its counts.

The tokenizers have no BPE merges (vocabulary = bytes + special tokens), so each ASCII character is one
token and positions are counted by hand. ChatML blocks of the 3-turn conversation below:

    ``<|im_start|>system\\nS<|im_end|>\\n``        11 tokens (0-10)
    ``<|im_start|>user\\nU1<|im_end|>\\n``         10 tokens
    ``<|im_start|>assistant\\nA1<|im_end|>\\n``    15 tokens, the loss on ``A1<|im_end|>`` (its 12th-14th)

so each user/assistant pair is 25 tokens and the whole conversation 11 + 3 × 25 = 86.
"""

from __future__ import annotations

import json

import pytest

from turnwise.data.render import IGNORE_INDEX
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.errors import ConfigError
from turnwise.quickstart.tiny_model import build_tiny_tokenizer
from turnwise.train.data import TOO_LONG, DataReport, dpo_rows, read_items, sft_rows

CONVERSATION = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "content": "A2"},
    {"role": "user", "content": "U3"},
    {"role": "assistant", "content": "A3"},
]
CHATML_ASSISTANT = [32, 33, 34, 57, 58, 59, 82, 83, 84]
CHATML_USER = [17, 18, 19, 42, 43, 44, 67, 68, 69]
# Llama 3: system block 13 tokens (with <|begin_of_text|>), user 11, assistant 16; loss on "A1<|eot_id|>".
LLAMA3_ASSISTANT = [37, 38, 39, 64, 65, 66, 91, 92, 93]
LLAMA3_USER = [21, 22, 23, 48, 49, 50, 75, 76, 77]


@pytest.fixture(scope="module")
def chatml():
    return build_tiny_tokenizer(template="chatml", vocab_size=1)


@pytest.fixture(scope="module")
def llama3():
    return build_tiny_tokenizer(template="llama3", vocab_size=1)


def positions(labels: list[int]) -> list[int]:
    return [i for i, label in enumerate(labels) if label != IGNORE_INDEX]


def sft(tokenizer, messages, max_length=4096, train_on=("assistant",)):
    report = DataReport("mem")
    rows = sft_rows([Conversation("c", messages)], tokenizer, report, max_length=max_length, train_on=train_on)
    return rows, report


@pytest.mark.parametrize(
    ("template", "train_on", "expected", "length"),
    [
        ("chatml", ("assistant",), CHATML_ASSISTANT, 86),
        ("chatml", ("user",), CHATML_USER, 86),
        ("llama3", ("assistant",), LLAMA3_ASSISTANT, 94),
        ("llama3", ("user",), LLAMA3_USER, 94),
    ],
)
def test_sft_labels_at_literal_positions(request, template, train_on, expected, length):
    tokenizer = request.getfixturevalue(template)
    rows, report = sft(tokenizer, CONVERSATION, train_on=train_on)
    ids, labels = rows[0]["input_ids"], rows[0]["labels"]
    assert len(ids) == length
    assert positions(labels) == expected
    assert all(labels[i] == ids[i] for i in expected)
    assert (report.rows, report.shortened, report.loss_tokens, report.max_tokens) == (1, 0, 9, length)


def test_sft_drops_oldest_pairs_to_fit(chatml):
    """85 tokens allowed: the U1/A1 pair (25 tokens) goes, the loss moves 25 tokens left."""
    rows, report = sft(chatml, CONVERSATION, max_length=85)
    assert len(rows[0]["input_ids"]) == 61
    assert positions(rows[0]["labels"]) == [p - 25 for p in CHATML_ASSISTANT[3:]]
    assert (report.shortened, report.pairs_dropped) == (1, 1)
    rows, report = sft(chatml, CONVERSATION, max_length=36)  # system + last pair = 36: two pairs go
    assert positions(rows[0]["labels"]) == [32, 33, 34]
    assert (report.shortened, report.pairs_dropped) == (1, 2)


def test_sft_drops_rows_that_cannot_fit_or_teach(chatml):
    rows, report = sft(chatml, CONVERSATION, max_length=35)
    assert rows == [] and report.dropped == {TOO_LONG: 1}
    rows, report = sft(chatml, CONVERSATION[:2])  # nothing answered yet: no assistant token to learn
    assert rows == [] and report.dropped == {"no assistant turn to train on": 1}
    assert "1 dropped: 1 × no assistant turn to train on" in report.summary()


def pair(prompt=CONVERSATION[:6], chosen="C", rejected="RR") -> PreferencePair:
    return PreferencePair("p", list(prompt), chosen, rejected)


def dpo(tokenizer, item, max_length):
    report = DataReport("mem")
    return dpo_rows([item], tokenizer, report, max_length=max_length), report


def test_dpo_rows_fit_the_longer_answer(chatml):
    """Prompt S U1 A1 U2 A2 U3 = 71 tokens; the assistant block of "C" is 14, of "RR" 15, so 86 at most."""
    rows, report = dpo(chatml, pair(), 86)
    assert rows == [{"prompt": CONVERSATION[:6], "chosen": [{"role": "assistant", "content": "C"}],
                     "rejected": [{"role": "assistant", "content": "RR"}]}]
    assert (report.shortened, report.max_tokens, report.tokens) == (0, 86, 85 + 86)
    rows, report = dpo(chatml, pair(), 85)  # one pair goes: 61 tokens
    assert rows[0]["prompt"] == [CONVERSATION[0], *CONVERSATION[3:6]]
    assert (report.shortened, report.pairs_dropped, report.max_tokens) == (1, 1, 61)
    rows, report = dpo(chatml, pair(), 36)  # system + U3 + "RR" = 36: both pairs go
    assert rows[0]["prompt"] == [CONVERSATION[0], CONVERSATION[5]]
    assert report.pairs_dropped == 2
    rows, report = dpo(chatml, pair(), 35)
    assert rows == [] and report.dropped == {TOO_LONG: 1}


def test_dpo_refuses_conversations(chatml):
    with pytest.raises(ConfigError, match="DPO needs preference pairs"):
        dpo_rows([Conversation("c", CONVERSATION)], chatml, DataReport("mem"), max_length=100)


def test_read_items_counts_and_limits(tmp_path):
    path = tmp_path / "d.jsonl"
    good = json.dumps({"messages": CONVERSATION})
    path.write_text("\n".join([good, json.dumps({"messages": []}), good, good]) + "\n", encoding="utf-8")
    items, report = read_items(path, None, skip_invalid=True, max_rows=2)
    assert len(items) == 2 and report.format == "openai" and len(report.sha256) == 64
    assert report.invalid["skipped"] == 1
    with pytest.raises(Exception, match="no messages"):
        read_items(path, None, skip_invalid=False, max_rows=0)
    empty = tmp_path / "e.jsonl"
    empty.write_text(json.dumps({"messages": []}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no usable records"):
        read_items(empty, "openai", skip_invalid=True, max_rows=0)
