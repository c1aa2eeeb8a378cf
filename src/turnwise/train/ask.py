"""Entry for the Parrot-Ask user simulator under ``accelerate launch -m turnwise.train.ask``.

    python -m turnwise.train.ask --config recipes/train-ask.yaml --data dialogues.jsonl --model M --output D

Same trainer as :mod:`turnwise.train.sft`, with :class:`~turnwise.train.configs.AskTrainConfig`: dialogues
are flipped into the simulator's view before they are tokenized.
"""

from __future__ import annotations

from turnwise.train.configs import AskTrainConfig
from turnwise.train.sft import train_sft


def main(argv: list[str] | None = None) -> None:
    """``python -m turnwise.train.ask --config X.yaml [--set key=value ...]``."""
    from turnwise.train.entry import module_main

    module_main(argv, "ask", AskTrainConfig, train_sft)


if __name__ == "__main__":
    main()
