"""The tiny offline model: it loads through the Auto classes, renders chats, and is deterministic."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from turnwise.errors import ConfigError
from turnwise.quickstart.tiny_model import build_tiny_model, build_tiny_tokenizer, default_corpus

MESSAGES = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def test_loads_offline_with_auto_classes(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {path.name for path in tiny_model_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.vocab_size == len(tokenizer) == 512
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (2, 64)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    im_end, endoftext = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert model.generation_config.eos_token_id == [im_end, endoftext]
    assert model.generation_config.pad_token_id == endoftext
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"


def test_llama3_template(tmp_path):
    from transformers import AutoTokenizer, GenerationConfig

    model_dir = build_tiny_model(tmp_path / "llama3", template="llama3", vocab_size=300)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    for token in ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert eot in GenerationConfig.from_pretrained(model_dir).eos_token_id
    assert len(tokenizer) == 300


def test_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    first = load_file(build_tiny_model(tmp_path / "a", seed=3) / "model.safetensors")
    again = load_file(build_tiny_model(tmp_path / "b", seed=3) / "model.safetensors")
    other = load_file(build_tiny_model(tmp_path / "c", seed=4) / "model.safetensors")
    assert all(first[name].equal(again[name]) for name in first)
    assert not all(first[name].equal(other[name]) for name in first)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_corpus_and_custom_texts():
    corpus = default_corpus()
    assert any("它" in text for text in corpus) and any("Alice" in text for text in corpus)
    tokenizer = build_tiny_tokenizer(texts=["banana bread"] * 50, vocab_size=280)
    assert len(tokenizer("banana", add_special_tokens=False)["input_ids"]) == 1


def test_bad_settings():
    with pytest.raises(ConfigError, match="unknown tiny-model template"):
        build_tiny_tokenizer(template="vicuna")
    with pytest.raises(ConfigError, match="must divide"):
        build_tiny_model("/nonexistent/never-written", hidden_size=60, num_heads=8)


def test_cli(tmp_path):
    from turnwise.cli.tiny import tiny_model

    app = typer.Typer()
    app.command()(tiny_model)
    out = tmp_path / "cli-model"
    result = CliRunner().invoke(app, [str(out), "--layers", "1", "--hidden", "32", "--template", "llama3"])
    assert result.exit_code == 0, result.output
    assert f"saved to {out}" in result.output
    assert (out / "chat_template.jinja").read_text().startswith("{%- for message in messages %}")
