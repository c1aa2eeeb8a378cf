"""Training: multi-turn SFT, the Parrot-Ask user simulator and DPO with the SFT term, as thin TRL wrappers.

    from turnwise.config import load_config
    from turnwise.train import SFTTrainConfig, train_sft

    result = train_sft(load_config(SFTTrainConfig, "recipes/train-sft.yaml", overrides={...}))

Nothing heavy is imported until a trainer is built: torch, transformers, TRL and PEFT load inside the
functions (``pip install 'turnwise[train]'``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from turnwise.train.card import TrainResult
from turnwise.train.common import accelerate_config
from turnwise.train.configs import AskTrainConfig, DPOTrainConfig, SFTTrainConfig, TrainConfig

# Imported on first use: `python -m turnwise.train.sft` must not find its own module already imported.
_LAZY = {"build_sft_trainer": "sft", "train_sft": "sft", "build_dpo_trainer": "dpo", "train_dpo": "dpo"}

__all__ = [
    "AskTrainConfig",
    "DPOTrainConfig",
    "SFTTrainConfig",
    "TrainConfig",
    "TrainResult",
    "accelerate_config",
    "build_dpo_trainer",
    "build_sft_trainer",
    "train_dpo",
    "train_sft",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"turnwise.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'turnwise.train' has no attribute {name!r}")
