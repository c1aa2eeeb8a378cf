"""One settings dataclass per training command, documented field by field.

These are turnwise's settings, not TRL's: the names that mean the same thing in TRL (``learning_rate``,
``max_steps``, ``beta``...) are kept, and :mod:`turnwise.train.common` maps them onto TRL's configs.
Anything TRL accepts that is not here goes through ``trl_args`` unchanged. This module imports nothing
heavy, so that ``turnwise train sft --help`` can list every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from turnwise.data.render import TRAINABLE_ROLES

Precision = Literal["auto", "bf16", "fp16", "fp32"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass
class TrainConfig:
    """Settings every trainer shares.

    Attributes:
        data: training records, JSONL or a JSON array, in any format `turnwise convert` reads.
        model: hub id or local directory of the model to start from.
        output: output directory: checkpoints, the final model, the resolved config, the manifest, the model card.
        data_format: input format (openai, sharegpt, trl-pref, ...); detected from the first record when null.
        skip_invalid: skip malformed records and count them in the manifest, instead of stopping at the first.
        max_rows: train on at most this many rows of the file (0 = all), for smoke runs.
        chat_template: a chat template (Jinja file or inline) that replaces the tokenizer's own.
        trust_remote_code: run model and tokenizer code from the model repository.
        max_length: most tokens in one training sequence. A longer conversation loses its oldest user/assistant
            pairs first (the system message and the last turn stay); one that does not fit even then is dropped.
            Both are counted, by reason, in the manifest and the summary.
        learning_rate: peak learning rate of AdamW.
        num_train_epochs: passes over the data (ignored when max_steps > 0).
        max_steps: optimizer steps to run; -1 lets num_train_epochs decide.
        per_device_train_batch_size: rows per device per forward pass.
        gradient_accumulation_steps: forward passes per optimizer step.
        lr_scheduler_type: learning-rate schedule (linear, cosine, constant, constant_with_warmup, ...).
        warmup_steps: steps of linear learning-rate warmup; below 1, a fraction of all steps.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping norm.
        seed: seed for data order, adapter initialisation and dropout.
        logging_steps: log the loss every this many steps.
        save_steps: write a checkpoint every this many steps (what a resume starts from).
        save_total_limit: keep at most this many checkpoints (null = all).
        gradient_checkpointing: recompute activations in the backward pass to save memory (about 20% slower).
        precision: auto, bf16, fp16 or fp32. auto = bf16 on a GPU that supports it, fp16 on an older GPU, fp32
            on a CPU.
        dtype: dtype the weights are loaded in: auto (bfloat16 for LoRA/QLoRA under bf16 precision, float32
            otherwise: the optimizer updates weights in their own dtype, and bfloat16 rounds small updates
            away), bfloat16, float16 or float32.
        device: auto (the GPU when there is one, else the CPU), cpu, or cuda.
        attn_implementation: attention kernel (sdpa, eager, flash_attention_2); null = the model's default.
        resume: continue from the last checkpoint in output when there is one.
        lora: train a LoRA adapter (PEFT) instead of every weight.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by lora_alpha / lora_r).
        lora_dropout: dropout on the LoRA path.
        lora_target_modules: modules that get an adapter; [all-linear] = every linear layer but the output one.
        qlora: load the base model in 4-bit NF4 (bitsandbytes, CUDA only) under the LoRA adapter; implies lora.
        lora_merge: save the base with the trained adapter merged into its weights (a plain model: a later stage
            can train it on with a new adapter, and servers load it without PEFT) instead of the adapter alone.
        report_to: experiment trackers to log to (wandb, tensorboard, trackio, ...); [] = none.
        trl_args: extra TRL/transformers TrainingArguments passed through unchanged, e.g. {dataloader_num_workers: 2}.
    """

    data: str
    model: str
    output: str
    data_format: str | None = None
    skip_invalid: bool = False
    max_rows: int = 0
    chat_template: str | None = None
    trust_remote_code: bool = False
    max_length: int = 2048
    learning_rate: float = 2e-5
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    gradient_checkpointing: bool = True
    precision: Precision = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: Device = "auto"
    attn_implementation: str | None = None
    resume: bool = True
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    qlora: bool = False
    lora_merge: bool = False
    report_to: list[str] = field(default_factory=list)
    trl_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")
        if self.qlora:
            self.lora = True
        if self.lora_merge and (self.qlora or not self.lora):
            raise ValueError("lora_merge needs lora (and not qlora: a 4-bit base cannot take the merged weights)")


@dataclass
class SFTTrainConfig(TrainConfig):
    """``turnwise train sft``: multi-turn SFT with the loss on every assistant turn, all turns kept.

    Attributes:
        train_on: roles whose messages carry the loss (assistant for an assistant model, user for a user
            simulator); labels are cut from message boundaries, so no {% generation %} markers are needed.
        loss_turns: ``all`` (every message of those roles) or ``last`` (the last one alone: on preference pairs,
            the chosen answer, exactly what DPO's SFT term trains on; the matched baseline for DPO).
    """

    train_on: list[str] = field(default_factory=lambda: ["assistant"])
    loss_turns: str = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = set(self.train_on) - set(TRAINABLE_ROLES)
        if unknown or not self.train_on:
            raise ValueError(f"train_on must be a non-empty subset of {list(TRAINABLE_ROLES)}, got {self.train_on}")
        if self.loss_turns not in ("all", "last"):
            raise ValueError(f"loss_turns must be 'all' or 'last', got {self.loss_turns!r}")


@dataclass
class AskTrainConfig(SFTTrainConfig):
    """``turnwise train ask``: a user simulator (Parrot-Ask), trained on the user turns of real dialogues.

    Training runs on the *flipped* view that ``turnwise simulate`` queries (:mod:`turnwise.simulate.prompts`):
    the simulator instruction as system message, a fixed opener, then the original user turns as assistant
    messages and the original answers as user messages. The loss sits on those flipped assistant messages,
    that is on the original user turns and their end-of-turn token, and any chat backend can later ask the
    model for the next user turn. Use the same prompt settings when simulating.

    Attributes:
        simulator_mode: which shipped simulator prompt: ``ask`` (an ask model) or ``prompted``.
        lang: prompt language, ``en``, ``zh``, or ``auto`` (``zh`` for dialogues that open in Chinese).
        end_marker: appended as a last user turn after the final answer, so the model learns when a user
            stops (e.g. ``[END]``); null = off.
        system: replaces the shipped simulator instruction (text or a file); ``""`` for none.
        opener: replaces the shipped opener message (text or a file).
        min_user_turns: dialogues with fewer user turns are skipped.
        template_dir: a folder of prompt templates searched before the shipped ones (``simulate/ask.en.jinja``);
            simulate with the same one.
    """

    simulator_mode: str = "ask"
    lang: str = "auto"
    end_marker: str | None = None
    system: str | None = None
    opener: str | None = None
    min_user_turns: int = 1
    template_dir: str | None = None

    def ask_data(self) -> Any:
        """The :class:`turnwise.simulate.ask_data.AskDataConfig` these settings describe."""
        from turnwise.simulate.ask_data import AskDataConfig

        return AskDataConfig(mode=self.simulator_mode, lang=self.lang, end_marker=self.end_marker,
                             system=self.system, opener=self.opener, min_user_turns=self.min_user_turns,
                             template_dir=self.template_dir)


@dataclass
class DPOTrainConfig(TrainConfig):
    """``turnwise train dpo``: DPO on multi-turn preference pairs, with the SFT term on the chosen answer.

    The loss is ``-log σ(β·Δ) + sft_weight · NLL(chosen)``, TRL's ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1, sft_weight]``, where NLL is the mean negative log-likelihood per chosen token.

    Attributes:
        learning_rate: peak learning rate of AdamW (DPO wants a small one).
        beta: β, how far the policy may move from the reference (LongReward used 0.15).
        sft_weight: λ, the weight of the SFT term on the chosen answer (LongReward used 0.1); 0 = plain DPO.
        ref_model: hub id or directory of the reference model; null = a frozen copy of the starting model, or,
            with LoRA, the same model with its adapter disabled.
        precompute_ref_log_probs: compute the reference log-probs once before training, so the reference
            model need not stay in memory.
        shared_prefix: run each pair as one sequence, its history once and both answers after it under a mask
            that hides one answer from the other, instead of TRL's two sequences per pair: the same loss and
            gradients, about 1.6x faster on a CPU once the history is 4x an answer, and 26-36% less peak GPU
            memory for a 0.5B model on an H100, where it was 0.5-0.99x as fast (docs/training.md). Needs
            attn_implementation sdpa or eager (else TRL's path is used, with a warning); false (the default) =
            TRL's plain DPOTrainer.
        prefix_attention: how a shared row keeps the two answers apart: ``segments`` (the default) gathers each
            answer's history + answer into a plain causal sequence for the attention alone, so no mask is built
            (O(S) index memory) and the kernel runs unmasked; ``mask`` builds the dense ``(rows, 1, S, S)`` mask.
            Both give TRL's loss and gradients (tests/unit/test_prefix_dpo.py).
    """

    learning_rate: float = 1e-6
    beta: float = 0.1
    sft_weight: float = 0.1
    ref_model: str | None = None
    precompute_ref_log_probs: bool = False
    shared_prefix: bool = False
    prefix_attention: str = "segments"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ValueError(f"beta must be positive, got {self.beta}")
        if self.sft_weight < 0:
            raise ValueError(f"sft_weight must be 0 or more, got {self.sft_weight}")
        if self.prefix_attention not in ("segments", "mask"):
            raise ValueError(f"prefix_attention must be segments or mask, got {self.prefix_attention!r}")


@dataclass
class RMTrainConfig(TrainConfig):
    """``turnwise train rm``: a reward model (a scalar head on the model) from preference pairs, TRL's RewardTrainer.

    Attributes:
        heldout_fraction: share of the pairs held out of training (a seeded draw of prompts: all pairs of a history
            on one side) and scored after it: the held-out pair accuracy (chosen scored above rejected) in the model
            card and the manifest. 0 = none held out.
        center_rewards_coefficient: TRL's penalty on the squared mean reward (0.01 recommended by its docs), which
            keeps rewards near zero; null = off.
    """

    learning_rate: float = 1e-5
    heldout_fraction: float = 0.1
    center_rewards_coefficient: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}")
