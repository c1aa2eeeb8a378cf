"""A reward model on multi-turn preference pairs, through TRL's RewardTrainer.

    turnwise train rm --data pairs.jsonl --model runs/sft --output runs/rm
    python -m turnwise.train.rm --config recipes/train-rm.yaml          # the entry `accelerate launch -m` runs

The rows are the DPO rows (:func:`turnwise.train.data.dpo_rows`): the history fitted to ``max_length`` by
dropping its oldest turns, never cut mid-message, so that the reward model reads what DPO reads. TRL's
RewardTrainer loads the model with a one-output classification head (``num_labels=1``) on the last token and
trains the Bradley–Terry loss ``−log σ(r(x, c) − r(x, r))`` (plus TRL's centering term when
``center_rewards_coefficient`` is set).

A share of the pairs (``heldout_fraction``, a seeded draw of whole prompts: every pair of a held-out history is
held out with it) is kept out of training and scored after it by
:class:`turnwise.score.reward_model.RewardModel`, the same code that scores responses for ``bestofn`` and
``score`` (``--scorer rm:DIR``): the held-out pair accuracy (and its 95% Wilson interval) goes into the model
card and the manifest.
"""

from __future__ import annotations

import json
import logging
import math
import random
from typing import Any

from turnwise.data.render import load_tokenizer
from turnwise.errors import ConfigError, require
from turnwise.models.embedded import resolve
from turnwise.train.common import (
    Placement,
    TrainResult,
    peft_config,
    resolve_placement,
    run_trainer,
    trl_args,
)
from turnwise.train.configs import RMTrainConfig
from turnwise.train.data import DataReport, dpo_rows, read_items

log = logging.getLogger(__name__)


def split_heldout(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    """``(train, heldout)``: a seeded draw of about ``fraction`` of the rows held out, by prompt.

    Every pair of one prompt (CaPO writes several rejected answers for one history) falls on the same side, so a
    held-out pair's history was never trained on. At least one prompt is held out when ``fraction > 0`` and there
    are two prompts or more; never all of them.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(json.dumps(row["prompt"], sort_keys=True, ensure_ascii=False), []).append(i)
    if fraction <= 0 or len(groups) < 2:
        return rows, []
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    held: set[int] = set()
    for key in keys[:-1]:  # the last prompt always trains
        if len(held) >= fraction * len(rows):
            break
        held.update(groups[key])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def heldout_accuracy(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> dict[str, Any]:
    """Score each held-out pair's chosen and rejected answer; the share where chosen scores higher."""
    from turnwise.score.reward_model import RewardModel

    scorer = RewardModel(model, tokenizer, max_length=max_length)
    wins = 0
    for row in rows:
        chosen, rejected = scorer.rewards([[*row["prompt"], *row["chosen"]], [*row["prompt"], *row["rejected"]]])
        wins += chosen > rejected
    low, high = wilson(wins, len(rows))
    return {"heldout_pairs": len(rows), "heldout_pair_accuracy": round(wins / len(rows), 4) if rows else None,
            "heldout_pair_accuracy_ci95": [round(low, 4), round(high, 4)]}


def build_rm_trainer(cfg: RMTrainConfig, *, callbacks: list[Any] | None = None
                     ) -> tuple[Any, DataReport, Placement, list[dict[str, Any]]]:
    """Read and fit the pairs, hold some out, build TRL's RewardTrainer (nothing is trained yet).

    Returns:
        The trainer, the data report, the placement and the held-out rows.

    Raises:
        ConfigError: the file holds conversations, not pairs; no pair is left to train on.
    """
    trl, datasets = require("trl", "train"), require("datasets", "train")
    placement = resolve_placement(cfg)
    tokenizer = load_tokenizer(cfg.model, chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    items, report = read_items(cfg.data, cfg.data_format, skip_invalid=cfg.skip_invalid, max_rows=cfg.max_rows)
    rows = dpo_rows(items, tokenizer, report, max_length=cfg.max_length)
    train, heldout = split_heldout(rows, cfg.heldout_fraction, cfg.seed)
    if not train:
        raise ConfigError(f"{cfg.data}: no pair left to train on ({report.summary()})")
    log.info("rm data: %s; %d pairs held out", report.summary(), len(heldout))
    args = trl.RewardConfig(**trl_args(cfg, placement), center_rewards_coefficient=cfg.center_rewards_coefficient)
    trainer = trl.RewardTrainer(
        model=resolve(cfg.model),
        args=args,
        train_dataset=datasets.Dataset.from_list(train),
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=callbacks,
    )
    if len(trainer.train_dataset) != len(train):
        raise ConfigError(f"TRL dropped {len(train) - len(trainer.train_dataset)} of {len(train)} reward pairs "
                          f"as longer than max_length {cfg.max_length}; turnwise fits them first and expects none")
    return trainer, report, placement, heldout


def train_rm(cfg: RMTrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Train the reward model, then score the held-out pairs; see the module docstring. Resumes like the others."""
    trainer, report, placement, heldout = build_rm_trainer(cfg, callbacks=callbacks)
    return run_rm_trainer(trainer, cfg, report, placement, heldout)


def run_rm_trainer(trainer: Any, cfg: RMTrainConfig, report: DataReport, placement: Placement,
                   heldout: list[dict[str, Any]]) -> TrainResult:
    """Train a built reward trainer (:func:`turnwise.train.common.run_trainer`), then score ``heldout``."""

    def evaluate(trained: Any) -> dict[str, Any]:
        if not heldout:
            return {}
        model = trained.accelerator.unwrap_model(trained.model)
        model.eval()
        return heldout_accuracy(model, trained.processing_class, heldout, cfg.max_length)

    return run_trainer(trainer, cfg, "rm", report, placement, evaluate=evaluate)


def main(argv: list[str] | None = None) -> None:
    from turnwise.train.entry import module_main

    module_main(argv, "rm", RMTrainConfig, train_rm)


if __name__ == "__main__":
    main()
