"""What the SFT and DPO trainers share: device and precision, LoRA/QLoRA, TRL arguments, resume, run.

Device and precision are settled here rather than left to TRL, whose configs default to ``bf16=True`` and
refuse it on a machine with no GPU unless ``use_cpu`` is set: with ``device: auto`` a machine without
CUDA trains on the CPU in fp32, a GPU in bf16 where it has it and fp16 otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from turnwise.config import to_dict
from turnwise.errors import ConfigError, require
from turnwise.train.card import CONFIG_FILE, TrainResult, write_config, write_model_card
from turnwise.train.configs import TrainConfig
from turnwise.train.data import DataReport

log = logging.getLogger(__name__)

MANIFEST_STEM = "train"  # the manifest is OUTPUT/train.manifest.json
ACCELERATE_CONFIGS = ("ddp", "zero3", "fsdp")


@dataclass(frozen=True)
class Placement:
    """Where and in what precision training runs.

    Attributes:
        use_cpu: train on the CPU (TRL's ``use_cpu``).
        bf16: bf16 mixed precision.
        fp16: fp16 mixed precision.
        dtype: the dtype the weights are loaded in (``float32``, ``bfloat16``, ``float16``).
    """

    use_cpu: bool
    bf16: bool
    fp16: bool
    dtype: str

    def describe(self) -> str:
        precision = "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"
        return f"{'cpu' if self.use_cpu else 'gpu'}, {precision} precision, {self.dtype} weights"


def resolve_placement(cfg: TrainConfig) -> Placement:
    """Settle ``device``, ``precision`` and ``dtype`` against the machine this runs on.

    Raises:
        ConfigError: a GPU was asked for and there is none, or a precision the device cannot do.
    """
    torch = require("torch", "train")
    has_cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not has_cuda:
        raise ConfigError("device: cuda was asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    use_cpu = cfg.device == "cpu" or not has_cuda
    precision = cfg.precision
    if precision == "auto":
        precision = "fp32" if use_cpu else "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and use_cpu:
        raise ConfigError("precision: fp16 needs a GPU; use fp32 (or bf16) on a CPU")
    if precision == "bf16" and not use_cpu and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision: bf16 is not supported by this GPU; use fp16 or auto")
    dtype = cfg.dtype if cfg.dtype != "auto" else auto_dtype(cfg, precision)
    return Placement(use_cpu=use_cpu, bf16=precision == "bf16", fp16=precision == "fp16", dtype=dtype)


def auto_dtype(cfg: TrainConfig, precision: str) -> str:
    """``dtype: auto``: bfloat16 weights for an adapter on a frozen base under bf16, float32 for every weight
    trained. The trainer's optimizer updates the weights in their own dtype, keeping no float32 copy: in
    bfloat16 an update smaller than about 1/256 of a weight is rounded away (at DPO's learning rate of 1e-6,
    nearly all of them), so full training keeps float32 weights and runs bf16 as autocast."""
    return "bfloat16" if precision == "bf16" and (cfg.lora or cfg.qlora) else "float32"


def model_init_kwargs(cfg: TrainConfig, placement: Placement) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained`` of the trained model (and TRL's reference copy)."""
    kwargs: dict[str, Any] = {"dtype": placement.dtype, "trust_remote_code": cfg.trust_remote_code}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    return kwargs


def peft_config(cfg: TrainConfig) -> Any:
    """A PEFT ``LoraConfig`` when ``lora`` is set, else None."""
    if not cfg.lora:
        return None
    peft = require("peft", "train")
    targets: str | list[str] = cfg.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"  # PEFT's shorthand is a string, not a module name
    return peft.LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def quantization_config(cfg: TrainConfig, placement: Placement) -> Any:
    """A 4-bit NF4 ``BitsAndBytesConfig`` for QLoRA, else None.

    Raises:
        ConfigError: QLoRA on a CPU, or bitsandbytes is not installed.
    """
    if not cfg.qlora:
        return None
    if placement.use_cpu:
        raise ConfigError("qlora needs a CUDA GPU (bitsandbytes 4-bit); use lora on a CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError("qlora needs bitsandbytes: pip install bitsandbytes") from exc
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if placement.bf16 else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=compute,  # lets FSDP/ZeRO-3 shard the quantized weights like the others
    )


def trl_args(cfg: TrainConfig, placement: Placement) -> dict[str, Any]:
    """The arguments of TRL's ``SFTConfig``/``DPOConfig`` that both trainers set the same way."""
    args = {
        "output_dir": cfg.output,
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "warmup_steps": cfg.warmup_steps,
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "seed": cfg.seed,
        "logging_steps": cfg.logging_steps,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit,
        **_checkpointing(cfg.gradient_checkpointing),
        "use_cpu": placement.use_cpu,
        "bf16": placement.bf16,
        "fp16": placement.fp16,
        "report_to": list(cfg.report_to) or "none",
        "model_init_kwargs": model_init_kwargs(cfg, placement),
        # Rows are already within max_length (turnwise.train.data); TRL's own cut-off is the same number, so
        # it never triggers, which the trainers check once TRL has prepared the data.
        "max_length": cfg.max_length,
    }
    args.update(cfg.trl_args)
    return args


def _checkpointing(enabled: bool) -> dict[str, bool]:
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing and warns on the old name,
    # which TRL's configs always set; the new name, where it exists, wins and silences that.
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


def last_checkpoint(output: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder in ``output``, or None."""
    if not os.path.isdir(output):
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output))


def accelerate_config(name: str) -> Path:
    """Path of a shipped ``accelerate`` config: ``ddp`` (data parallel, GPUs or CPU processes), ``zero3``
    (DeepSpeed ZeRO-3) or ``fsdp`` (FSDP2)."""
    if name not in ACCELERATE_CONFIGS:
        raise ConfigError(f"unknown accelerate config {name!r}; shipped: {', '.join(ACCELERATE_CONFIGS)}")
    return Path(str(resources.files("turnwise") / "configs" / "accelerate" / f"{name}.yaml"))


def _check_same_data(cfg: TrainConfig, report: DataReport, resumed_from: str | None) -> None:
    path = Path(cfg.output) / f"{MANIFEST_STEM}.manifest.json"
    if resumed_from is None or not path.exists():
        return
    previous = json.loads(path.read_text(encoding="utf-8")).get("data", {}).get("sha256")
    if previous and previous != report.sha256:
        log.warning("%s changed since the run being resumed (sha256 %s… → %s…); the data order will differ",
                    cfg.data, previous[:12], report.sha256[:12])


def final_metrics(train_metrics: dict[str, Any], log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """TRL's end-of-training metrics, plus the last logged value of every other metric."""
    metrics: dict[str, Any] = {}
    for entry in log_history:
        metrics.update({k: v for k, v in entry.items() if not k.startswith("train_")})
    metrics.update(train_metrics)
    return metrics


def save_merged(trainer: Any, output: str | Path) -> None:
    """Save the trained LoRA adapter merged into its base: a plain model folder (weights, config, tokenizer)."""
    merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
    if trainer.is_world_process_zero():
        merged.save_pretrained(output, safe_serialization=True)
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(output)


def distributed(trainer: Any) -> dict[str, Any]:
    """How many processes train and how (``NO``, ``MULTI_CPU``, ``MULTI_GPU``, ``FSDP``, ``DEEPSPEED``).

    An accelerate config asking for FSDP or DeepSpeed on a machine where accelerate does not enable them
    (FSDP needs GPUs or similar accelerators; DeepSpeed is never used on the CPU) trains as plain data
    parallel: every process holds the whole model. That is said once, as a warning, rather than left silent.
    """
    state = trainer.accelerator.state
    kind = getattr(state.distributed_type, "value", str(state.distributed_type))
    for env, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
        if os.environ.get(env, "false").lower() == "true" and kind != name and trainer.is_world_process_zero():
            log.warning("the accelerate config asks for %s, but accelerate does not enable it here (%s, %d "
                        "processes): this run is plain data parallel, each process holding the whole model",
                        name, kind, state.num_processes)
    return {"type": kind, "processes": state.num_processes}


def run_trainer(trainer: Any, cfg: TrainConfig, kind: str, report: DataReport, placement: Placement, *,
                evaluate: Callable[[Any], dict[str, Any]] | None = None) -> TrainResult:
    """Train (resuming from the last checkpoint when there is one), save, and write the run's records.

    The manifest (``OUTPUT/train.manifest.json``) and the resolved config are written before the first
    step, so a crashed run leaves them behind; the model card comes at the end, with the metrics
    ``evaluate(trainer)`` adds after training (on the main process).
    """
    from turnwise.records import RunManifest

    resumed_from = last_checkpoint(cfg.output) if cfg.resume else None
    main = trainer.is_world_process_zero()
    manifest = None
    parallel = distributed(trainer)
    if main:
        _check_same_data(cfg, report, resumed_from)
        manifest = RunManifest(Path(cfg.output) / MANIFEST_STEM, f"train-{kind}", to_dict(cfg))
        manifest.data.update(output=cfg.output, data=report.to_dict(), placement=placement.describe(),
                             distributed=parallel, config_file=CONFIG_FILE)
        manifest.save()
        write_config(cfg)
    if resumed_from:
        log.info("resuming from %s", resumed_from)
    try:
        output = trainer.train(resume_from_checkpoint=resumed_from)
    except BaseException as exc:
        if manifest is not None:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            manifest.finish(status, report.to_dict(), {}, error=repr(exc)[:500], resumed_from=resumed_from)
        raise
    if cfg.lora_merge:
        save_merged(trainer, cfg.output)
    else:
        trainer.save_model(cfg.output)
    metrics = final_metrics(dict(output.metrics), trainer.state.log_history)
    metrics["global_step"] = trainer.state.global_step
    if evaluate is not None and main:
        metrics.update(evaluate(trainer))
    result = TrainResult(kind, Path(cfg.output), report, metrics, resumed_from, list(trainer.state.log_history))
    if main:
        write_model_card(result, cfg, placement.describe())
        manifest.data.pop("error", None)  # left by an earlier run that crashed; this one did not
        manifest.finish("complete", report.to_dict(), {}, metrics=metrics, resumed_from=resumed_from,
                        log_history=result.log_history)
    return result
