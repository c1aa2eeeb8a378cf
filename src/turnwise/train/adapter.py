"""The training stages: multi-turn SFT, the Parrot-Ask user simulator, DPO with the SFT term.

    turnwise train sft --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --output runs/sft
    turnwise train dpo --config recipes/train-dpo.yaml --data pairs.jsonl --model runs/sft --output runs/dpo
    turnwise train ask --data dialogues.jsonl --model Qwen/Qwen2.5-0.5B --output runs/ask --set max_steps=200
    turnwise train dpo --data pairs.jsonl --model runs/sft --output runs/dpo --accelerate zero3 --num-processes 8

    - name: train_dpo                 # in a recipe
      kind: train_dpo
      inputs: {pairs: [capo, bestofn]}
      models: {base: sft}
      settings: {beta: 0.15, sft_weight: 0.1}

In-process by default (TRL on the CPU or one GPU). With ``accelerate: ddp|zero3|fsdp|FILE`` the stage runs
``accelerate launch -m turnwise.train.{sft,ask,dpo} --config <resolved config>`` on ``num_processes`` processes
and reads the result back from the model folder's ``train.manifest.json``. The settings are the trainers' own
(:mod:`turnwise.train.configs`) but ``data``, ``model`` and ``output``, which come from the stage's input, base
model and output.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnwise.errors import TurnwiseError
from turnwise.online.grpo import OnlineTrainConfig
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage
from turnwise.train.configs import AskTrainConfig, DPOTrainConfig, RMTrainConfig, SFTTrainConfig, TrainConfig

log = logging.getLogger(__name__)
PROVIDED = {"data": "<inputs.data>", "model": "<models.base>", "output": "<stage folder>/model"}
_LAUNCH_DOC = """
    Attributes:
        accelerate: null = train in this process; ``ddp``, ``zero3`` or ``fsdp`` (the shipped accelerate configs)
            or the path of an accelerate config = ``accelerate launch`` on ``num_processes`` processes (one per
            GPU; ``ddp`` on a machine without GPUs: CPU processes over gloo).
        num_processes: processes (GPUs, or CPU processes with ``ddp``) for ``accelerate launch``.
"""


@dataclass
class SFTStageSettings(SFTTrainConfig):
    accelerate: str | None = None
    num_processes: int = 1


@dataclass
class AskStageSettings(AskTrainConfig):
    accelerate: str | None = None
    num_processes: int = 1


@dataclass
class DPOStageSettings(DPOTrainConfig):
    accelerate: str | None = None
    num_processes: int = 1
    only: list[str] | None = None


@dataclass
class RMStageSettings(RMTrainConfig):
    accelerate: str | None = None
    num_processes: int = 1


@dataclass
class OnlineStageSettings(OnlineTrainConfig):
    accelerate: str | None = None
    num_processes: int = 1


for _cls, _core in ((SFTStageSettings, "SFTTrainConfig"), (AskStageSettings, "AskTrainConfig"),
                    (DPOStageSettings, "DPOTrainConfig"), (RMStageSettings, "RMTrainConfig"),
                    (OnlineStageSettings, "OnlineTrainConfig")):
    _where = "turnwise.online.grpo" if _core == "OnlineTrainConfig" else "turnwise.train.configs"
    _cls.__doc__ = (f"A training stage's settings: every field of :class:`~{_where}.{_core}` but data, "
                    f"model and output (the stage's input, base model and output), plus how it runs.\n{_LAUNCH_DOC}")
DPOStageSettings.__doc__ += (
    "        only: train on these kinds of pair alone (CaPO strategies ``neglect``, ``hallucination``,\n"
    "            ``misunderstanding``; ``best-of-n``); null = every pair of the inputs. For ablations.\n")


def core_config(ctx: StageContext, core: type, data: Path, **changes: Any) -> TrainConfig:
    """The trainer's own config: the stage's settings with data, model and output filled in."""
    values = {f.name: getattr(ctx.settings, f.name) for f in dataclasses.fields(core)}
    values.update(data=str(data), model=ctx.model_path("base"), output=str(ctx.output("model")), **changes)
    return core(**values)


def _losses(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {key: [e[key] for e in history if key in e] for key in ("loss", "rewards/accuracies")}


def _train_here(ctx: StageContext, cfg: TrainConfig, kind: str) -> dict[str, Any]:
    """Train with turnwise's trainer in this process (no stdout: TRL's printer and progress callbacks removed)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    from turnwise.train.common import run_trainer
    from turnwise.train.dpo import build_dpo_trainer
    from turnwise.train.rm import build_rm_trainer, run_rm_trainer
    from turnwise.train.sft import build_sft_trainer

    class Steps(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ctx.advance()

    ctx.torch_ready()
    store = None
    if kind == "rm":
        trainer, report, placement, heldout = build_rm_trainer(cfg, callbacks=[Steps()])
    elif kind == "online":
        from turnwise.online.grpo import build_online_trainer

        trainer, report, placement, store = build_online_trainer(cfg, callbacks=[Steps()])
    else:
        build = build_dpo_trainer if kind == "dpo" else build_sft_trainer
        trainer, report, placement = build(cfg, callbacks=[Steps()])
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    ctx.total(trainer.args.max_steps if trainer.args.max_steps > 0 else None)
    try:
        if kind == "rm":
            result = run_rm_trainer(trainer, cfg, report, placement, heldout)
        else:
            result = run_trainer(trainer, cfg, kind, report, placement)
    finally:
        if store is not None:
            store.close()
    return {**_losses(result.log_history), "metrics": result.metrics, "data": report.to_dict(),
            "summary": report.summary(), "log_history": result.log_history}


def launch_command(ctx: StageContext, config_file: Path, kind: str) -> list[str]:
    """The ``accelerate launch`` command line of a multi-process training stage."""
    from turnwise.train.common import ACCELERATE_CONFIGS, accelerate_config

    name = ctx.settings.accelerate
    accel = str(accelerate_config(name)) if name in ACCELERATE_CONFIGS else str(name)
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accel,
            "--num_processes", str(ctx.settings.num_processes), "-m",
            "turnwise.online.grpo" if kind == "online" else f"turnwise.train.{kind}",
            "--config", str(config_file)]


def _launch(ctx: StageContext, cfg: TrainConfig, kind: str) -> dict[str, Any]:
    """Train under ``accelerate launch``; its output goes to ``launch.log`` beside the model."""
    from turnwise.config import dump_yaml

    config_file = ctx.path("train-config.yaml")
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(dump_yaml(cfg), encoding="utf-8")
    command = launch_command(ctx, config_file, kind)
    log.info("launching: %s", " ".join(command))
    with open(ctx.path("launch.log"), "w", encoding="utf-8") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise TurnwiseError(f"stage {ctx.name}: accelerate launch exited with {code}; see {ctx.path('launch.log')}")
    for line in ctx.path("launch.log").read_text(encoding="utf-8", errors="replace").splitlines():
        if " WARNING turnwise." in line:  # what the launched trainer warned about reaches the user too
            log.warning("%s", line.split(": ", 1)[-1])
    manifest = json.loads((Path(cfg.output) / "train.manifest.json").read_text(encoding="utf-8"))
    return {**_losses(manifest.get("log_history", [])), "metrics": manifest.get("metrics", {}),
            "data": manifest.get("data", {}), "summary": "", "log_history": manifest.get("log_history", [])}


def _train(ctx: StageContext, cfg: TrainConfig, kind: str) -> dict[str, Any]:
    return _launch(ctx, cfg, kind) if ctx.settings.accelerate else _train_here(ctx, cfg, kind)


def _loss_line(logged: dict[str, Any]) -> str:
    loss, steps = logged["loss"], logged["metrics"].get("global_step", "?")
    line = f"loss {loss[0]:.2f} → {loss[-1]:.2f} in {steps} steps" if loss else f"{steps} steps"
    return line + (f"; data: {logged['summary']}" if logged["summary"] else "")


def _numbers(logged: dict[str, Any]) -> dict[str, Any]:
    return {"loss": logged["loss"], "reward_accuracy": logged["rewards/accuracies"],
            "global_step": logged["metrics"].get("global_step")}


def train_sft(ctx: StageContext) -> StageResult:
    logged = _train(ctx, core_config(ctx, SFTTrainConfig, ctx.conversation_file("data")), "sft")
    roles = ", ".join(ctx.settings.train_on)
    turns = f"the last {roles} turn" if ctx.settings.loss_turns == "last" else f"{roles} turns"
    return StageResult(ctx.outputs(), f"{_loss_line(logged)} ({turns})",
                       counts=logged["data"], numbers=_numbers(logged))


def train_ask(ctx: StageContext) -> StageResult:
    logged = _train(ctx, core_config(ctx, AskTrainConfig, ctx.conversation_file("data")), "ask")
    return StageResult(ctx.outputs(), f"{_loss_line(logged)} (user turns, roles flipped)", counts=logged["data"],
                       numbers=_numbers(logged))


def train_dpo(ctx: StageContext) -> StageResult:
    s = ctx.settings
    sources = merge_pairs(ctx, ctx.output("pairs"), only=s.only)
    if not sum(sources.values()):
        raise TurnwiseError(f"stage {ctx.name}: no preference pairs to train on"
                            + (f" of the kinds {s.only}" if s.only else ""))
    cfg = core_config(ctx, DPOTrainConfig, ctx.output("pairs"), data_format="trl-pref", skip_invalid=False)
    logged = _train(ctx, cfg, "dpo")
    accuracy = logged["rewards/accuracies"]
    from_ = " + ".join(f"{n} {label}" for label, n in sources.items())
    summary = (f"{sum(sources.values())} pairs ({from_}), β {s.beta:g}, λ {s.sft_weight:g}: {_loss_line(logged)}"
               + (f", reward accuracy {accuracy[-1]:.0%}" if accuracy else ""))
    return StageResult(ctx.outputs(), summary, counts={**logged["data"], **sources}, numbers=_numbers(logged))


def train_rm(ctx: StageContext) -> StageResult:
    sources = merge_pairs(ctx, ctx.output("pairs"))
    if not sum(sources.values()):
        raise TurnwiseError(f"stage {ctx.name}: no preference pairs to train on")
    cfg = core_config(ctx, RMTrainConfig, ctx.output("pairs"), data_format="trl-pref", skip_invalid=False)
    logged = _train(ctx, cfg, "rm")
    metrics = logged["metrics"]
    accuracy, low_high = metrics.get("heldout_pair_accuracy"), metrics.get("heldout_pair_accuracy_ci95")
    from_ = " + ".join(f"{n} {label}" for label, n in sources.items())
    held = (f", held-out pair accuracy {accuracy:.0%} [{low_high[0]:.0%}, {low_high[1]:.0%}] on "
            f"{metrics.get('heldout_pairs')} pairs" if accuracy is not None else ", no pair held out")
    return StageResult(ctx.outputs(), f"{sum(sources.values())} pairs ({from_}): {_loss_line(logged)}{held}",
                       counts={**logged["data"], **sources},
                       numbers={**_numbers(logged), **{k: v for k, v in metrics.items() if k.startswith("heldout")}})


def train_online(ctx: StageContext) -> StageResult:
    user = ctx.model_path("user") if "user" in ctx.models else None
    cfg = core_config(ctx, OnlineTrainConfig, ctx.conversation_file("data"), user_model=user)
    logged = _train(ctx, cfg, "online")
    rewards = [e["reward"] for e in logged.get("log_history", []) if "reward" in e]
    user = "the records' own later turns" if cfg.user_mode == "replay" else f"{cfg.user_mode} {cfg.user_model}"
    line = (f"{logged['metrics'].get('global_step', '?')} GRPO steps, {cfg.num_generations} candidates a prompt, "
            f"{cfg.turns} turns each against {user}")
    if rewards:
        line += f"; mean reward {rewards[0]:.3f} → {rewards[-1]:.3f}"
    return StageResult(ctx.outputs(), line, counts=logged["data"],
                       numbers={"reward": rewards, "global_step": logged["metrics"].get("global_step")})


def merge_pairs(ctx: StageContext, target: Path, only: list[str] | None = None) -> dict[str, int]:
    """Every input's pairs (of the kinds ``only`` names, if given) in one trl-pref file, each row's meta cut to
    ``{source, kind}`` (one shape for pyarrow); the pairs per source. The settings' ``data_format``,
    ``skip_invalid`` and ``max_rows`` apply to each input file."""
    from turnwise.data.formats import read_records, write_records
    from turnwise.data.schema import PreferencePair

    s, pairs, sources = ctx.settings, [], {}
    for label, path in zip(ctx.labels["pairs"], ctx.inputs["pairs"], strict=True):
        source = Path(label.split(":")[0]).stem if ":" not in label else label.split(":")[0]
        items, report = read_records(path, s.data_format, skip_invalid=s.skip_invalid) if path.stat().st_size \
            else (iter(()), None)
        rows = []
        for item in items:
            if not isinstance(item, PreferencePair):
                raise TurnwiseError(f"{path}: expected preference pairs (trl-pref), found a conversation "
                                    f"(record {item.id!r})")
            rows.append(PreferencePair(item.id, item.prompt, item.chosen, item.rejected,
                                       {"source": source, "kind": pair_kind(item, source)}))
            if s.max_rows and len(rows) >= s.max_rows:
                break
        if report is not None and report.total:
            ctx.say(f"{path}: {report.summary()}")
        rows = [p for p in rows if only is None or p.meta["kind"] in only]
        pairs += rows
        sources[source] = sources.get(source, 0) + len(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_records(target, pairs, "trl-pref")
    return sources


def pair_kind(pair: Any, source: str) -> str:
    """A pair's kind: its CaPO strategy, ``best-of-n`` for best-of-N pairs, else its source."""
    if "strategy" in pair.meta:
        return pair.meta["strategy"]
    return "best-of-n" if "chosen_index" in pair.meta else pair.meta.get("source", source)


_DATA = Port("data", "conversations: a file in any format turnwise reads, or a stage's dialogue records")
_BASE = Port("base", "the model to start from: a hub id, a folder, or a model a stage trained")
_MODEL = Output("model", "model", "the trained model folder (from_pretrained-loadable), its card, config and "
                "manifest", folder=True)
_COMMON = {"models": (_BASE,), "provided": PROVIDED, "torch": True, "primary": "base", "positional": False,
           "spec_options": False}

SFT = Stage("train_sft", "Multi-turn SFT: the loss on every assistant turn, all turns kept, any chat template.",
            SFTStageSettings, train_sft, inputs=(_DATA,), outputs=(_MODEL,), **_COMMON)
ASK = Stage("train_ask", "A user simulator (Parrot-Ask): SFT with the loss on the user turns, roles flipped.",
            AskStageSettings, train_ask, inputs=(_DATA,), outputs=(_MODEL,), **_COMMON)
DPO = Stage("train_dpo", "DPO on multi-turn preference pairs, plus λ × the SFT loss on the chosen answer.",
            DPOStageSettings, train_dpo,
            inputs=(Port("pairs", "preference pairs (trl-pref): capo, bestofn or files", many=True, flag="--data"),),
            outputs=(_MODEL, Output("pairs", "pairs.jsonl", "the pairs it trained on, from every input")), **_COMMON)
ONLINE = Stage("train_online", "Online multi-turn GRPO: candidates played out against a user simulator, rewarded per "
               "turn by a checker, a judge or a reward model.", OnlineStageSettings, train_online, inputs=(_DATA,),
               outputs=(_MODEL, Output("rollouts", "model/rollouts.jsonl", "every rollout: messages, who wrote "
                                       "each, per-turn rewards")),
               **{**_COMMON, "models": (_BASE, Port("user", "the user simulator (user_mode ask or prompted): an ask "
                                                     "model a stage trained, a folder or a hub id", required=False)),
                  "provided": {**PROVIDED, "user_model": "<models.user>"}})
RM = Stage("train_rm", "A reward model on multi-turn preference pairs (TRL's RewardTrainer); held-out pair accuracy.",
           RMStageSettings, train_rm,
           inputs=(Port("pairs", "preference pairs (trl-pref): capo, bestofn or files", many=True, flag="--data"),),
           outputs=(_MODEL, Output("pairs", "pairs.jsonl", "the pairs it trained on (held-out ones included)")),
           **_COMMON)
