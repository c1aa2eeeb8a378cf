"""Shared-prefix DPO really trains a tiny model, step for step as TRL's plain path does, also under LoRA
with precomputed reference log-probs, and ``turnwise train dpo --shared-prefix`` turns it on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from turnwise.config import load_config
from turnwise.train.configs import DPOTrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytestmark = pytest.mark.integration

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def pair_record(i: int, turns: int) -> dict:
    prompt = [SYSTEM]
    for t in range(turns):
        prompt += [{"role": "user", "content": f"What did Carol paint in {1990 + i + t}?"},
                   {"role": "assistant", "content": f"Carol painted a small dog in {1990 + i + t}."}]
    prompt.append({"role": "user", "content": "Why does she like it?"})
    return {"id": f"p{i}", "prompt": prompt,
            "chosen": [{"role": "assistant", "content": "She likes the dog." * (1 + i % 3)}],
            "rejected": [{"role": "assistant", "content": "好的，我来回答。"}]}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prefix-dpo-data") / "pairs.jsonl"
    path.write_text("".join(json.dumps(pair_record(i, i % 4)) + "\n" for i in range(8)), encoding="utf-8")
    return path


def dpo_config(data: Path, model: Path, output: Path, **overrides) -> DPOTrainConfig:
    settings = {"max_steps": 3, "learning_rate": 1e-3, "per_device_train_batch_size": 4, "logging_steps": 1,
                "gradient_checkpointing": False, "max_length": 512, "warmup_steps": 0, "beta": 0.15,
                "sft_weight": 0.1, "trl_args": {"disable_tqdm": True}, **overrides}
    return load_config(DPOTrainConfig, overrides={"data": str(data), "model": str(model), "output": str(output),
                                                  **settings})


def test_trains_step_for_step_like_trl(pairs, tiny_model_dir, other_model_dir, tmp_path):
    """Three AdamW steps from the same weights on the same batches: the same logged loss and rewards at
    every step, and the same weights at the end."""
    from transformers import AutoModelForCausalLM

    from turnwise.train.dpo import train_dpo

    runs = {shared: train_dpo(dpo_config(pairs, tiny_model_dir, tmp_path / str(shared), shared_prefix=shared,
                                         ref_model=str(other_model_dir)))
            for shared in (False, True)}
    logged = {shared: [e for e in run.log_history if "loss" in e] for shared, run in runs.items()}
    assert len(logged[True]) == 3 and all(math.isfinite(e["loss"]) for e in logged[True])
    for plain, shared in zip(logged[False], logged[True], strict=True):
        for key in ("loss", "rewards/chosen", "rewards/margins", "logps/rejected", "num_tokens"):
            assert shared[key] == pytest.approx(plain[key], abs=1e-4), key
    weights = [dict(AutoModelForCausalLM.from_pretrained(run.output).named_parameters()) for run in runs.values()]
    assert max((weights[0][n] - p).abs().max().item() for n, p in weights[1].items()) < 1e-4
    saved = yaml.safe_load((runs[True].output / "turnwise-config.yaml").read_text(encoding="utf-8"))
    assert saved["shared_prefix"] is True


def test_lora_with_precomputed_reference(pairs, tiny_model_dir, tmp_path):
    """LoRA, no ref_model, reference log-probs precomputed: the precompute itself runs the shared layout
    (the forward is wrapped by then) and gives TRL's plain values; LoRA's B starts at 0, so the first
    step's rewards are 0; every adapter weight moves, no base weight does."""
    from turnwise.train.common import run_trainer
    from turnwise.train.dpo import build_dpo_trainer

    settings = {"lora": True, "lora_r": 4, "lora_dropout": 0.0, "learning_rate": 1e-2}
    cfg = dpo_config(pairs, tiny_model_dir, tmp_path / "lora", shared_prefix=True, precompute_ref_log_probs=True,
                     **settings)
    trainer, report, placement = build_dpo_trainer(cfg)
    assert trainer.ref_model is None and trainer.model.get_base_model()._turnwise_shared_prefix
    plain, _, _ = build_dpo_trainer(dpo_config(pairs, tiny_model_dir, tmp_path / "plain", **settings))
    data = plain.train_dataset
    chosen, rejected = plain.compute_ref_log_probs(plain.model, plain.data_collator([data[i] for i in range(8)]))
    assert torch.tensor(trainer.train_dataset["ref_chosen_logps"]) == pytest.approx(chosen, abs=1e-4)
    assert torch.tensor(trainer.train_dataset["ref_rejected_logps"]) == pytest.approx(rejected, abs=1e-4)

    before = {n: (p.requires_grad, p.detach().clone()) for n, p in trainer.model.named_parameters()}
    result = run_trainer(trainer, cfg, "dpo", report, placement)
    assert result.log_history[0]["rewards/chosen"] == 0 and result.log_history[0]["rewards/margins"] == 0
    after = dict(trainer.model.named_parameters())
    moved = {n for n, (_, p) in before.items() if not after[n].detach().equal(p)}
    assert moved == {n for n, (trainable, _) in before.items() if trainable}


@pytest.mark.parametrize(("switch", "expected"), [([], False), (["--shared-prefix"], True)])
def test_cli_switch_trains(pairs, tiny_model_dir, tmp_path, switch, expected):
    """TRL's plain path is the default; ``--shared-prefix`` switches the shared rows on. With gradient
    checkpointing (turnwise's default), the 4-D mask goes through the recomputed layers as well."""
    from typer.testing import CliRunner

    from turnwise.cli.main import app

    out = tmp_path / "cli"
    args = ["train", "dpo", "--data", str(pairs), "--model", str(tiny_model_dir), "--output", str(out),
            "--max-steps", "2", "--set", "logging_steps=1", *switch]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "turnwise-config.yaml").read_text(encoding="utf-8"))
    assert saved["shared_prefix"] is expected and saved["gradient_checkpointing"] is True
    manifest = json.loads((out / "train.manifest.json").read_text(encoding="utf-8"))
    assert manifest["runs"][-1]["status"] == "complete" and math.isfinite(manifest["metrics"]["train_loss"])
