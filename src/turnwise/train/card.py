"""The files a training run leaves beside its model: the resolved config and the model card (README.md).

The config file (``turnwise-config.yaml``) is the run's settings after the YAML recipe and every override
were applied, documented key by key, and loads back with ``--config`` to run the same training again.
The model card lists the data (file, digest, rows kept, shortened and dropped), the hyperparameters and
the final metrics. TRL writes a card of its own at every checkpoint; this one replaces it at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnwise.config import dump_yaml, to_dict
from turnwise.records import atomic_write_text, package_versions

if TYPE_CHECKING:
    from turnwise.train.configs import TrainConfig
    from turnwise.train.data import DataReport

CONFIG_FILE = "turnwise-config.yaml"
CARD_FILE = "README.md"

@dataclass
class TrainResult:
    """What a training run left behind.

    Attributes:
        kind: sft, ask, dpo or rm.
        output: the output directory (final model, tokenizer, README.md, config, manifest).
        report: what happened to the data.
        metrics: final metrics: TRL's train metrics plus the last logged values.
        resumed_from: the checkpoint this run started from, or None.
        log_history: every logged entry, in order.
    """

    kind: str
    output: Path
    report: DataReport
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)


_WHAT = {
    "sft": "multi-turn SFT, the loss on every assistant turn with all turns kept",
    "ask": "a user simulator (Parrot-Ask): multi-turn SFT with the loss on user turns",
    "dpo": "DPO on multi-turn preference pairs with the SFT term on the chosen answer",
    "online": "online multi-turn GRPO: candidates played out against a user simulator, rewarded per turn",
    "rm": "a reward model (one scalar on the last token, Bradley-Terry loss) on multi-turn preference pairs",
}
_HEADLINE_METRICS = ("heldout_pair_accuracy", "heldout_pair_accuracy_ci95", "heldout_pairs", "train_loss", "loss",
                     "accuracy", "rewards/accuracies", "rewards/margins", "mean_token_accuracy",
                     "global_step", "epoch", "train_runtime", "num_tokens")


def write_config(cfg: TrainConfig) -> Path:
    """Write the resolved config into the output directory; ``--config`` reads it back."""
    path = Path(cfg.output) / CONFIG_FILE
    atomic_write_text(path, dump_yaml(cfg))
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):  # bool included
        return str(value)
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else "—"


def _table(rows: list[tuple[str, Any]], header: tuple[str, str]) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in rows]
    return lines


def _front_matter(result: TrainResult, cfg: TrainConfig) -> list[str]:
    lines = ["---", f"library_name: {'peft' if cfg.lora else 'transformers'}"]
    if not os.path.isdir(cfg.model):  # a hub id (or a model turnwise embeds): link the card to its base model
        from turnwise.models.embedded import EMBEDDED

        lines.append(f"base_model: {EMBEDDED[cfg.model].hub_id if cfg.model in EMBEDDED else cfg.model}")
    lines += ["tags:", "- turnwise", "- trl", f"- {result.kind}", "---", ""]
    return lines


def _data_section(result: TrainResult) -> list[str]:
    report = result.report
    rows = [
        ("file", report.path),
        ("sha256", report.sha256),
        ("format", report.format),
        ("records read", report.read),
        ("invalid records skipped", report.invalid.get("skipped", 0)),
        ("rows trained on", report.rows),
        ("rows shortened (oldest turns dropped)", report.shortened),
        ("turn pairs dropped", report.pairs_dropped),
        ("longest row (tokens)", report.max_tokens),
        ("tokens", report.tokens),
    ]
    if result.kind != "dpo":
        rows.append(("tokens carrying loss", report.loss_tokens))
    rows += [(f"rows dropped: {why}", n) for why, n in report.dropped.most_common()]
    return ["## Data", "", *_table(rows, ("", "")), ""]


def _metrics_section(metrics: dict[str, Any]) -> list[str]:
    first = [(k, metrics[k]) for k in _HEADLINE_METRICS if k in metrics]
    rest = sorted((k, v) for k, v in metrics.items() if k not in _HEADLINE_METRICS)
    return ["## Final metrics", "", *_table(first + rest, ("metric", "value")), ""]


def model_card(result: TrainResult, cfg: TrainConfig, placement: str) -> str:
    """The model card's Markdown."""
    settings = [(k, v) for k, v in to_dict(cfg).items() if k not in ("data", "model", "output")]
    resumed = f" It resumed from `{Path(result.resumed_from).name}`." if result.resumed_from else ""
    versions = ", ".join(f"{k} {v}" for k, v in package_versions(("torch", "transformers", "trl", "peft")).items())
    lines = [
        *_front_matter(result, cfg),
        f"# {Path(cfg.output).name}",
        "",
        f"Fine-tuned from `{cfg.model}` with `turnwise train {result.kind}`: {_WHAT[result.kind]}. "
        f"Trained on {placement}.{resumed}" + (" The output is a LoRA adapter." if cfg.lora else ""),
        "",
        *_data_section(result),
        "## Hyperparameters",
        "",
        *_table(settings, ("setting", "value")),
        "",
        *_metrics_section(result.metrics),
        "## Reproduce",
        "",
        "```bash",
        f"turnwise train {result.kind} --config {Path(cfg.output) / CONFIG_FILE}",
        "```",
        "",
        f"`{CONFIG_FILE}` holds every setting; `train.manifest.json` holds each run (and resume), the data "
        f"report and the versions. Versions: {versions}.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(result: TrainResult, cfg: TrainConfig, placement: str) -> Path:
    path = Path(cfg.output) / CARD_FILE
    atomic_write_text(path, model_card(result, cfg, placement))
    return path
