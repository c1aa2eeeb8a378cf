"""The ``eval_sharded`` stage: a single-turn task answered whole, concatenated and revealed shard by shard.

    turnwise eval sharded ../shared/data/gsm8k/test.jsonl runs/sharded.jsonl --model M --limit 50 --samples 3

    - name: lost_in_conversation      # in a recipe, after training
      kind: eval_sharded
      inputs: {tasks: {file: ../shared/data/gsm8k/test.jsonl}}
      models: {model: dpo}
      settings: {limit: 50, samples: 3}

Writes ``OUT`` (one record per task, setting and sample: the user turns, every answer, the number extracted from
each, whether it is right, the run's score), and beside it ``<stem>.sharded.md`` (accuracy, aptitude and
unreliability per setting, with 95% bootstrap intervals over tasks; :mod:`turnwise.eval.sharded`) and
``<stem>.sharded.json`` (the same numbers).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage


@dataclass
class ShardedSettings:
    """Settings of ``eval_sharded``.

    Attributes:
        limit: the first N tasks of the file (0 = all).
        samples: runs per task and setting (attempt k samples with seed ``seed + k``); aptitude and unreliability
            need several.
        settings: comma-separated, of ``full`` (one turn), ``concat`` (the shards as one list) and ``sharded``
            (one shard per turn).
        temperature: the answering model's sampling temperature (the paper: 1.0).
        max_tokens: most new tokens per answer.
        seed: the seed of the first sample.
        max_in_flight: runs in progress at once.
    """

    limit: int = 0
    samples: int = 3
    settings: str = "full,concat,sharded"
    temperature: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    max_in_flight: int = 64

    def __post_init__(self) -> None:
        from turnwise.errors import ConfigError
        from turnwise.eval.sharded import SETTINGS

        unknown = [s for s in self.chosen if s not in SETTINGS]
        if unknown or not self.chosen:
            raise ConfigError(f"settings must name some of {', '.join(SETTINGS)}, got {self.settings!r}")
        if self.samples < 1:
            raise ConfigError(f"samples must be at least 1, got {self.samples}")

    @property
    def chosen(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.settings.split(",") if s.strip())


def eval_sharded(ctx: StageContext) -> StageResult:
    from turnwise.eval.sharded import ShardedConfig, markdown, read_gsm8k, run_sharded, shard_with_model, summarize
    from turnwise.models.base import GenerationSettings
    from turnwise.records import atomic_write_text, read_stage_output
    from turnwise.stage.runner import Cost

    s = ctx.settings
    tasks = read_gsm8k(ctx.input("tasks"), s.limit or None)
    generation = GenerationSettings(temperature=s.temperature, max_tokens=s.max_tokens, seed=s.seed)
    name = ctx.models["model"].name.rstrip("/").split("/")[-1]
    config = ShardedConfig(samples=s.samples, settings=s.chosen, generation=generation, name=name)
    ctx.total(len(tasks) * len(config.settings) * config.samples)

    roles = ("model", *(r for r in ("simulator", "sharder") if r in ctx.models))

    async def go() -> dict[str, Any]:
        nonlocal tasks
        async with ctx.open_models(*roles) as opened:
            models = dict(zip(roles, opened, strict=True))
            split: dict[str, Any] = {"by rule": len(tasks)}
            sharding = Cost()
            if "sharder" in models:  # verified LLM splits, the rule's where a split fails its checks
                tasks, split, sharding = await shard_with_model(tasks, models["sharder"],
                                                                GenerationSettings(temperature=0.0, max_tokens=512))
            with ctx.records("runs", {"tasks": len(tasks), "settings": list(config.settings), "samples":
                                      config.samples, "split": split,
                                      "said": "simulator" if "simulator" in models else "verbatim"}) as run:
                cost = await run_sharded(tasks, models["model"], run.store, config, max_in_flight=s.max_in_flight,
                                         on_record=lambda _: ctx.advance(), simulator=models.get("simulator"))
                cost += sharding
                run.cost = cost.to_dict()
        return cost.to_dict()

    cost = asyncio.run(go())
    records = read_stage_output(ctx.output("runs"))
    summary = summarize(records)
    atomic_write_text(ctx.output("report"), markdown(summary, name))
    atomic_write_text(ctx.output("summary"), json.dumps(summary, indent=2) + "\n")
    line = "; ".join(f"{setting} {100 * row['accuracy']['mean']:.1f}%" for setting, row in summary["settings"].items()
                     if row["accuracy"]["mean"] is not None)
    return StageResult(ctx.outputs(), f"{len(tasks)} tasks × {config.samples} samples; accuracy {line}", cost=cost,
                       numbers={"accuracy": {k: v["accuracy"]["mean"] for k, v in summary["settings"].items()}})


STAGE = Stage("eval_sharded", "Answer single-turn tasks whole, concatenated and shard by shard; accuracy, aptitude "
              "and unreliability per setting (Laban et al. 2025).", ShardedSettings, eval_sharded,
              inputs=(Port("tasks", "a single-turn task file with checkable answers: GSM8K's test.jsonl "
                                    "(question, answer ending '#### n')"),),
              models=(Port("model", "the model to evaluate"),
                      Port("simulator", "a user simulator that says each shard in its own words (default: verbatim)",
                           required=False),
                      Port("sharder", "splits each task with an LLM, verified (default: the rule-based splitter)",
                           required=False)),
              outputs=(Output("runs", "sharded.jsonl", "one record per task, setting and sample, every answer scored"),
                       Output("report", "sharded.md", "accuracy, aptitude, unreliability per setting"),
                       Output("summary", "sharded.json", "the same numbers as JSON")),
              primary="model")
