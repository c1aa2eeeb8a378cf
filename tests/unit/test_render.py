"""Rendering and loss masks, pinned by hand on a 3-turn conversation.

The position tests use tokenizers with no BPE merges (vocabulary = 256 bytes + special tokens), so every
ASCII character is one token and positions can be counted by hand.
"""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from turnwise.data.render import (
    IGNORE_INDEX,
    label_tokens,
    load_tokenizer,
    loss_char_spans,
    loss_view,
    render,
)
from turnwise.errors import ConfigError, TurnwiseError
from turnwise.quickstart.tiny_model import build_tiny_tokenizer

CONVERSATION = [
    {"role": "system", "content": "S"},
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


@pytest.fixture(scope="module")
def llama3_bytes():
    return build_tiny_tokenizer(template="llama3", vocab_size=1)


@pytest.fixture(scope="module", params=["chatml", "llama3"])
def bpe_tokenizer(request):
    return build_tiny_tokenizer(template=request.param, vocab_size=512)


def loss_positions(labels: list[int]) -> list[int]:
    return [i for i, label in enumerate(labels) if label != IGNORE_INDEX]


def decoded_loss_spans(tokenizer, ids: list[int], labels: list[int]) -> list[str]:
    """Decode each run of consecutive loss-carrying tokens."""
    spans, run = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            run.append(token)
        elif run:
            spans.append(tokenizer.decode(run)), run.clear()
    if run:
        spans.append(tokenizer.decode(run))
    return spans


def test_chatml_assistant_positions(chatml_bytes):
    """Token counts per block, one token per character and per special token:

    ``<|im_start|>system\\nS<|im_end|>\\n``         1+6+1+1+1+1 = 11 tokens  (0-10)
    ``<|im_start|>user\\nU1<|im_end|>\\n``          1+4+1+2+1+1 = 10 tokens  (11-20)
    ``<|im_start|>assistant\\nA1<|im_end|>\\n``     1+9+1+2+1+1 = 15 tokens  (21-35)

    The loss starts after ``<|im_start|>assistant\\n`` (21+11 = 32) and covers ``A``, ``1``, ``<|im_end|>``
    (32-34), not the newline after it. Each later user/assistant pair adds 25 tokens: 57-59, 82-84.
    """
    ids, labels = label_tokens(chatml_bytes, CONVERSATION)
    assert len(ids) == 86
    assert loss_positions(labels) == [32, 33, 34, 57, 58, 59, 82, 83, 84]
    assert all(labels[i] == ids[i] for i in loss_positions(labels))
    assert decoded_loss_spans(chatml_bytes, ids, labels) == ["A1<|im_end|>", "A2<|im_end|>", "A3<|im_end|>"]


def test_chatml_user_positions(chatml_bytes):
    """User content starts after ``<|im_start|>user\\n`` (11+6 = 17): ``U``, ``1``, ``<|im_end|>`` = 17-19."""
    ids, labels = label_tokens(chatml_bytes, CONVERSATION, train_on=("user",))
    assert loss_positions(labels) == [17, 18, 19, 42, 43, 44, 67, 68, 69]
    assert decoded_loss_spans(chatml_bytes, ids, labels) == ["U1<|im_end|>", "U2<|im_end|>", "U3<|im_end|>"]


def test_llama3_assistant_positions(llama3_bytes):
    """``<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\nS<|eot_id|>``: 1+1+6+1+2+1+1 = 13
    (0-12); a user block ``<|start_header_id|>user<|end_header_id|>\\n\\nU1<|eot_id|>``: 1+4+1+2+2+1 = 11
    (13-23); an assistant block: 1+9+1+2+2+1 = 16 (24-39), loss on ``A1<|eot_id|>`` = 24+13 = 37-39. Each
    pair adds 27 tokens: 64-66, 91-93. Nothing follows ``<|eot_id|>``, so the conversation has 94 tokens.
    """
    ids, labels = label_tokens(llama3_bytes, CONVERSATION)
    assert len(ids) == 94
    assert loss_positions(labels) == [37, 38, 39, 64, 65, 66, 91, 92, 93]
    assert decoded_loss_spans(llama3_bytes, ids, labels) == ["A1<|eot_id|>", "A2<|eot_id|>", "A3<|eot_id|>"]


def test_llama3_user_positions(llama3_bytes):
    """User content starts after ``<|start_header_id|>user<|end_header_id|>\\n\\n``: 13+8 = 21, so 21-23."""
    ids, labels = label_tokens(llama3_bytes, CONVERSATION, train_on=("user",))
    assert loss_positions(labels) == [21, 22, 23, 48, 49, 50, 75, 76, 77]
    assert decoded_loss_spans(llama3_bytes, ids, labels) == ["U1<|eot_id|>", "U2<|eot_id|>", "U3<|eot_id|>"]


def test_last_only_is_the_final_answer_dpo_scores(chatml_bytes, llama3_bytes):
    """The matched baseline's mask (``loss_turns: last``): the last assistant block alone, 82-84 (chatml) and
    91-93 (llama3) above; the chosen completion DPO's SFT term scores is the rendering of prompt + answer past
    the rendered prompt, which is the same text up to the whitespace the template writes after the end token."""
    ids, labels = label_tokens(chatml_bytes, CONVERSATION, last_only=True)
    assert loss_positions(labels) == [82, 83, 84]
    assert decoded_loss_spans(chatml_bytes, ids, labels) == ["A3<|im_end|>"]
    _, labels = label_tokens(llama3_bytes, CONVERSATION, last_only=True)
    assert loss_positions(labels) == [91, 92, 93]
    _, labels = label_tokens(chatml_bytes, CONVERSATION, train_on=("user",), last_only=True)
    assert loss_positions(labels) == [67, 68, 69]
    for tokenizer in (chatml_bytes, llama3_bytes):
        prompt = render(tokenizer, CONVERSATION[:-1], add_generation_prompt=True)
        whole = render(tokenizer, CONVERSATION, add_generation_prompt=False)
        ids, labels = label_tokens(tokenizer, CONVERSATION, last_only=True)
        assert whole.startswith(prompt)
        assert "".join(decoded_loss_spans(tokenizer, ids, labels)) == whole[len(prompt):].rstrip()


def test_both_roles(chatml_bytes):
    _, labels = label_tokens(chatml_bytes, CONVERSATION, train_on=("assistant", "user"))
    assert loss_positions(labels) == [17, 18, 19, 32, 33, 34, 42, 43, 44, 57, 58, 59, 67, 68, 69, 82, 83, 84]


def test_bpe_spans(bpe_tokenizer):
    """With merges the positions move, but the loss spans decode to the same text."""
    eot = bpe_tokenizer.eos_token
    ids, labels = label_tokens(bpe_tokenizer, CONVERSATION)
    assert decoded_loss_spans(bpe_tokenizer, ids, labels) == [f"A{k}{eot}" for k in (1, 2, 3)]
    ids, labels = label_tokens(bpe_tokenizer, CONVERSATION, train_on=("user",))
    assert decoded_loss_spans(bpe_tokenizer, ids, labels) == [f"U{k}{eot}" for k in (1, 2, 3)]


def test_chinese_and_whitespace(bpe_tokenizer):
    """Multi-byte characters split over tokens stay whole; Llama 3 trims content, ChatML keeps it."""
    messages = [{"role": "user", "content": "它在哪里？"}, {"role": "assistant", "content": " 在花园里。 "}]
    ids, labels = label_tokens(bpe_tokenizer, messages)
    expected = "在花园里。" if bpe_tokenizer.eos_token == "<|eot_id|>" else " 在花园里。 "
    assert decoded_loss_spans(bpe_tokenizer, ids, labels) == [expected + bpe_tokenizer.eos_token]
    view = loss_view(bpe_tokenizer, messages)
    assert "".join(text for text, _ in view) == render(bpe_tokenizer, messages, add_generation_prompt=False)
    assert "".join(text for text, carries in view if carries) == expected + bpe_tokenizer.eos_token


def test_render_generation_prompt(chatml_bytes):
    text = render(chatml_bytes, CONVERSATION[:2], add_generation_prompt=True)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"


def test_user_header_with_injected_system_prompt(chatml_bytes):
    """Qwen2's template writes a default system message before a first user turn; the header is found
    by the sentinel, so the loss still starts at the user's content."""
    template = (
        "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
        "<|im_start|>system\nBe nice.<|im_end|>\n{% endif %}"
        "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer = build_tiny_tokenizer(template="chatml", vocab_size=1)
    tokenizer.chat_template = template
    full, spans = loss_char_spans(tokenizer, CONVERSATION[1:], train_on=("user", "assistant"))
    assert [full[s:e] for s, e in spans] == [
        "U1<|im_end|>",
        "A1<|im_end|>",
        "U2<|im_end|>",
        "A2<|im_end|>",
        "U3<|im_end|>",
        "A3<|im_end|>",
    ]


def test_non_prefix_template_is_refused(chatml_bytes):
    """A template that marks the last message renders history differently once a reply follows it."""
    tokenizer = build_tiny_tokenizer(template="chatml", vocab_size=1)
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "{% if loop.last %} (latest){% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(TurnwiseError, match="not a prefix"):
        label_tokens(tokenizer, CONVERSATION)


def test_unknown_role(chatml_bytes):
    with pytest.raises(ConfigError, match="cannot train on"):
        label_tokens(chatml_bytes, CONVERSATION, train_on=("system",))


def test_no_template_error_and_fixes(tmp_path):
    tokenizer = build_tiny_tokenizer(template="chatml", vocab_size=1)
    tokenizer.chat_template = None
    model_dir = tmp_path / "no-template"
    tokenizer.save_pretrained(model_dir)
    with pytest.raises(TurnwiseError, match=r"no-template.*no chat template.*--chat-template"):
        load_tokenizer(str(model_dir))

    inline = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert (
        render(load_tokenizer(str(model_dir), chat_template=inline), CONVERSATION[1:2], add_generation_prompt=False)
        == "[user] U1\n"
    )
    template_file = tmp_path / "template.jinja"
    template_file.write_text(inline, encoding="utf-8")
    assert load_tokenizer(str(model_dir), chat_template=str(template_file)).chat_template == inline
    with pytest.raises(ConfigError, match="neither a file"):
        load_tokenizer(str(model_dir), chat_template="missing.jinja")


def test_show_mask_plain(tiny_model_dir, tmp_path):
    from turnwise.cli.mask import show_mask

    data = tmp_path / "dialogues.jsonl"
    data.write_text(json.dumps({"id": "d1", "messages": CONVERSATION}) + "\n", encoding="utf-8")
    app = typer.Typer()
    app.command()(show_mask)
    result = CliRunner().invoke(app, [str(tiny_model_dir), str(data), "--plain", "--train-on", "user"])
    assert result.exit_code == 0, result.output
    assert "<|im_start|>user\n[[U1<|im_end|>]]\n<|im_start|>assistant\nA1<|im_end|>" in result.output
    assert "record d1:" in result.output and "carry loss (train on user)" in result.output
