"""Multi-turn SFT really trains a tiny model on a CPU: loss logged, every trainable weight moves, the output
reloads and generates; LoRA moves only the adapter; a crashed run resumes from its last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.config import load_config
from turnwise.errors import ConfigError
from turnwise.train.configs import SFTTrainConfig

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

NAMES = ("Alice", "Bob", "Carol", "David")
THINGS = ("the red box", "a small dog", "the old library")


def dialogue(i: int, turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for t in range(turns):
        name, thing = NAMES[(i + t) % 4], THINGS[(i * 2 + t) % 3]
        messages += [{"role": "user", "content": f"What did {name} do with {thing}?" if t == 0 else "And then?"},
                     {"role": "assistant", "content": f"{name} painted {thing} in {1990 + i + t}."}]
    return messages


@pytest.fixture(scope="module")
def dialogues(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sft-data") / "dialogues.jsonl"
    rows = [{"id": f"d{i}", "messages": dialogue(i, 1 + i % 4)} for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sft_config(data: Path, model: Path, output: Path, **overrides) -> SFTTrainConfig:
    settings = {"max_steps": 10, "learning_rate": 1e-3, "per_device_train_batch_size": 2, "logging_steps": 1,
                "gradient_checkpointing": False, "max_length": 256, "warmup_steps": 0,
                "trl_args": {"disable_tqdm": True}, **overrides}
    return load_config(SFTTrainConfig, overrides={"data": str(data), "model": str(model), "output": str(output),
                                                  **settings})


def snapshot(model) -> dict[str, tuple[bool, object]]:
    return {name: (p.requires_grad, p.detach().clone()) for name, p in model.named_parameters()}


def moved(before, model) -> tuple[set[str], set[str]]:
    """Names of the trainable parameters that did not move, and of the frozen ones that did."""
    after = dict(model.named_parameters())
    still = {n for n, (trainable, p) in before.items() if trainable and after[n].detach().equal(p)}
    drifted = {n for n, (trainable, p) in before.items() if not trainable and not after[n].detach().equal(p)}
    return still, drifted


def generates(output: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output)
    question = [{"role": "user", "content": "What did Bob do?"}]
    inputs = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_sft_trains_every_weight_and_reloads(dialogues, tiny_model_dir, tmp_path):
    from turnwise.train.common import run_trainer
    from turnwise.train.sft import build_sft_trainer

    cfg = sft_config(dialogues, tiny_model_dir, tmp_path / "sft")
    trainer, report, placement = build_sft_trainer(cfg)
    # float32 weights on a CPU and, under bf16 autocast, on a GPU too: every weight must be able to move.
    assert placement.dtype == "float32" and placement.bf16 == (not placement.use_cpu)
    before = snapshot(trainer.model)
    result = run_trainer(trainer, cfg, "sft", report, placement)

    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert len(losses) == 10 and all(loss > 0 for loss in losses)
    assert result.metrics["global_step"] == 10 and "train_loss" in result.metrics
    assert moved(before, trainer.model) == (set(), set())
    generates(result.output)

    card = (result.output / "README.md").read_text(encoding="utf-8")
    for text in ("## Data", "rows trained on | 16", "## Hyperparameters", "| learning_rate | 0.001 |",
                 "## Final metrics", "| train_loss |", str(dialogues)):
        assert text in card
    manifest = json.loads((result.output / "train.manifest.json").read_text(encoding="utf-8"))
    assert manifest["data"]["rows"] == 16 and manifest["runs"][-1]["status"] == "complete"
    assert load_config(SFTTrainConfig, result.output / "turnwise-config.yaml") == cfg


def test_sft_lora_moves_only_the_adapter(dialogues, tiny_model_dir, tmp_path):
    from turnwise.train.common import run_trainer
    from turnwise.train.sft import build_sft_trainer

    cfg = sft_config(dialogues, tiny_model_dir, tmp_path / "lora", lora=True, lora_r=4, learning_rate=1e-2)
    trainer, report, placement = build_sft_trainer(cfg)
    before = snapshot(trainer.model)
    trainable = {n for n, (t, _) in before.items() if t}
    assert trainable and all("lora_" in n for n in trainable)
    run_trainer(trainer, cfg, "sft", report, placement)
    assert moved(before, trainer.model) == (set(), set())
    assert (tmp_path / "lora" / "adapter_config.json").exists()
    generates(tmp_path / "lora")  # from_pretrained loads the base named in the adapter config


def test_sft_lora_merge_saves_a_plain_model_that_answers_as_the_adapter_did(dialogues, tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from turnwise.train.common import run_trainer
    from turnwise.train.sft import build_sft_trainer

    cfg = sft_config(dialogues, tiny_model_dir, tmp_path / "merged", lora=True, lora_r=4, learning_rate=1e-2,
                     lora_merge=True)
    trainer, report, placement = build_sft_trainer(cfg)
    run_trainer(trainer, cfg, "sft", report, placement)
    out = tmp_path / "merged"
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    ids = torch.tensor([[1, 5, 9, 13, 2, 7]])
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        adapted = trainer.model.eval()(ids.to(trainer.model.device)).logits.cpu()  # the adapter merged in place
        assert torch.allclose(merged(ids).logits, adapted, atol=1e-5)
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-3)  # it learned something
    generates(out)
    with pytest.raises(ConfigError, match="lora_merge needs lora"):
        sft_config(dialogues, tiny_model_dir, tmp_path / "x", lora_merge=True)


class Crash(Exception):
    pass


def test_resume_after_a_crash(dialogues, tiny_model_dir, tmp_path):
    from transformers import TrainerCallback

    from turnwise.train.sft import train_sft

    class CrashAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Crash("simulated crash")

    cfg = sft_config(dialogues, tiny_model_dir, tmp_path / "crash", max_steps=5, save_steps=2)
    with pytest.raises(Crash):
        train_sft(cfg, callbacks=[CrashAtStep3()])
    assert (tmp_path / "crash" / "checkpoint-2").is_dir()
    result = train_sft(cfg)
    assert result.resumed_from == str(tmp_path / "crash" / "checkpoint-2")
    assert result.metrics["global_step"] == 5
    assert [e["step"] for e in result.log_history if "loss" in e] == [1, 2, 3, 4, 5]  # restored, then 3-5 anew
    manifest = json.loads((tmp_path / "crash" / "train.manifest.json").read_text(encoding="utf-8"))
    assert [run["status"] for run in manifest["runs"]] == ["error", "complete"] and "error" not in manifest
    assert "checkpoint-2" in (tmp_path / "crash" / "README.md").read_text(encoding="utf-8")


def test_ask_through_the_cli(dialogues, tiny_llama3_dir, tmp_path, capsys):
    """`turnwise train ask` on a Llama-3-style template: user turns carry the loss; the summary is printed."""
    from turnwise.cli.main import main

    out = tmp_path / "ask"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "ask", "--data", str(dialogues), "--model", str(tiny_llama3_dir), "--output", str(out),
              "--max-steps", "3", "--set", "gradient_checkpointing=false", "--set", "max_length=250",
              "--set", "trl_args={disable_tqdm: true}"])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err
    assert "3 steps" in err and "read 16; 16 rows (" in err
    assert "rows shortened" in (out / "README.md").read_text(encoding="utf-8")
    assert json.loads((out / "train.manifest.json").read_text(encoding="utf-8"))["data"]["shortened"] > 0


def test_ask_trains_on_the_flipped_view_simulate_sends(dialogues, tiny_model_dir, tmp_path):
    """The ask model's loss tokens are exactly the original user turns (+ end-of-turn), seen as the assistant
    role after the simulator instruction and opener, the view `turnwise simulate --mode ask` queries."""
    from turnwise.simulate.prompts import simulator_prompt
    from turnwise.train.configs import AskTrainConfig
    from turnwise.train.sft import build_sft_trainer

    cfg = load_config(AskTrainConfig, overrides={"data": str(dialogues), "model": str(tiny_model_dir),
                                                 "output": str(tmp_path / "ask"), "max_length": 512})
    trainer, _, _ = build_sft_trainer(cfg)
    tokenizer = trainer.processing_class
    row = trainer.train_dataset[1]  # d1: two user turns
    loss_text = tokenizer.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100])
    assert loss_text == "What did Bob do with the old library?<|im_end|>And then?<|im_end|>"
    prompt = simulator_prompt("ask", "en")
    full = tokenizer.decode(row["input_ids"])
    assert full.index(prompt.system) < full.index(prompt.opener) < full.index("What did Bob do")
    assert full.index("What did Bob do") < full.index("Bob painted") < full.index("And then?")
