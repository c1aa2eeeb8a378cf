"""Multi-turn SFT, and the Parrot-Ask user simulator, through TRL's SFTTrainer.

    turnwise train sft --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --output runs/sft
    python -m turnwise.train.sft --config recipes/train-sft.yaml       # the entry `accelerate launch -m` runs

Every assistant turn carries the loss and every turn is kept (Parrot, Table 5: all turns 6.56 on
MT-Bench++ against 5.90 for the last turn alone). The labels are cut from message boundaries by
:func:`turnwise.data.render.label_tokens`, so any chat template works, with or without ``{% generation %}``
markers; TRL's ``assistant_only_loss`` is not used. TRL is handed pre-tokenized rows, ``input_ids`` and
``labels``: with an ``input_ids`` column its SFTTrainer neither re-applies the template nor re-tokenizes,
and it takes a ``labels`` column as it is (``SFTTrainer._prepare_dataset`` in TRL 1.16). Its own cut-off
at ``max_length`` never triggers, because every row already fits (:mod:`turnwise.train.data`); the trainer
is checked for that before training.

``turnwise train ask`` (:class:`AskTrainConfig`) trains a user simulator: each dialogue is first flipped
into the view ``turnwise simulate`` sends it (:func:`turnwise.simulate.ask_data.ask_conversations`), so the
loss lands on the original user turns. ``--set train_on=user`` here puts the loss on the user turns of the
unflipped dialogue instead.
"""

from __future__ import annotations

import logging
from typing import Any

from turnwise.data.render import load_tokenizer
from turnwise.errors import ConfigError, TurnwiseError, require
from turnwise.train.common import (
    Placement,
    TrainResult,
    peft_config,
    quantization_config,
    resolve_placement,
    run_trainer,
    trl_args,
)
from turnwise.train.configs import AskTrainConfig, SFTTrainConfig
from turnwise.train.data import DataReport, read_items, sft_rows

log = logging.getLogger(__name__)


def build_sft_trainer(cfg: SFTTrainConfig, *, callbacks: list[Any] | None = None) -> tuple[Any, DataReport, Placement]:
    """Read and fit the data, then build TRL's SFTTrainer over it (nothing is trained yet).

    Returns:
        The trainer, the data report and where training will run.

    Raises:
        ConfigError: no row is left to train on, or a setting the machine cannot honour.
        TurnwiseError: TRL changed a row (a sign that its preprocessing and turnwise's disagree).
    """
    from turnwise.models.embedded import resolve

    trl, datasets = require("trl", "train"), require("datasets", "train")
    placement = resolve_placement(cfg)
    tokenizer = load_tokenizer(cfg.model, chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code)
    items, report = read_items(cfg.data, cfg.data_format, skip_invalid=cfg.skip_invalid, max_rows=cfg.max_rows)
    if isinstance(cfg, AskTrainConfig):
        from turnwise.simulate.ask_data import ask_conversations

        items = list(ask_conversations(items, cfg.ask_data()))
    rows = sft_rows(items, tokenizer, report, max_length=cfg.max_length, train_on=cfg.train_on,
                    last_only=cfg.loss_turns == "last")
    if not rows:
        raise ConfigError(f"{cfg.data}: no row left to train on ({report.summary()})")
    log.info("sft data: %s", report.summary())
    trainer = trl.SFTTrainer(
        model=resolve(cfg.model),
        args=trl.SFTConfig(**trl_args(cfg, placement)),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        quantization_config=quantization_config(cfg, placement),
        callbacks=callbacks,
    )
    if not trainer.args.packing:  # packing joins rows on purpose (trl_args: {packing: true})
        check_rows_intact(trainer.train_dataset, rows)
    return trainer, report, placement


def check_rows_intact(prepared: Any, rows: list[dict[str, list[int]]]) -> None:
    """Raise if TRL dropped or cut any row that turnwise handed it."""
    theirs = sorted(len(ids) for ids in prepared["input_ids"])
    ours = sorted(len(row["input_ids"]) for row in rows)
    if theirs != ours:
        raise TurnwiseError(
            f"TRL changed the SFT rows ({len(ours)} rows in, {len(theirs)} out, longest {max(ours)} → "
            f"{max(theirs, default=0)} tokens); turnwise fits rows to max_length itself and expects TRL to keep "
            "them whole"
        )


def train_sft(cfg: SFTTrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Train with multi-turn SFT; see the module docstring. Resumes from the last checkpoint in ``output``."""
    kind = "ask" if isinstance(cfg, AskTrainConfig) else "sft"
    trainer, report, placement = build_sft_trainer(cfg, callbacks=callbacks)
    return run_trainer(trainer, cfg, kind, report, placement)


def main(argv: list[str] | None = None) -> None:
    """``python -m turnwise.train.sft --config X.yaml [--set key=value ...]``, for ``accelerate launch -m``."""
    from turnwise.train.entry import module_main

    module_main(argv, "sft", SFTTrainConfig, train_sft)


if __name__ == "__main__":
    main()
