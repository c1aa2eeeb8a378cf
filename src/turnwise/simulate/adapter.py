"""The ``simulate`` stage: a user simulator and an assistant grow seed first turns into multi-turn dialogues.

    turnwise simulate --seeds seeds.txt -o dialogues.jsonl --turns 8 \\
        --user-model runs/ask --user-backend local \\
        --assistant-model Qwen/Qwen2.5-7B-Instruct --assistant-base-url http://127.0.0.1:8000/v1

    - name: simulate                  # in a recipe
      kind: simulate
      inputs: {seeds: data}
      models: {user: ask, assistant: sft}
      settings: {turns: 6, assistant_settings: {temperature: 0}}   # --assistant-temperature 0

Writes ``OUT`` (one dialogue per seed: ``{id, status, messages, meta: {turns, filters, seed, cost, finished_by}}``)
and ``OUT.manifest.json`` (turns per dialogue, filter counts, the share of context-dependent user turns).
Settings: :class:`~turnwise.simulate.engine.SimulateConfig`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.simulate.ask_data import AskDataConfig
from turnwise.simulate.engine import SimulateConfig
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import is_stage_output, merge_costs, read_conversations, replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage

SEEDS = ("first turns: a conversation file in any format turnwise reads (its first user turn), a stage's dialogue "
         "records, or a .txt file (one per line)")


def read_seed_list(ctx: StageContext, path: Path) -> list[Any]:
    """The first user turn of each conversation (or stage record, or text line), up to the settings' ``limit``."""
    from turnwise.simulate import Seed, read_seeds

    s = ctx.settings
    if is_stage_output(path) and s.input_format is None:
        seeds = [Seed(c.id, c.user_turns[0], c.system, dict(c.meta)) for c in read_conversations(path)[0]]
    else:
        found, report = read_seeds(path, s.input_format, skip_invalid=s.skip_invalid)
        seeds = list(found)
        if report.total:
            ctx.skipped["seeds"] = report
            ctx.say(f"{path}: {report.summary()}")
    return seeds[: s.limit] if s.limit else seeds


def simulate(ctx: StageContext) -> StageResult:
    from turnwise.records import read_stage_output
    from turnwise.simulate import run_simulate, summarize
    from turnwise.simulate.stats import count_dependent

    s = ctx.settings
    seeds = read_seed_list(ctx, ctx.input("seeds"))
    ctx.total(len(seeds))

    # Each dialogue's context-dependent turns are counted as it is written: about 1 ms of detector per
    # dialogue, on a loop that is waiting on the network, instead of all of them after the last answer.
    dependent: dict[str, tuple[int, str]] = {}

    def written(record: dict[str, Any]) -> None:
        if record["status"] == "ok":
            dependent[record["id"]] = count_dependent(record["messages"])
        ctx.advance()

    async def go() -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
        async with ctx.open_models("user", "assistant") as (user, assistant):
            with ctx.records("dialogues") as run:
                result = await run_simulate(seeds, user, assistant, run.store, s, on_record=written)
                run.cost = result.cost()
                records = read_stage_output(run.store.path)
                stats = summarize(records, dependent)  # once: the manifest's and the summary line's
                run.fields["stats"] = stats.to_dict()
        return result.cost(), records, stats

    cost, records, stats = asyncio.run(go())
    read = replies(records)
    example = next((r["messages"][2]["content"] for r in records if len(r["messages"]) > 2), None)
    by_role = "; ".join(f"{role}: calls {c['calls']}, cached {c['cached']}, failed {c['failed']}, tokens "
                        f"{c['prompt_tokens']}+{c['completion_tokens']}" for role, c in cost.items())
    return StageResult(ctx.outputs(), f"{stats.summary()}; {by_role}; {replies_line(read)}", counts=dict(stats.status),
                       cost={**merge_costs(*cost.values()), "by_role": cost},
                       numbers={**stats.to_dict(), "replies": read, **({"example": short(example)} if example else {})})


def replies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The simulated user turns the filters let through (a rejected one is generated again) and the assistant's
    non-empty answers."""
    user: list[tuple[bool, str]] = []
    for r in records:
        user += [(True, "")] * max(0, sum(m["role"] == "user" for m in r["messages"]) - 1)
        user += [(False, reason) for reason, n in r["meta"].get("filters", {}).items() for _ in range(n)]
    answers = [(bool(m["content"].strip()), "empty") for r in records for m in r["messages"]
               if m["role"] == "assistant"]
    return {"user turn": tally(user), "answer": tally(answers)}


STAGE = Stage("simulate", "Self-play: a user simulator and an assistant grow seed first turns into dialogues.",
              SimulateConfig, simulate, inputs=(Port("seeds", SEEDS),),
              models=(Port("user", "the user simulator (an ask model, or any model with mode: prompted)"),
                      Port("assistant", "the assistant")),
              outputs=(Output("dialogues", "dialogues.jsonl", "one dialogue per seed"),), positional=False)


@dataclass
class AskDataSettings(AskDataConfig):
    """Settings of ``ask_data``: how dialogues become ask-model examples
    (:class:`~turnwise.simulate.ask_data.AskDataConfig`), plus the files.

    Attributes:
        to: the output format, ``openai`` or ``trl-sft``.
        input_format: the input's format (openai, sharegpt, ...); detected from the first record when null.
        skip_invalid: skip malformed input records and count them, instead of stopping.
    """

    to: str = "openai"
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False


def ask_data(ctx: StageContext) -> StageResult:
    """Flip real dialogues into the ask model's training set (its loss goes on the flipped assistant turns)."""
    from turnwise.simulate.ask_data import write_ask_dataset

    s = ctx.settings
    report = write_ask_dataset(ctx.input("dialogues"), ctx.output("ask_data"), s, fmt=s.input_format, to=s.to,
                               skip_invalid=s.skip_invalid)
    return StageResult(ctx.outputs(), f"{ctx.input('dialogues')} ({report.fmt}) → {ctx.output('ask_data')} ({s.to}, "
                       f"roles flipped): {report.summary()}", counts={"read": report.read, "written": report.written,
                                                                     "skipped": report.total})


ASK_DATA = Stage("ask_data", "Flip real dialogues into ask-model training data (Parrot-Ask): train it with the loss on "
                 "assistant turns.", AskDataSettings, ask_data,
                 inputs=(Port("dialogues", "real dialogues: a file in any format turnwise reads"),),
                 outputs=(Output("ask_data", "ask.jsonl", "the dialogues with roles flipped, the simulator's prompt "
                                                          "first"),))
