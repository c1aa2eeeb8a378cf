"""Device/precision resolution, TRL arguments, LoRA, resume lookup, shipped recipes and accelerate configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from turnwise.cli.main import app
from turnwise.config import field_docs, load_config
from turnwise.errors import ConfigError
from turnwise.train.common import (
    Placement,
    accelerate_config,
    last_checkpoint,
    peft_config,
    quantization_config,
    resolve_placement,
    trl_args,
)
from turnwise.train.configs import AskTrainConfig, DPOTrainConfig, RMTrainConfig, SFTTrainConfig
from turnwise.train.dpo import dpo_loss_args

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("train-*.yaml"))
REQUIRED = {"data": "d.jsonl", "model": "m", "output": "out"}
CPU = Placement(use_cpu=True, bf16=False, fp16=False, dtype="float32")


def cfg(cls=SFTTrainConfig, **kw):
    return cls(**{**REQUIRED, **kw})


@pytest.fixture
def gpu(monkeypatch):
    """Pretend a CUDA GPU is there; the test sets whether it does bf16."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return lambda bf16: monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.fixture
def no_gpu(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_when_no_gpu(no_gpu):
    assert resolve_placement(cfg()) == CPU
    assert resolve_placement(cfg(precision="bf16")) == Placement(True, True, False, "float32")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_placement(cfg(device="cuda"))
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        resolve_placement(cfg(precision="fp16"))
    with pytest.raises(ConfigError, match="qlora needs a CUDA GPU"):
        quantization_config(cfg(qlora=True), CPU)


def test_gpu_precision(gpu):
    gpu(True)
    # Every weight trained: float32 weights under bf16 autocast; an adapter on a bfloat16 base.
    assert resolve_placement(cfg()) == Placement(False, True, False, "float32")
    assert resolve_placement(cfg(lora=True)) == Placement(False, True, False, "bfloat16")
    assert resolve_placement(cfg(dtype="bfloat16")).dtype == "bfloat16"
    assert resolve_placement(cfg(device="cpu")) == CPU
    gpu(False)
    assert resolve_placement(cfg()) == Placement(False, False, True, "float32")
    with pytest.raises(ConfigError, match="bf16 is not supported"):
        resolve_placement(cfg(precision="bf16"))


def test_trl_configs_accept_the_cpu_arguments(no_gpu):
    """TRL's configs default to bf16 and refuse it on a CPU without use_cpu; the resolved arguments pass."""
    trl = pytest.importorskip("trl")
    sft = trl.SFTConfig(**trl_args(cfg(max_length=128, trl_args={"disable_tqdm": True}), CPU))
    assert (sft.use_cpu, sft.bf16, sft.max_length, sft.disable_tqdm) == (True, False, 128, True)
    assert sft.model_init_kwargs["dtype"] == "float32"
    dpo_cfg = cfg(DPOTrainConfig, beta=0.15, sft_weight=0.1)
    dpo = trl.DPOConfig(**trl_args(dpo_cfg, CPU), **dpo_loss_args(dpo_cfg))
    assert (dpo.beta, dpo.loss_type, dpo.loss_weights) == (0.15, ["sigmoid", "sft"], [1.0, 0.1])
    assert dpo_loss_args(cfg(DPOTrainConfig, sft_weight=0))["loss_type"] == ["sigmoid"]


def test_lora_config():
    pytest.importorskip("peft")
    assert peft_config(cfg()) is None
    lora = peft_config(cfg(lora=True, lora_r=4))
    assert (lora.r, lora.target_modules, lora.task_type) == (4, "all-linear", "CAUSAL_LM")
    assert peft_config(cfg(lora=True, lora_target_modules=["q_proj", "v_proj"])).target_modules == {"q_proj", "v_proj"}
    assert cfg(qlora=True).lora is True


def test_last_checkpoint(tmp_path):
    assert last_checkpoint(tmp_path / "absent") is None
    assert last_checkpoint(tmp_path) is None
    for step in (2, 10, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_every_field_is_documented():
    for cls in (SFTTrainConfig, AskTrainConfig, DPOTrainConfig):
        assert all(field_docs(cls).values()), cls
    assert AskTrainConfig(**REQUIRED).train_on == ["assistant"]  # on the flipped view: the user turns
    with pytest.raises(ValueError, match="train_on"):
        cfg(train_on=["system"])


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_load_through_the_real_parser(recipe):
    cls = DPOTrainConfig if "dpo" in recipe.name else AskTrainConfig if "ask" in recipe.name else SFTTrainConfig
    loaded = load_config(cls, recipe, overrides=REQUIRED)
    assert loaded.output == "out"
    header = [line for line in recipe.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    command = next(line for line in header if "turnwise train" in line).strip("# ").split()
    assert command[:4] == ["turnwise", "train", cls.__name__.removesuffix("TrainConfig").lower(), "--config"]


def test_recipe_names_cover_sft_and_dpo():
    assert {"train-sft.yaml", "train-dpo.yaml"} <= {p.name for p in RECIPES}
    dpo = load_config(DPOTrainConfig, REPO / "recipes" / "train-dpo.yaml", overrides=REQUIRED)
    assert (dpo.beta, dpo.sft_weight) == (0.15, 0.1)  # LongReward's values


@pytest.mark.parametrize(("name", "kind", "precision"),
                         [("ddp", "MULTI_GPU", "no"), ("zero3", "DEEPSPEED", "bf16"), ("fsdp", "FSDP", "bf16")])
def test_accelerate_configs_ship(name, kind, precision):
    data = yaml.safe_load(accelerate_config(name).read_text(encoding="utf-8"))
    assert data["distributed_type"] == kind and data["mixed_precision"] == precision
    with pytest.raises(ConfigError, match="shipped: ddp, zero3, fsdp"):
        accelerate_config("zero2")


def test_cli_help_lists_every_setting_and_reports_bad_keys(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "dpo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("--sft-weight", "--precompute-ref-log-probs", "--max-length", "--lora-target-modules",
                 "--accelerate", "--num-processes", "--only", "--data", "--model", "--output"):
        assert name in result.output
    result = runner.invoke(app, ["train", "accelerate-config", "zero3"])
    assert result.output.strip().endswith("zero3.yaml")
    from turnwise.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "sft", "--data", "d", "--model", "m", "--output", str(tmp_path), "--set", "lr=1"])
    assert exit_info.value.code == 2


def test_docs_name_every_setting():
    docs = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    from turnwise.online.grpo import OnlineTrainConfig

    for cls in (SFTTrainConfig, DPOTrainConfig, RMTrainConfig, OnlineTrainConfig):
        missing = [name for name in field_docs(cls) if f"`{name}`" not in docs]
        assert not missing, f"docs/training.md does not mention {missing}"


def test_zero3_config_passes_deepspeeds_own_parser(tmp_path):
    """The shipped ZeRO-3 config, turned into a DeepSpeed config the way accelerate and the HF Trainer do it,
    is accepted by DeepSpeed's own parser (where DeepSpeed installs: ``pip install deepspeed``)."""
    pytest.importorskip("deepspeed")
    from accelerate.utils import DeepSpeedPlugin
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    fields = yaml.safe_load(accelerate_config("zero3").read_text(encoding="utf-8"))["deepspeed_config"]
    plugin = DeepSpeedPlugin(**{k: v for k, v in fields.items() if k != "deepspeed_multinode_launcher"})
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=4,
                             use_cpu=True, report_to=[])
    hf = HfTrainerDeepSpeedConfig(plugin.deepspeed_config)
    hf.trainer_config_process(args)
    hf.trainer_config_finalize(args, None, 100)
    parsed = DeepSpeedConfig(hf.config)
    assert parsed.zero_optimization_stage == 3
    assert parsed.train_micro_batch_size_per_gpu == 2 and parsed.gradient_accumulation_steps == 4
    assert parsed.zero_config.gather_16bit_weights_on_model_save  # the output loads with from_pretrained


@pytest.mark.parametrize(("env", "kind", "warned"), [
    ("ACCELERATE_USE_FSDP", "MULTI_CPU", True), ("ACCELERATE_USE_DEEPSPEED", "MULTI_CPU", True),
    ("ACCELERATE_USE_FSDP", "FSDP", False), (None, "MULTI_CPU", False)])
def test_a_sharding_config_that_runs_as_data_parallel_is_said(monkeypatch, caplog, env, kind, warned):
    from enum import Enum
    from types import SimpleNamespace

    from turnwise.train.common import distributed

    for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(name, raising=False)
    if env:
        monkeypatch.setenv(env, "true")
    state = SimpleNamespace(distributed_type=Enum("T", {kind: kind})[kind], num_processes=2)
    trainer = SimpleNamespace(accelerator=SimpleNamespace(state=state), is_world_process_zero=lambda: True)
    with caplog.at_level("WARNING", logger="turnwise.train.common"):
        assert distributed(trainer) == {"type": kind, "processes": 2}
    assert ("plain data parallel" in caplog.text) is warned
