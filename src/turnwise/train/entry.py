"""The small command line behind ``python -m turnwise.train.sft`` and ``python -m turnwise.train.dpo``.

It exists for ``accelerate launch -m turnwise.train.sft ...``, which runs a module once per process; the
``turnwise train`` commands are the everyday way in. Only the main process prints the summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from turnwise.config import load_config
from turnwise.errors import TurnwiseError
from turnwise.train.card import TrainResult


def summary_lines(result: TrainResult) -> list[str]:
    """What a run did, in a few lines for a terminal."""
    metrics = result.metrics
    shown = [f"{k}={metrics[k]:.4g}" for k in ("train_loss", "rewards/accuracies", "rewards/margins")
             if isinstance(metrics.get(k), int | float)]
    steps = metrics.get("global_step", result.log_history[-1].get("step") if result.log_history else "?")
    runtime = metrics.get("train_runtime")
    lines = [f"{result.kind}: {result.report.summary()}"]
    lines.append(
        f"{result.kind}: {steps} steps" + (f" in {runtime:.1f}s" if isinstance(runtime, int | float) else "")
        + (", " + " ".join(shown) if shown else "")
        + (f", resumed from {result.resumed_from}" if result.resumed_from else "")
    )
    lines.append(f"{result.kind}: model, README.md, turnwise-config.yaml and train.manifest.json in {result.output}")
    return lines


def _parser(kind: str) -> argparse.ArgumentParser:
    module = "turnwise.online.grpo" if kind == "online" else f"turnwise.train.{kind}"
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=__doc__)
    parser.add_argument("--config", help="YAML config (a recipe, or a run's turnwise-config.yaml)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting (repeatable)")
    parser.add_argument("--data", help="training records")
    parser.add_argument("--model", help="hub id or directory of the starting model")
    parser.add_argument("--output", help="output directory")
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more logs")
    return parser


def module_main(argv: list[str] | None, kind: str, cls: type, train: Callable[[Any], TrainResult]) -> None:
    """Parse ``--config``/``--set``/``--data``/``--model``/``--output``, train, print a summary."""
    args = _parser(kind).parse_args(argv)
    level = logging.INFO if args.verbose == 1 else logging.DEBUG if args.verbose > 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        cfg = load_config(cls, args.config, sets=args.sets,
                          overrides={"data": args.data, "model": args.model, "output": args.output})
        result = train(cfg)
    except TurnwiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from accelerate import PartialState

    if PartialState().is_main_process:
        for line in summary_lines(result):
            print(line, file=sys.stderr)
