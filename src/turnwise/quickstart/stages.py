"""The quickstart's own stages: its world (``toy_data``), a tiny model (``tiny_model``) and the verifiable
evaluation (``toy_eval``): every turn of the held-out dialogues checked against the world's facts, no judge.

    - name: data
      kind: toy_data
      settings: {train_dialogues: 200, prefs_dialogues: 200, dev_dialogues: 48, held_out: 96}
    - name: eval
      kind: toy_eval
      inputs: {benchmark: "data:held_out", dev: "data:dev"}
      models: {SFT: sft, SFT + CaPO-DPO: dpo_capo}
      settings: {against: SFT, teacher_forced: true}     # split: dev to choose settings on the dev split
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage


@dataclass
class ToyDataSettings:
    """Settings of ``toy_data``.

    Attributes:
        train_dialogues: toy dialogues for SFT (and the ask model).
        prefs_dialogues: dialogues about entity pairs SFT never saw together, to build preference pairs on
            (0 = none; the ``prefs`` output is then empty).
        held_out: dialogues about entity pairs no training saw together, for the evaluation.
        dev_dialogues: dialogues about other entity pairs no training saw together, to choose settings on
            (0 = none; the ``dev`` output is then empty).
        named_dialogues: SFT dialogues on the training pairs whose every question names its entity (no turn needs
            its history): the control for Parrot's data claim (0 = none; the ``named`` output is then empty).
        held_out_share: share of the entity pairs held out.
        prefs_share: share of the entity pairs kept for the preference dialogues.
        dev_share: share of the entity pairs kept for the dev dialogues.
        world: ``real`` (rivers and mountains a pretrained model knows) or ``invented`` (the same world under
            invented names and facts, so a pretrained model must learn them from the training dialogues).
        seed: which dialogues, and which pairs go where.
    """

    train_dialogues: int = 200
    prefs_dialogues: int = 200
    held_out: int = 96
    dev_dialogues: int = 0
    named_dialogues: int = 0
    held_out_share: float = 0.2
    prefs_share: float = 0.2
    dev_share: float = 0.1
    world: str = "real"
    seed: int = 0


def _check_data(settings: ToyDataSettings, models: dict[str, str]) -> list[str]:
    from turnwise.quickstart.world import WORLDS

    return [] if settings.world in WORLDS else [f"settings.world: {settings.world!r} is not one of "
                                                 f"{', '.join(WORLDS)}"]


def toy_data(ctx: StageContext) -> StageResult:
    """Write the train, preference and held-out dialogues (ShareGPT, then OpenAI) and the held-out scripts."""
    from turnwise.data.formats import read_records, write_records
    from turnwise.quickstart.world import toy_splits
    from turnwise.stage.inputs import read_conversations

    s = ctx.settings
    splits = toy_splits(s.train_dialogues, s.held_out, seed=s.seed, held_out_share=s.held_out_share,
                        n_prefs=s.prefs_dialogues, prefs_share=s.prefs_share, n_dev=s.dev_dialogues,
                        dev_share=s.dev_share, world=s.world, n_named=s.named_dialogues)
    for split, rows in (("train", splits["train"]), ("prefs", splits["prefs"]), ("dev", splits["dev"]),
                        ("heldout", splits["held_out"]), ("named", splits["named"])):
        sharegpt = ctx.path(f"{split}.sharegpt.json")
        sharegpt.parent.mkdir(parents=True, exist_ok=True)
        sharegpt.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        write_records(ctx.path(f"{split}.openai.jsonl"), read_records(sharegpt)[0], "openai")
    # The held-out dialogues as scripts: the first question asked, the follow-ups still to ask.
    scripts = [_script(c) for c in read_conversations(ctx.path("heldout.openai.jsonl"))[0]]
    write_records(ctx.output("scripts"), scripts, "openai")
    counts = {split: len(rows) for split, rows in splits.items()}
    return StageResult(ctx.outputs(), f"{counts['train']} SFT + {counts['prefs']} preference + {counts['dev']} dev + "
                       f"{counts['held_out']} held-out 6-turn dialogues, each split on entity pairs the others never "
                       "put together" + (f"; {counts['named']} SFT dialogues whose questions all name their entity"
                                         if counts["named"] else ""),
                       counts=counts)


@dataclass
class TinyModelSettings:
    """Settings of ``tiny_model`` (:func:`turnwise.quickstart.tiny_model.build_tiny_model`).

    Attributes:
        hidden_size: model width.
        num_layers: decoder layers.
        num_heads: attention heads.
        num_kv_heads: key/value heads.
        vocab_size: tokenizer vocabulary size.
        max_position_embeddings: longest sequence the model is configured for.
        template: chat template, ``chatml`` or ``llama3``.
        seed: seeds the weights.
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    vocab_size: int = 512
    max_position_embeddings: int = 2048
    template: str = "chatml"
    seed: int = 0


def tiny_model(ctx: StageContext) -> StageResult:
    """Build the model; the summary counts its parameters."""
    from safetensors import safe_open

    from turnwise.quickstart.tiny_model import build_tiny_model
    from turnwise.stage.inputs import read_conversations

    s = ctx.settings
    texts = [m["content"] for path in ctx.inputs.get("texts", []) for c in read_conversations(path)[0]
             for m in c.messages] or None
    out = ctx.output("model")
    build_tiny_model(out, texts=texts, vocab_size=s.vocab_size, hidden_size=s.hidden_size, num_layers=s.num_layers,
                     num_heads=s.num_heads, num_kv_heads=s.num_kv_heads,
                     max_position_embeddings=s.max_position_embeddings, template=s.template, seed=s.seed)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        params = sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118
    source = "the inputs' text" if texts else "the built-in corpus"
    return StageResult(ctx.outputs(), f"Qwen2-arch, {params / 1e3:.0f}K parameters, tokenizer trained on {source}",
                       numbers={"parameters": params})


@dataclass
class ToyEvalSettings:
    """Settings of ``toy_eval``.

    Attributes:
        split: ``test`` (the ``benchmark`` input) or ``dev`` (the ``dev`` input: other unseen entity pairs, to
            choose settings on without touching the test pairs).
        teacher_forced: also answer every turn with the gold history before it (each turn its own prompt), beside
            the free-running answers (each model's own history); needs the dialogues with their answers.
        limit: only the first N held-out dialogues (0 = all).
        temperature: the answers' sampling temperature (0 = greedy).
        max_tokens: most new tokens per answer.
        top_p: nucleus sampling mass.
        seed: sampling seed, where the backend honours one.
        max_in_flight: dialogues in progress at once.
        against: the model (role) the others are compared with, turn by turn (default: the first).
    """

    split: str = "test"
    teacher_forced: bool = False
    limit: int = 0
    temperature: float = 0.0
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None
    max_in_flight: int = 256
    against: str | None = None


SPLITS = ("test", "dev")


def _check_eval(settings: ToyEvalSettings, models: dict[str, str]) -> list[str]:
    problems = [] if models else ["models: name at least one model to evaluate (models: {LABEL: MODEL})"]
    if settings.against is not None and settings.against not in models:
        problems.append(f"settings.against: {settings.against!r} is not one of the models ({', '.join(models)})")
    if settings.split not in SPLITS:
        problems.append(f"settings.split: {settings.split!r} is not one of {', '.join(SPLITS)}")
    return problems


def _script(dialogue: Any) -> Any:
    """A dialogue as a free-running script: its first question asked, every later one a follow-up."""
    from turnwise.data.schema import Conversation

    first = next(k for k, m in enumerate(dialogue.messages) if m["role"] == "user")
    return Conversation(dialogue.id, dialogue.messages[:first + 1], followups=dialogue.user_turns[1:],
                        meta=dialogue.meta)


def toy_eval(ctx: StageContext) -> StageResult:
    """Every model answers the held-out dialogues turn by turn with its own history (and, with ``teacher_forced``,
    each turn with the gold history); every turn is checked."""
    from turnwise.errors import ConfigError
    from turnwise.eval.adapter import slug
    from turnwise.generate.adapter import answer_all
    from turnwise.models.base import GenerationSettings
    from turnwise.quickstart.results import errors_markdown, results_html, results_markdown
    from turnwise.quickstart.world import error_counts, outcomes, teacher_forced_outcomes, teacher_forced_prompts
    from turnwise.records import read_stage_output
    from turnwise.stage.inputs import merge_costs

    s = ctx.settings
    port = "dev" if s.split == "dev" else "benchmark"
    if not ctx.inputs.get(port):
        raise ConfigError(f"{ctx.name}: settings.split is {s.split!r} but the stage has no {port!r} input")
    dialogues = ctx.conversations(port)
    if s.limit:
        dialogues = dialogues[:s.limit]
    if not dialogues:
        raise ConfigError(f"{ctx.name}: the {port!r} input has no dialogues")
    if s.teacher_forced and not all(any(m["role"] == "assistant" for m in d.messages) for d in dialogues):
        raise ConfigError(f"{ctx.name}: teacher_forced needs the dialogues with their gold answers (data:held_out), "
                          f"but the {port!r} input holds scripts (questions only)")
    scripts = [_script(d) for d in dialogues]
    prompts = teacher_forced_prompts(dialogues) if s.teacher_forced else []
    sampling = GenerationSettings(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed)
    labels = list(ctx.models)
    ctx.total((len(scripts) + len(prompts)) * len(labels))
    by_model, forced, errors, costs = {}, {}, {}, {}
    for label in labels:
        filename = f"answers-{slug(label)}.jsonl"
        costs[label] = answer_all(ctx, label, scripts, filename, sampling, s.max_in_flight)
        records = read_stage_output(ctx.path(filename))
        by_model[label], errors[label] = outcomes(records), error_counts(records)
        if prompts:
            forced_file = f"teacher-forced-{slug(label)}.jsonl"
            costs[f"{label} (teacher-forced)"] = answer_all(ctx, label, prompts, forced_file, sampling,
                                                            s.max_in_flight)
            forced[label] = teacher_forced_outcomes(read_stage_output(ctx.path(forced_file)))
    table, summary = results_markdown(by_model, against=s.against)
    for label in labels:
        summary[label]["errors"] = errors[label]
    if forced:
        forced_table, summary["teacher_forced"] = results_markdown(forced, against=s.against)
        table += ("\nTeacher-forced: every turn answered with the gold history before it (each turn its own "
                  f"prompt), the same turns:\n\n{forced_table}")
    table += "\nWrong dependent turns by kind of error (the entity the answer names; `error_category`):\n\n" + \
        errors_markdown({label: errors[label] for label in labels})
    ctx.output("results").write_text(table, encoding="utf-8")
    ctx.output("outcomes").write_text(json.dumps(by_model), encoding="utf-8")  # per turn: the paired statistics
    ctx.output("teacher_forced").write_text(json.dumps(forced), encoding="utf-8")
    ctx.output("numbers").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    ctx.output("html").write_text(results_html([summary], title=f"turnwise: {ctx.name}", against=s.against),
                                  encoding="utf-8")
    line = "; ".join(f"{label}: dependent {summary[label]['dependent']:.0%}, standalone "
                     f"{summary[label]['standalone']:.0%}" for label in labels)
    return StageResult(ctx.outputs(), f"{s.split} turns right: {line}",
                       counts={label: len(by_model[label]) for label in labels},
                       cost={**merge_costs(*costs.values()), "by_model": costs}, numbers=summary)


TOY_DATA = Stage("toy_data", "Toy dialogues that refer back (turnwise.quickstart.world), split by unseen entity pairs.",
                 ToyDataSettings, toy_data, check=_check_data,
                 outputs=(Output("train", "train.openai.jsonl"), Output("prefs", "prefs.openai.jsonl"),
                          Output("dev", "dev.openai.jsonl"),
                          Output("named", "named.openai.jsonl", "SFT dialogues with no dependent turn"),
                          Output("held_out", "heldout.openai.jsonl"),
                          Output("scripts", "heldout-scripts.openai.jsonl")))
TINY_MODEL = Stage("tiny_model", "A tiny random Qwen2-architecture model with a tokenizer trained on local text.",
                   TinyModelSettings, tiny_model,
                   inputs=(Port("texts", "conversations whose text trains the tokenizer (default: a built-in corpus)",
                                required=False, many=True),),
                   outputs=(Output("model", "model", folder=True),), torch=True)
TOY_EVAL = Stage("toy_eval", "Answer the held-out dialogues turn by turn with each model's own history; check every "
                 "turn.", ToyEvalSettings, toy_eval,
                 inputs=(Port("benchmark", "held-out dialogues (with their answers: teacher forcing needs them) or "
                              "scripts: first turns, the follow-ups asked in turn"),
                         Port("dev", "the dev split's dialogues (settings.split: dev)", required=False)),
                 free_models=True, check=_check_eval,
                 outputs=(Output("results", "results.md"), Output("numbers", "results.json"),
                          Output("html", "results.html"),
                          Output("outcomes", "outcomes.json", "per model, dialogue and turn: kind and right"),
                          Output("teacher_forced", "outcomes-teacher-forced.json",
                                 "the same, each turn answered with the gold history (empty without teacher_forced)")))
