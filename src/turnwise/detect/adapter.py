"""The ``detect`` stage: label every user turn after the first as dependent on its history or standalone.

    turnwise detect dialogues.jsonl detections.jsonl                               # the default detector
    turnwise detect dialogues.jsonl detections.jsonl --method rules                # the cue rules alone
    turnwise detect dialogues.jsonl detections.jsonl --judge-model M --base-url http://127.0.0.1:8000/v1
    turnwise detect train detector/ --data canard_dev --data mudoco_news --data my_labels.jsonl

    - name: detect                    # in a recipe
      kind: detect
      inputs: {dialogues: simulate}
      models: {judge: judge}          # optional
      settings: {lang: en}

``method``: ``learned`` (a logistic regression over MiniLM embeddings and the cues, :mod:`turnwise.detect.learned`;
the package ships one, ``detector_model`` loads another) or ``rules`` (the hand-set cue weights); with a ``judge``
model an LLM judge confirms or rejects the decision of the turns ``judge_on`` selects (``rules+judge`` and
``learned+judge`` insist on one). Writes ``OUT`` (per conversation ``turns: [{index, dependent, confidence,
evidence}]``) and ``OUT.manifest.json``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from turnwise.detect.judge import JudgeConfig
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import percent, replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage

CONVERSATIONS = "conversations: a file in any format turnwise reads, or a stage's dialogue records"


@dataclass
class DetectSettings:
    """Settings of ``detect``.

    Attributes:
        method: ``learned``, ``rules``, ``learned+judge`` or ``rules+judge`` (the last two need a judge model).
        detector_model: a folder written by ``turnwise detect train`` (default: the model the package ships).
        threshold: the learned detector's probability above which a turn is dependent (default: the model's, 0.5);
            raise it for precision-leaning CaPO data.
        batch_size: conversations labelled at once (the learned detector embeds them in one pass).
        lang: cue (and judge prompt) language: ``en`` or ``zh`` for every conversation, or ``auto`` (per
            conversation, from its user turns).
        judge: how the LLM judge is asked, when the stage has a ``judge`` model (else the cues decide alone).
        limit: label only the first N conversations (0 = all).
        input_format: the input's format (openai, sharegpt, ...); detected from the first record when null.
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        template_dir: a folder of prompt templates searched before the shipped ones (``detect/judge.en.jinja``).
        max_in_flight: conversations in work at once.
    """

    method: str = "learned"
    detector_model: str | None = None
    threshold: float | None = None
    batch_size: int = 64
    lang: str = "auto"
    judge: JudgeConfig = field(default_factory=JudgeConfig, metadata={"cli": ""})
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    template_dir: str | None = None
    max_in_flight: int = 64

    def __post_init__(self) -> None:
        from turnwise.errors import ConfigError

        if self.lang not in ("auto", "en", "zh"):
            raise ConfigError(f"lang must be auto, en or zh, got {self.lang!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.method == "rules" and (self.detector_model or self.threshold is not None):
            raise ConfigError("detector_model and threshold belong to the learned detector, not to method rules")


METHODS = ("learned", "rules", "learned+judge", "rules+judge")


def make_detector(s: DetectSettings) -> Any:
    """The detector ``s`` asks for: the cue rules, or a learned model (the shipped one unless named)."""
    from turnwise.detect import RuleDetector
    from turnwise.detect.learned import LearnedDetector

    if s.method.startswith("rules"):
        return RuleDetector()
    return LearnedDetector.load(s.detector_model).with_threshold(s.threshold)


def detect(ctx: StageContext) -> StageResult:
    from turnwise.detect import DetectConfig, run_detect
    from turnwise.detect.stage import detector_name
    from turnwise.errors import ConfigError
    from turnwise.prompts import search_path
    from turnwise.records import read_stage_output

    s = ctx.settings
    if s.method.endswith("+judge") and "judge" not in ctx.models:
        raise ConfigError(f"method {s.method} needs a judge model (--judge-model, or models: {{judge: ...}})")
    conversations = ctx.conversations("dialogues")
    config = DetectConfig(detector=make_detector(s), lang=None if s.lang == "auto" else s.lang,
                          judge=s.judge if "judge" in ctx.models else None, search_path=search_path(s.template_dir))
    ctx.total(len(conversations))

    async def go() -> dict[str, Any]:
        async with ctx.open_models("judge") as (judge,):
            with ctx.records("detections") as run:
                result = await run_detect(conversations, run.store, config, judge, max_in_flight=s.max_in_flight,
                                          on_record=lambda _: ctx.advance(), batch_size=s.batch_size)
                run.cost = result.cost.to_dict()
                run.fields["turns"] = {"labelled": result.turns, "dependent": result.dependent,
                                       "judged": result.judged, "judge_failures": result.judge_failures}
        return result.cost.to_dict()

    cost = asyncio.run(go())
    records = read_stage_output(ctx.output("detections"))
    turns = [t for r in records for t in r["turns"]]
    dependent = sum(t["dependent"] for t in turns)
    judged = sum(t["decided_by"] == "judge" for t in turns)
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "filtered", "failed")}
    read = replies(records)
    summary = (f"context-dependent: {dependent} of {len(turns)} follow-up turns ({percent(dependent, len(turns))}) in "
               f"{len(records)} conversations ({detector_name(config.detector)})"
               + (f"; {judged} decided by the judge; {replies_line(read)}" if "judge" in ctx.models else ""))
    example = next((e["raw"] for t in turns for e in t["evidence"] if e.get("cue") == "judge" and e.get("raw")), None)
    return StageResult(ctx.outputs(), summary, counts=counts, cost=cost,
                       numbers={"turns": len(turns), "dependent": dependent, "judged": judged, "replies": read,
                                **({"example": short(example)} if example else {})})


def replies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The judge's verdicts that could be read, and why the others could not."""
    outcomes = [("verdict" in e, e.get("error", "")) for r in records for t in r["turns"] for e in t["evidence"]
                if e.get("cue") == "judge"]
    return {"judge verdict": tally(outcomes)}


STAGE = Stage("detect", "Label every follow-up user turn as context-dependent or standalone (learned or rules; judge).",
              DetectSettings, detect, inputs=(Port("dialogues", CONVERSATIONS),),
              models=(Port("judge", "an LLM judge that confirms the cues", required=False),),
              outputs=(Output("detections", "detections.jsonl", "per conversation, a label for every follow-up turn"),))
