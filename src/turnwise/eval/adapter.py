"""The evaluation stages: answer a benchmark turn by turn with each model's own history, judge every turn, report.

    turnwise eval run question.jsonl runs/eval --model qwen=Qwen/Qwen2.5-7B-Instruct --base-url URL \\
        --judge-model gpt-4o --judge-base-url https://api.openai.com/v1 --judge-api-key-env OPENAI_API_KEY
    turnwise eval answer mt-bench_extended.jsonl answers.jsonl --model ./my-model --backend local
    turnwise eval judge answers.jsonl judgements.jsonl --judge-model J --judge-base-url URL
    turnwise eval judge answers.jsonl pairs.jsonl --baseline base_answers.jsonl --judge-model J ...

    - name: eval                      # in a recipe: every role but judge is a model to evaluate, by its label
      kind: eval
      inputs: {benchmark: question.jsonl}
      models: {SFT: sft, SFT + DPO: dpo, judge: judge}

``eval`` (``turnwise eval run``) writes into its folder, per model ``answers-<label>.jsonl`` and
``judgements-<label>.jsonl`` (resumable, each with its manifest), and ``report/`` (``report.md``, ``report.json``,
``samples.jsonl``, ``report.html`` with the score by turn and the category radar). ``eval_answer`` and
``eval_judge`` run the two steps alone.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from turnwise.records import read_stage_output
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage

BENCHMARK = Port("benchmark", "a benchmark file: MT-Bench question.jsonl, MT-Eval, MT-Bench-101, or N-turn JSONL")


@dataclass
class AnswerSettings:
    """How the evaluated models answer.

    Attributes:
        benchmark: the file's benchmark: ``auto`` (from its first record), ``mt-bench``, ``mt-eval``,
            ``mt-bench-101``, ``multichallenge`` or ``turns`` (docs/eval.md).
        references: MT-Bench references: ``auto`` (FastChat's reference_answer/gpt-4.jsonl beside the questions),
            ``question``, ``none``, or a FastChat answer file.
        limit: only the first N dialogues (0 = all).
        temperature: one temperature for every answer; null = FastChat's per category (0.7 writing/roleplay, 0
            math/coding/reasoning/extraction, 0.1 stem/humanities, else 0.7).
        max_tokens: most new tokens per answer.
        top_p: nucleus sampling mass.
        seed: sampling seed, where the backend honours one.
        attempts: answers per dialogue (records ``ID#k``; attempt k samples with seed ``seed + k - 1``, 0 when no
            seed is set, so that each is its own sample and its own cache entry); MultiChallenge reports any-of-N
            and all-of-N over them.
        max_in_flight: dialogues in progress at once.
    """

    benchmark: str = "auto"
    references: str = "auto"
    limit: int = 0
    temperature: float | None = None
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None
    attempts: int = 1
    max_in_flight: int = 256

    def answer_config(self, name: str) -> Any:
        from turnwise.eval.answer import AnswerConfig

        return AnswerConfig(name=name, temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p,
                            seed=self.seed)

    def items(self, path: Any) -> list[Any]:
        from turnwise.eval.answer import with_attempts
        from turnwise.eval.benchmarks import load_benchmark

        if self.attempts < 1:
            from turnwise.errors import ConfigError

            raise ConfigError(f"attempts must be at least 1, got {self.attempts}")
        items = load_benchmark(path, self.benchmark, references=self.references, limit=self.limit or None)
        return with_attempts(items, self.attempts)


@dataclass
class JudgeSettings:
    """How the judge grades.

    Attributes:
        lang: judge prompt language: ``auto`` (from the dialogue's first turn), ``en`` or ``zh``.
        judge_attempts: tries per verdict (the first at temperature 0).
        judge_max_tokens: most tokens of one judge reply.
        template_dir: a folder of prompt templates searched before the shipped ones (``eval/single.en.jinja``,
            ``eval/pairwise.en.jinja``...).
        max_in_flight: dialogues judged at once.
        structured: hold the judge's replies to JSON by constrained decoding (a grammar on the local backend,
            ``response_format`` on an OpenAI-compatible server) and read them as JSON, instead of ``[[rating]]``.
    """

    lang: str = "auto"
    judge_attempts: int = 3
    judge_max_tokens: int = 2048
    template_dir: str | None = None
    max_in_flight: int = 64
    structured: bool = False

    def __post_init__(self) -> None:
        from turnwise.prompts import resolve_lang

        resolve_lang(self.lang)  # refuse an unknown language before anything runs

    def judge(self, model: Any) -> Any:
        from turnwise.judge.core import Judge, RetryPolicy
        from turnwise.prompts import search_path

        return Judge(model, RetryPolicy(attempts=self.judge_attempts, max_tokens=self.judge_max_tokens),
                     search_path(self.template_dir), self.structured)

    def judge_config(self) -> Any:
        from turnwise.eval.judge import EvalJudgeConfig

        return EvalJudgeConfig(lang=self.lang)


@dataclass
class EvalAnswerSettings(AnswerSettings):
    """Settings of ``eval_answer``: how the model answers, and its name.

    Attributes:
        name: the model's name in records and reports (default: the model's folder name or id).
    """

    name: str | None = None


@dataclass
class EvalSettings(AnswerSettings, JudgeSettings):
    """Settings of ``eval``: how the models answer (:class:`AnswerSettings`) and how the judge grades
    (:class:`JudgeSettings`); ``max_in_flight`` is the dialogues in progress at once, answered and judged."""


def slug(label: str) -> str:
    """A label as a file-name part: ``SFT + DPO`` → ``sft-dpo``."""
    return re.sub(r"[^a-z0-9_.]+", "-", label.lower()).strip("-") or "model"


def evaluated(ctx: StageContext) -> list[str]:
    """The labels of the models a stage evaluates: every role but the judge."""
    return [role for role in ctx.models if role != "judge"]


def replies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The judge's verdicts that could be read: single ratings and pairwise verdicts (a turn the model did not
    answer is no judge call)."""
    out: dict[str, list[tuple[bool, str]]] = {}
    for record in records:
        pairwise = record.get("mode") == "pairwise"
        for entry in record.get("outcomes" if pairwise else "scores", []):
            if entry.get("failure") == "answer":
                continue
            reason = (entry.get("reason") or "").split(": ", 1)[-1]
            if pairwise:  # one call per order
                out.setdefault("pairwise verdict", []).extend((v is not None, reason) for v in entry["verdicts"])
            else:
                kind = "YES/NO verdict" if "pass_criteria" in entry else "rating"
                out.setdefault(kind, []).append((entry.get("failure") != "judge", reason))
    return {name: tally(found) for name, found in out.items()}


def example(records: list[dict[str, Any]]) -> str | None:
    """The first judge reply kept as written."""
    for record in records:
        for entry in record.get("scores", record.get("outcomes", [])):
            text = entry.get("text") or (entry.get("texts") or [None])[0]
            if text:
                return short(text)
    return None


def _costs_line(cost: dict[str, Any], what: str) -> str:
    return f"{what}: calls {cost.get('calls', 0)}, cached {cost.get('cached', 0)}, failed {cost.get('failed', 0)}"


def eval_answer(ctx: StageContext) -> StageResult:
    from turnwise.eval.answer import check_same_model, run_answer
    from turnwise.eval.benchmarks import describe_items

    s = ctx.settings
    items = s.items(ctx.input("benchmark"))
    name = s.name or ctx.models["model"].name.rstrip("/").split("/")[-1]
    config = s.answer_config(name)
    check_same_model(ctx.output("answers"), name)
    ctx.total(len(items))

    async def go() -> dict[str, Any]:
        async with ctx.open_models("model") as (model,):
            with ctx.records("answers", {"benchmark": describe_items(items), "answer": config.to_dict()}) as run:
                totals = await run_answer(items, model, run.store, config, max_in_flight=s.max_in_flight,
                                          on_record=lambda _: ctx.advance())
                run.cost = totals.cost.to_dict()
        return totals.cost.to_dict()

    cost = asyncio.run(go())
    return StageResult(ctx.outputs(), f"{len(items)} dialogues answered by {name}; {_costs_line(cost, 'answers')}",
                       cost=cost)


def eval_judge(ctx: StageContext) -> StageResult:
    from turnwise.eval.answer import load_answers
    from turnwise.eval.judge import run_judge
    from turnwise.eval.pairwise import run_pairwise

    s = ctx.settings
    records = load_answers(ctx.input("answers"), ctx.input("questions") if ctx.has_input("questions") else None)
    baseline = {r["id"]: r for r in load_answers(ctx.input("baseline"))} if ctx.has_input("baseline") else None
    ctx.total(len(records))

    async def go() -> dict[str, Any]:
        async with ctx.open_models("judge") as (model,):
            judge, config = s.judge(model), s.judge_config()
            with ctx.records("judgements", {"judge": config.to_dict()}) as run:
                kwargs = {"max_in_flight": s.max_in_flight, "on_record": lambda _: ctx.advance()}
                if baseline is None:
                    totals = await run_judge(records, judge, run.store, config, **kwargs)
                else:
                    totals = await run_pairwise(records, baseline, judge, run.store, config, **kwargs)
                run.cost = totals.cost.to_dict()
        return totals.cost.to_dict()

    cost = asyncio.run(go())
    what = "compared with the baseline in both orders" if baseline is not None else "graded"
    judged = read_stage_output(ctx.output("judgements"))
    read, text = replies(judged), example(judged)
    return StageResult(ctx.outputs(), f"{len(records)} dialogues {what}; {_costs_line(cost, 'judge')}; "
                       f"{replies_line(read)}", cost=cost,
                       numbers={"replies": read, **({"example": text} if text else {})})


def evaluate(ctx: StageContext) -> StageResult:
    from turnwise.eval.report import build_report, write_report

    s = ctx.settings
    items = s.items(ctx.input("benchmark"))
    labels = evaluated(ctx)
    ctx.total(len(items) * len(labels))
    costs = {label: asyncio.run(_evaluate_one(ctx, label, items)) for label in labels}
    records = [r for label in labels for r in read_stage_output(ctx.path(f"judgements-{slug(label)}.jsonl"))]
    report = build_report(records)
    write_report(records, ctx.path("report"), title=f"turnwise eval: {ctx.name}", report=report,
                 sources=[str(ctx.path(f"judgements-{slug(label)}.jsonl")) for label in labels])
    means = {row["model"]: (row["overall"] or {}).get("mean") for row in report["single"]}
    line = "; ".join(f"{m}: {v:.2f}" if v is not None else f"{m}: —" for m, v in means.items())
    read, text = replies(records), example(records)
    return StageResult(ctx.outputs(), f"mean judge score (1–10) over {len(items)} dialogues: {line}; "
                       f"{replies_line(read)}", counts={"dialogues": len(items)}, cost=costs,
                       numbers={"means": means, "replies": read, **({"example": text} if text else {})})


async def _evaluate_one(ctx: StageContext, label: str, items: list[Any]) -> dict[str, Any]:
    """Answer and judge with one model (judging starts as soon as a dialogue is answered)."""
    from turnwise.eval.answer import check_same_model
    from turnwise.eval.benchmarks import describe_items
    from turnwise.eval.pipeline import run_eval

    s = ctx.settings
    answer, judge_config = s.answer_config(label), s.judge_config()
    files = [f"{what}-{slug(label)}.jsonl" for what in ("answers", "judgements")]
    check_same_model(ctx.path(files[0]), label)
    common = {"model": label, "benchmark": describe_items(items)}
    async with ctx.open_models(label, "judge") as (model, judge_model):
        with (ctx.records(files[0], {**common, "answer": answer.to_dict()}) as answered,
              ctx.records(files[1], {**common, "judge": judge_config.to_dict()}) as judged):
            ctx.advance(-answered.store.resumed)  # progress counts judgements
            totals = await run_eval(items, model, s.judge(judge_model), answered.store, judged.store, answer,
                                    judge_config, max_in_flight=s.max_in_flight, on_judgement=lambda _: ctx.advance())
            answered.cost, judged.cost = totals.answer.cost.to_dict(), totals.judge.cost.to_dict()
    return {"answer": answered.cost, "judge": judged.cost}


def _check(settings: Any, models: dict[str, str]) -> list[str]:
    if not [role for role in models if role != "judge"]:
        return ["models: name at least one model to evaluate (--model LABEL=MODEL; in a recipe, models: "
                "{LABEL: MODEL})"]
    return []


_JUDGE = Port("judge", "the LLM judge", shared=False)
ANSWER = Stage("eval_answer", "Answer every dialogue turn by turn with the model's own history (or the gold history).",
               EvalAnswerSettings, eval_answer, inputs=(BENCHMARK,), models=(Port("model", "the model to evaluate"),),
               outputs=(Output("answers", "answers.jsonl", "one record per dialogue, every turn answered"),),
               primary="model")
JUDGE = Stage("eval_judge", "Grade every judged turn 1–10 (MultiChallenge: YES/NO), or compare with a baseline in both "
              "orders.", JudgeSettings,
              eval_judge, inputs=(Port("answers", "answer records written by eval_answer, or MultiChallenge responses "
                                                  "in the published layout"),
                                  Port("baseline", "a baseline's answer records: compare pairwise (both orders) "
                                                   "instead of grading", required=False),
                                  Port("questions", "MultiChallenge's benchmark_questions.jsonl, for a published "
                                                    "responses file (default: beside it)", required=False)),
              models=(_JUDGE,),
              outputs=(Output("judgements", "judgements.jsonl", "one record per dialogue, a verdict per turn"),))
STAGE = Stage("eval", "Answer held-out dialogues turn by turn with each model's own history; judge every turn.",
              EvalSettings, evaluate, inputs=(BENCHMARK,), models=(_JUDGE,), free_models=True,
              outputs=(Output("results", "report/report.md", "the report's Markdown tables"),
                       Output("html", "report/report.html", "the report with plots")),
              out_dir=True, check=_check)
