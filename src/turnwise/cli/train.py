"""`turnwise train sft|ask|dpo|rm|online`: train on turnwise's records through TRL, on a CPU, one GPU or (with
`accelerate launch -m turnwise.train.sft`) many.

    turnwise train sft --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --output runs/sft
    turnwise train dpo --config recipes/train-dpo.yaml --data pairs.jsonl --model runs/sft --output runs/dpo
    turnwise train ask --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B --output runs/ask --set max_steps=200
    turnwise train rm --data pairs.jsonl --model runs/sft --output runs/rm
    turnwise train online --data dialogues.jsonl --model runs/sft --output runs/online --scorer exact --turns 3

Each is the stage of the same name a recipe runs (:mod:`turnwise.train.adapter`): its settings are the config
dataclasses of :mod:`turnwise.train.configs`, every field an option (defaults, then ``--config`` (YAML), then
``--set key=value``, then the options), ``--data``, ``--model`` and ``--output`` the stage's input, base model and
output.
"""

from __future__ import annotations

from typing import Annotated

import typer

from turnwise.cli.command import stage_command

app = typer.Typer(
    help="Train: multi-turn SFT, a Parrot-Ask user simulator, DPO with the SFT term, a reward model (TRL underneath).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

app.command("sft")(stage_command("train_sft"))
app.command("ask")(stage_command("train_ask"))
app.command("dpo")(stage_command("train_dpo"))
app.command("rm")(stage_command("train_rm"))
app.command("online")(stage_command("train_online"))


@app.command("accelerate-config")
def accelerate_config_path(
    name: Annotated[str, typer.Argument(help="zero3 (DeepSpeed ZeRO-3) or fsdp (FSDP2).")],
) -> None:
    """Print the path of a shipped `accelerate` config, for `accelerate launch --config_file`."""
    from turnwise.train.common import accelerate_config

    typer.echo(str(accelerate_config(name)))
