"""`turnwise train sft|ask|dpo`: train on turnwise's records through TRL, on a CPU, one GPU or (with
`accelerate launch -m turnwise.train.sft`) many.

    turnwise train sft --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --output runs/sft
    turnwise train dpo --config recipes/train-dpo.yaml --data pairs.jsonl --model runs/sft --output runs/dpo
    turnwise train ask --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B --output runs/ask --set max_steps=200

Settings come from the config dataclasses in :mod:`turnwise.train.configs`: defaults, then ``--config``
(YAML), then ``--set key=value``, then the typed options. Every key is listed under ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from turnwise.config import describe_fields
from turnwise.train.configs import AskTrainConfig, DPOTrainConfig, SFTTrainConfig, TrainConfig

app = typer.Typer(
    help="Train: multi-turn SFT, a Parrot-Ask user simulator, DPO with the SFT term (TRL underneath).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

Data = Annotated[str | None, typer.Option("--data", help="Training records (any format `convert` reads).")]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Hub id or directory of the starting model.")]
Output = Annotated[str | None, typer.Option("--output", "-o", help="Output directory (re-running resumes it).")]
Config = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config: a recipe or a run's own.")]
Sets = Annotated[
    list[str] | None, typer.Option("--set", help="Override a setting: --set beta=0.15 (repeatable; keys below).")
]
MaxSteps = Annotated[int | None, typer.Option(help="Optimizer steps (-1: num_train_epochs decides).")]
LearningRate = Annotated[float | None, typer.Option("--learning-rate", "--lr", help="Peak learning rate.")]
Lora = Annotated[bool | None, typer.Option("--lora/--no-lora", help="Train a LoRA adapter instead of all weights.")]
Precision = Annotated[str | None, typer.Option(help="auto, bf16, fp16 or fp32 (auto: bf16 GPU, fp32 CPU).")]


def _epilog(cls: type[TrainConfig]) -> str:
    """Every setting with its type, default and documentation, for ``--help``."""
    lines = ["[bold]Settings[/bold] (YAML keys and --set names):", ""]
    for name, type_, default, doc in describe_fields(cls):
        default = default if default == "required" else f"default {default}"
        lines.append(f"[cyan]{name}[/cyan] " + escape(f"({type_}, {default}): {doc}"))
        lines.append("")
    return "\n".join(lines)


def _run(cls: type[TrainConfig], config: Path | None, sets: list[str] | None, **options: object) -> None:
    from turnwise.config import load_config
    from turnwise.train.entry import summary_lines

    cfg = load_config(cls, config, sets=sets or [], overrides=options)
    if cls is DPOTrainConfig:
        from turnwise.train.dpo import train_dpo

        result = train_dpo(cfg)
    else:
        from turnwise.train.sft import train_sft

        result = train_sft(cfg)
    for line in summary_lines(result):
        typer.echo(line, err=True)


@app.command("sft", epilog=_epilog(SFTTrainConfig))
def sft(
    data: Data = None, model: Model = None, output: Output = None, config: Config = None, set_: Sets = None,
    max_steps: MaxSteps = None, learning_rate: LearningRate = None, lora: Lora = None, precision: Precision = None,
) -> None:
    """Multi-turn SFT: the loss on every assistant turn, all turns kept, any chat template."""
    _run(SFTTrainConfig, config, set_, data=data, model=model, output=output, max_steps=max_steps,
         learning_rate=learning_rate, lora=lora, precision=precision)


@app.command("ask", epilog=_epilog(AskTrainConfig))
def ask(
    data: Data = None, model: Model = None, output: Output = None, config: Config = None, set_: Sets = None,
    max_steps: MaxSteps = None, learning_rate: LearningRate = None, lora: Lora = None, precision: Precision = None,
) -> None:
    """A user simulator (Parrot-Ask): SFT with the loss on the user turns only."""
    _run(AskTrainConfig, config, set_, data=data, model=model, output=output, max_steps=max_steps,
         learning_rate=learning_rate, lora=lora, precision=precision)


@app.command("dpo", epilog=_epilog(DPOTrainConfig))
def dpo(
    data: Data = None, model: Model = None, output: Output = None, config: Config = None, set_: Sets = None,
    max_steps: MaxSteps = None, learning_rate: LearningRate = None, lora: Lora = None, precision: Precision = None,
    beta: Annotated[float | None, typer.Option(help="β of DPO (LongReward: 0.15).")] = None,
    sft_weight: Annotated[float | None, typer.Option(help="λ of the SFT term (LongReward: 0.1; 0: plain DPO).")] = None,
    shared_prefix: Annotated[bool | None, typer.Option(
        "--shared-prefix/--no-shared-prefix",
        help="One sequence per pair, its history run once for both answers (same loss; faster on a CPU, less "
        "GPU memory but slower on an H100); --no-shared-prefix (the default): TRL's two sequences per pair.")
    ] = None,
) -> None:
    """DPO on multi-turn preference pairs, plus λ × the SFT loss on the chosen answer."""
    _run(DPOTrainConfig, config, set_, data=data, model=model, output=output, max_steps=max_steps,
         learning_rate=learning_rate, lora=lora, precision=precision, beta=beta, sft_weight=sft_weight,
         shared_prefix=shared_prefix)


@app.command("accelerate-config")
def accelerate_config_path(
    name: Annotated[str, typer.Argument(help="zero3 (DeepSpeed ZeRO-3) or fsdp (FSDP2).")],
) -> None:
    """Print the path of a shipped `accelerate` config, for `accelerate launch --config_file`."""
    from turnwise.train.common import accelerate_config

    typer.echo(str(accelerate_config(name)))
