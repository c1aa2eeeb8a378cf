"""`turnwise detect`: label follow-up turns (``run``, the default subcommand), or fit the learned detector (``train``).

    turnwise detect dialogues.jsonl detections.jsonl          # short for `turnwise detect run IN OUT`

    turnwise detect train detector/ --data-dir ../shared/data          # the public sources (the shipped model)
    turnwise detect train detector/ --data mudoco_news --data my_labels.jsonl --l2 30
    turnwise detect dialogues.jsonl detections.jsonl --detector-model detector/

Writes ``detector.json`` (parameters, threshold, sha256) and ``README.md`` (the model card: data, command,
calibration). The same data and options give the same file and hash.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from turnwise.cli.command import RunByDefault, stage_command

app = typer.Typer(cls=RunByDefault, no_args_is_help=True, add_completion=False,
                  help="Label every follow-up user turn as context-dependent or standalone (run), or train the "
                       "learned detector (train). `turnwise detect IN OUT ...` is short for `turnwise detect run "
                       "IN OUT ...`.")
app.command("run")(stage_command("detect"))


@app.command("train")
def detect_train(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the detector (detector.json, README.md) into.")],
    data: Annotated[list[str] | None, typer.Option(
        "--data", help="A public source (canard_dev, mudoco_news, zh_rewrite_dev, toy_world) or a labelled JSONL "
                       "file ({messages, dependent[, rewrite, group, lang]} per line); repeat it. Default: the four "
                       "public sources.")] = None,
    data_dir: Annotated[Path, typer.Option(help="The folder holding the public sources (context/...).")] = Path(
        "../shared/data"),
    l2: Annotated[float, typer.Option(help="L2 penalty of the logistic regression.")] = 30.0,
    rewrites: Annotated[bool, typer.Option(help="Add human rewrites of dependent turns as standalone turns.")] = True,
    folds: Annotated[int, typer.Option(help="Folds (grouped by dialogue) for the calibration's scores.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    threshold: Annotated[float, typer.Option(help="Decision threshold written into the model.")] = 0.5,
) -> None:
    """Fit the learned context-dependence detector and write it with its model card."""
    from turnwise.detect.train import DEFAULT_SOURCES, TrainSettings, load_sources, train_detector
    from turnwise.errors import ConfigError

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    if not 0 < threshold < 1:
        raise ConfigError(f"--threshold must be between 0 and 1, got {threshold}")
    names = data or list(DEFAULT_SOURCES)
    sources = load_sources(names, data_dir)
    settings = TrainSettings(l2=l2, rewrites=rewrites, folds=folds, seed=seed, threshold=threshold)
    # The command that rebuilds it, every option spelled out (the model card records it).
    words = [str(out_dir), *(w for name in names for w in ("--data", name)), "--data-dir", str(data_dir),
             "--l2", f"{l2:g}", "--rewrites" if rewrites else "--no-rewrites", "--folds", str(folds),
             "--seed", str(seed), "--threshold", f"{threshold:g}"]
    command = "turnwise detect train " + shlex.join(words)
    detector = train_detector(sources, settings, command=command, progress=lambda line: typer.echo(line, err=True))
    detector.save(out_dir)
    typer.echo(f"learned detector saved to {out_dir} (sha256 {detector.digest[:12]}; "
               f"{sum(c['dependent'] + c['standalone'] for c in detector.card['data'].values())} turns)")
