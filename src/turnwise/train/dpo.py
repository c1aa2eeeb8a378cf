"""DPO on multi-turn preference pairs, with the SFT term, through TRL's DPOTrainer.

    turnwise train dpo --data pairs.jsonl --model runs/sft --output runs/dpo --set beta=0.15
    python -m turnwise.train.dpo --config recipes/train-dpo.yaml       # the entry `accelerate launch -m` runs

Rows are TRL's conversational preference layout: ``prompt`` is the multi-turn history ending on a user
turn, ``chosen`` and ``rejected`` are one assistant message each. The loss (TRL's
``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, λ]``) for a pair is

    Δ    = (log π(c|x) − log π_ref(c|x)) − (log π(r|x) − log π_ref(r|x))
    loss = −log σ(β·Δ) + λ · NLL(c),   NLL(c) = −(1/|c|) Σ_t log π(c_t | x, c_<t)

with log π(·|x) summed over the answer's tokens (its end-of-turn token included) and, over a batch, the
first term averaged over pairs and NLL averaged over all chosen tokens of the batch (TRL 1.16,
``DPOTrainer._compute_loss``). LongReward used β = 0.15 and λ = 0.1.

The reference π_ref is a frozen copy of the starting model; with ``lora`` it is the same model with the
adapter disabled (TRL does that when no reference is given to a PEFT model); ``ref_model`` names another.
TRL would drop a pair whose prompt alone reaches ``max_length`` and cut the others from the end, so
turnwise first drops the oldest turns of the prompt until prompt + the longer answer fits, and drops the
pair only when even the system message and the last user turn do not (:func:`turnwise.train.data.dpo_rows`).

With ``shared_prefix: true`` each pair runs as one sequence, the history once and both answers after it, kept
apart by the segment attention (``prefix_attention: segments``, no dense mask) or a dense mask (``mask``),
through a DPOTrainer subclass whose loss code is TRL's (:mod:`turnwise.train.prefix_dpo`); ``shared_prefix:
false`` (the default) uses TRL's DPOTrainer as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from turnwise.data.render import load_tokenizer
from turnwise.errors import ConfigError, TurnwiseError, require
from turnwise.models.embedded import resolve
from turnwise.train.common import (
    Placement,
    TrainResult,
    model_init_kwargs,
    peft_config,
    quantization_config,
    resolve_placement,
    run_trainer,
    trl_args,
)
from turnwise.train.configs import DPOTrainConfig
from turnwise.train.data import DataReport, dpo_rows, read_items

log = logging.getLogger(__name__)


def dpo_loss_args(cfg: DPOTrainConfig) -> dict[str, Any]:
    """TRL's loss settings: sigmoid DPO plus, unless ``sft_weight`` is 0, the SFT term weighted λ."""
    if cfg.sft_weight == 0:
        return {"beta": cfg.beta, "loss_type": ["sigmoid"], "loss_weights": [1.0]}
    return {"beta": cfg.beta, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, cfg.sft_weight]}


def _reference(cfg: DPOTrainConfig, placement: Placement) -> Any:
    if not cfg.ref_model:
        return None  # TRL: a frozen copy of the model, or the adapter-disabled model under LoRA
    transformers = require("transformers", "train")
    kwargs = model_init_kwargs(cfg, placement)
    quantization = quantization_config(cfg, placement)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    return transformers.AutoModelForCausalLM.from_pretrained(resolve(cfg.ref_model), **kwargs)


def build_dpo_trainer(cfg: DPOTrainConfig, *, callbacks: list[Any] | None = None) -> tuple[Any, DataReport, Placement]:
    """Read and fit the pairs, then build TRL's DPOTrainer over them (nothing is trained yet).

    Raises:
        ConfigError: the file holds conversations, not pairs; no pair is left; a setting the machine cannot honour.
        TurnwiseError: TRL dropped or cut a pair (its token count and turnwise's disagree).
    """
    trl, datasets = require("trl", "train"), require("datasets", "train")
    placement = resolve_placement(cfg)
    tokenizer = load_tokenizer(cfg.model, chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code)
    items, report = read_items(cfg.data, cfg.data_format, skip_invalid=cfg.skip_invalid, max_rows=cfg.max_rows)
    rows = dpo_rows(items, tokenizer, report, max_length=cfg.max_length)
    if not rows:
        raise ConfigError(f"{cfg.data}: no pair left to train on ({report.summary()})")
    log.info("dpo data: %s", report.summary())
    args = trl.DPOConfig(
        **trl_args(cfg, placement), **dpo_loss_args(cfg), precompute_ref_log_probs=cfg.precompute_ref_log_probs
    )
    trainer_class = _trainer_class(cfg)
    extra = {} if trainer_class is trl.DPOTrainer else {"attention": cfg.prefix_attention}
    trainer = trainer_class(
        **extra,
        model=resolve(cfg.model),
        ref_model=_reference(cfg, placement),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        quantization_config=quantization_config(cfg, placement),
        callbacks=callbacks,
    )
    check_pairs_intact(trainer.train_dataset, len(rows), cfg.max_length)
    return trainer, report, placement


def _trainer_class(cfg: DPOTrainConfig) -> type:
    """TRL's DPOTrainer, or with ``shared_prefix`` its shared-prefix subclass (:mod:`turnwise.train.prefix_dpo`)."""
    trl = require("trl", "train")
    if not cfg.shared_prefix:
        return trl.DPOTrainer
    from turnwise.train.prefix_dpo import SharedPrefixDPOTrainer, supports_shared_prefix

    if not supports_shared_prefix(cfg.attn_implementation):
        log.warning("shared_prefix needs an attention kernel that takes a 4-D mask (sdpa, eager), not %s; "
                    "training on TRL's plain pairs instead", cfg.attn_implementation)
        return trl.DPOTrainer
    log.info("dpo: shared-prefix layout (each history runs once per pair), attention by %s", cfg.prefix_attention)
    return SharedPrefixDPOTrainer


def check_pairs_intact(prepared: Any, rows: int, max_length: int) -> None:
    """Raise if TRL dropped a pair, or would cut one (prompt + either answer over ``max_length``)."""
    longest = max(
        (len(p) + max(len(c), len(r)) for p, c, r in
         zip(prepared["prompt_ids"], prepared["chosen_ids"], prepared["rejected_ids"], strict=True)),
        default=0,
    )
    if len(prepared) != rows or longest > max_length:
        raise TurnwiseError(
            f"TRL changed the DPO pairs ({rows} in, {len(prepared)} kept, longest {longest} tokens for max_length "
            f"{max_length}); turnwise fits pairs to max_length itself and expects TRL to keep them whole"
        )


def train_dpo(cfg: DPOTrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Train with DPO + the SFT term; see the module docstring. Resumes from the last checkpoint in ``output``."""
    trainer, report, placement = build_dpo_trainer(cfg, callbacks=callbacks)
    return run_trainer(trainer, cfg, "dpo", report, placement)


def main(argv: list[str] | None = None) -> None:
    """``python -m turnwise.train.dpo --config X.yaml [--set key=value ...]``, for ``accelerate launch -m``."""
    from turnwise.train.entry import module_main

    module_main(argv, "dpo", DPOTrainConfig, train_dpo)


if __name__ == "__main__":
    main()
