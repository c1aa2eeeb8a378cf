"""The offline quickstart: the whole built loop, end to end, on a CPU with nothing downloaded.

    turnwise quickstart runs/quickstart

Each step runs a stage's Python core: write toy dialogues (:mod:`turnwise.toy`: places, pronouns,
ellipsis, "the first one") with a held-out split; build a tiny Qwen2-architecture model with a tokenizer
trained on them; train an assistant (multi-turn SFT) and a user simulator (Parrot-Ask) from it; let the
two talk (self-play); find the context-dependent turns; build CaPO pairs (neglect, hallucination,
misunderstanding) and best-of-N pairs scored by a verifiable check instead of an LLM judge; train DPO
with the SFT term; answer the held-out dialogues turn by turn with each model's own history and score
every turn; serve the SFT model with `transformers serve` and answer through the OpenAI-compatible
backend, twice. Every model call goes through ``OUT/cache.sqlite``, every stage writes its records and
manifest under OUT, and each step reports one figure (all numbers in ``OUT/quickstart.json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from turnwise.data.formats import read_records, write_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.recipe.runner import quiet_libraries
from turnwise.records import RecordStore, RunManifest, read_stage_output
from turnwise.toy import check_answer, outcomes, rejected_right, results_markdown, texts, toy_dialogues, toy_splits

__all__ = ["FAST", "FULL", "QuickstartReport", "QuickstartSettings", "Step", "run_quickstart", "toy_dialogues"]


@dataclass(frozen=True)
class QuickstartSettings:
    """How big a quickstart run is (:data:`FULL` for the command, :data:`FAST` for the tests).

    Attributes:
        train_dialogues: toy dialogues trained on (and that pairs are built from).
        held_out: toy dialogues of unseen entity pairs, for the evaluation.
        hidden_size: width of the tiny model.
        num_layers: depth of the tiny model.
        sft_steps: optimizer steps of SFT.
        ask_steps: optimizer steps of the ask model.
        dpo_steps: optimizer steps of DPO.
        seeds: train first turns grown into dialogues by self-play.
        capo_dialogues: train dialogues whose dependent turns get CaPO pairs.
        bestofn_dialogues: train dialogues whose every turn is a best-of-N prompt.
        samples: answers sampled per best-of-N prompt.
        serve_scripts: held-out dialogues answered through `transformers serve`.
    """

    train_dialogues: int = 200
    held_out: int = 96
    hidden_size: int = 128
    num_layers: int = 2
    sft_steps: int = 100
    ask_steps: int = 60
    dpo_steps: int = 60
    seeds: int = 24
    capo_dialogues: int = 64
    bestofn_dialogues: int = 24
    samples: int = 8
    serve_scripts: int = 8


FULL = QuickstartSettings()
FAST = QuickstartSettings(train_dialogues=48, held_out=8, hidden_size=64, sft_steps=24, ask_steps=12, dpo_steps=4,
                          seeds=4, capo_dialogues=6, bestofn_dialogues=3, samples=4, serve_scripts=2)
GREEDY = GenerationSettings(temperature=0.0, max_tokens=32)
StepResult = tuple[str, list[Path], dict[str, Any]]  # one figure, the files written, the numbers behind them


@dataclass
class Step:
    """One line of the report: the step, its figure, how long it took, the files it wrote."""

    name: str
    figure: str
    seconds: float
    files: list[str] = field(default_factory=list)


@dataclass
class QuickstartReport:
    """One line per step, the numbers behind each, and the evaluation's Markdown table (``OUT/results.md``)."""

    out_dir: Path
    steps: list[Step] = field(default_factory=list)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: str = ""
    on_step: Callable[[Step], None] | None = None

    def timed(self, name: str, fn: Callable[[], StepResult]) -> None:
        start = time.perf_counter()
        figure, files, numbers = fn()
        self.steps.append(Step(name, figure, time.perf_counter() - start, [str(f) for f in files]))
        self.numbers[name] = numbers
        if self.on_step is not None:
            self.on_step(self.steps[-1])


@dataclass(frozen=True)
class _Run:
    """Where a quickstart run keeps its files (``run.sft`` is ``OUT/sft``...), and how big it is."""

    out: Path
    settings: QuickstartSettings

    def __getattr__(self, name: str) -> Path:
        if name not in _FILES:
            raise AttributeError(name)
        return self.out / _FILES[name]


BASELINE = "SFT + more SFT"  # the fair baseline: as many steps and examples as DPO, plain SFT

_FILES = {"base": "tiny-model", "sft": "sft", "ask": "ask", "dpo": "dpo", "train": "train.openai.jsonl",
          "held_out": "heldout.openai.jsonl", "scripts": "heldout-scripts.openai.jsonl",
          "dialogues": "simulated.jsonl", "capo": "capo-pairs.jsonl", "bestofn": "bestofn-pairs.jsonl",
          "dpo_pairs": "dpo-pairs.jsonl", "cache": "cache.sqlite", "sft_more": "sft-more"}


def run_quickstart(out_dir: str | Path, *, serve: bool = True, fast: bool = False,
                   on_step: Callable[[Step], None] | None = None) -> QuickstartReport:
    """Run every step; each writes under ``out_dir`` and adds one line to the report.

    Args:
        out_dir: where everything goes. A second run retrains the models (deterministically) and answers
            from the response cache wherever the weights and the prompt are the same.
        serve: also serve the SFT model with `transformers serve` and answer through the OpenAI backend.
        fast: the small :data:`FAST` setting (seconds; the tests) instead of :data:`FULL` (minutes).
        on_step: called with each finished step (progress display).
    """
    run = _Run(Path(out_dir), FAST if fast else FULL)
    run.out.mkdir(parents=True, exist_ok=True)
    report = QuickstartReport(run.out, on_step=on_step)
    steps = _STEPS + ([("answer via transformers serve", _serve_and_answer)] if serve else [])
    # One torch thread: on a busy 2-core machine two spin against each other (100 SFT steps: 14 s vs 93 s).
    with quiet_libraries(torch_threads=1):
        for name, step in steps:
            report.timed(name, lambda step=step: step(run))
    report.results = (run.out / "results.md").read_text(encoding="utf-8")
    summary = {"settings": asdict(run.settings), "steps": [{**asdict(s), "numbers": report.numbers[s.name]}
                                                           for s in report.steps]}
    (run.out / "quickstart.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return report


def _read(path: Path) -> list[Any]:
    """Every record of a file (an empty file has none)."""
    return list(read_records(path)[0]) if path.stat().st_size else []


def _data(run: _Run) -> StepResult:
    s = run.settings
    train, held = toy_splits(s.train_dialogues, s.held_out, seed=0)
    for split, rows in (("train", train), ("heldout", held)):
        sharegpt = run.out / f"{split}.sharegpt.json"
        sharegpt.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        write_records(run.out / f"{split}.openai.jsonl", read_records(sharegpt)[0], "openai")
    # The held-out dialogues as scripts: the first question asked, the follow-ups still to ask.
    scripts = [Conversation(c.id, c.messages[:1], followups=c.user_turns[1:], meta=c.meta) for c in _read(run.held_out)]
    write_records(run.scripts, scripts, "openai")
    return (f"{len(train)} train + {len(held)} held-out 4-turn dialogues (ShareGPT → OpenAI); held-out entity "
            "pairs unseen in training"), [run.train, run.held_out, run.scripts], {"train": len(train),
                                                                                   "held_out": len(held)}


def _model(run: _Run) -> StepResult:
    from safetensors import safe_open

    from turnwise.testing.tiny_model import build_tiny_model

    shutil.rmtree(run.base, ignore_errors=True)
    words = texts(json.loads((run.out / "train.sharegpt.json").read_text(encoding="utf-8")))
    build_tiny_model(run.base, texts=words, hidden_size=run.settings.hidden_size,
                     num_layers=run.settings.num_layers, seed=0)
    with safe_open(str(run.base / "model.safetensors"), framework="pt") as f:
        params = sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118
    return (f"Qwen2-arch, {params / 1e3:.0f}K parameters, tokenizer trained on the toy text", [run.base],
            {"parameters": params})


def _local(model_dir: Path) -> ModelSpec:
    return ModelSpec(str(model_dir), backend="local", concurrency=32, dtype="float32", device="cpu")


@contextlib.asynccontextmanager
async def _opened(run: _Run, *specs: ModelSpec) -> AsyncIterator[list[CachedChatModel]]:
    """The models, each behind the run's response cache; closed on exit."""
    cache = ResponseCache(run.cache)
    models = [CachedChatModel(load_model(spec), cache) for spec in specs]
    try:
        yield models
    finally:
        for model in models:
            await model.aclose()
        cache.close()


@contextlib.contextmanager
def _stage(output: Path, stage: str, config: dict[str, Any], manifest_for: Path | None = None
           ) -> Iterator[tuple[RecordStore, dict[str, Any]]]:
    """A fresh record file and its manifest (beside ``manifest_for``, default the records, as the CLI puts it);
    the caller puts ``cost`` and any extras in the dict it gets."""
    output.unlink(missing_ok=True)  # the models were retrained: the cache, not old records, makes a re-run cheap
    manifest = RunManifest(manifest_for or output, stage, {**config, "records": str(output)})
    store, extra, status = RecordStore(output), {}, "error"
    try:
        yield store, extra
        status = "complete"
    finally:
        store.close()
        manifest.finish(status, dict(store.counts), extra.pop("cost", {}), **extra)


# A tiny model learns the toy world in about a hundred steps at a high learning rate. No checkpoints: every
# run retrains from scratch.
_TRAIN = {"per_device_train_batch_size": 16, "gradient_checkpointing": False, "max_length": 512,
          "warmup_steps": 0.1, "resume": False, "seed": 0, "trl_args": {"save_strategy": "no", "disable_tqdm": True}}


def _train(cfg: Any, kind: str) -> dict[str, list[float]]:
    """Train with turnwise's trainer (TRL printing no logged dict to stdout); the logged loss and reward accuracy."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from turnwise.train.common import run_trainer
    from turnwise.train.dpo import build_dpo_trainer
    from turnwise.train.sft import build_sft_trainer

    shutil.rmtree(cfg.output, ignore_errors=True)
    cfg.logging_steps = max(1, cfg.max_steps // 10)
    trainer, report, placement = (build_dpo_trainer if kind == "dpo" else build_sft_trainer)(cfg)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    history = run_trainer(trainer, cfg, kind, report, placement).log_history
    return {key: [e[key] for e in history if key in e] for key in ("loss", "rewards/accuracies")}


def _sft(run: _Run) -> StepResult:
    from turnwise.data.render import load_tokenizer, loss_view
    from turnwise.train.configs import SFTTrainConfig

    cfg = SFTTrainConfig(data=str(run.train), model=str(run.base), output=str(run.sft),
                         max_steps=run.settings.sft_steps, learning_rate=2e-3, **_TRAIN)
    loss = _train(cfg, "sft")["loss"]
    view = loss_view(load_tokenizer(str(run.sft)), _read(run.train)[0].messages)
    mask = run.out / "loss-mask.txt"  # the first dialogue, the tokens that carry the loss in [[...]]
    mask.write_text("".join(f"[[{tok}]]" if on else tok for tok, on in view) + "\n", encoding="utf-8")
    return (f"loss {loss[0]:.2f} → {loss[-1]:.2f} in {cfg.max_steps} steps (assistant turns, lr 2e-3)",
            [run.sft, mask], {"loss": loss})


def _ask(run: _Run) -> StepResult:
    from turnwise.train.configs import AskTrainConfig

    cfg = AskTrainConfig(data=str(run.train), model=str(run.base), output=str(run.ask), lang="en",
                         max_steps=run.settings.ask_steps, learning_rate=2e-3, **_TRAIN)
    loss = _train(cfg, "ask")["loss"]
    return (f"loss {loss[0]:.2f} → {loss[-1]:.2f} in {cfg.max_steps} steps (user turns, roles flipped)",
            [run.ask], {"loss": loss})


def _simulate(run: _Run) -> StepResult:
    from turnwise.simulate import Seed, SimulateConfig, run_simulate, summarize

    seeds = [Seed(f"sim-{i:03d}", conv.user_turns[0]) for i, conv in enumerate(_read(run.train)[: run.settings.seeds])]
    cfg = SimulateConfig(turns=4, min_turns=2, lang="en", seed=0, assistant_settings=GREEDY,
                         user_settings=GenerationSettings(temperature=1.0, top_p=0.9, max_tokens=16))

    async def go() -> None:
        config = {**cfg.to_dict(), "user_model": str(run.ask), "assistant_model": str(run.sft)}
        async with _opened(run, _local(run.ask), _local(run.sft)) as (user, assistant):
            with _stage(run.dialogues, "simulate", config) as (store, extra):
                result = await run_simulate(seeds, user, assistant, store, cfg)
                extra.update(cost=result.cost(), stats=summarize(read_stage_output(run.dialogues)).to_dict())

    asyncio.run(go())
    stats = summarize(read_stage_output(run.dialogues)).to_dict()
    filters = ", ".join(f"{n} {reason}" for reason, n in stats["filters"].items()) or "none"
    return (f"{stats['status'].get('ok', 0)} of {stats['dialogues']} dialogues kept, {stats['turns_per_dialogue']} "
            f"turns each; user turns rejected by filters: {filters}"), [run.dialogues], stats


def _detect(run: _Run) -> StepResult:
    from turnwise.detect import DetectConfig, run_detect

    simulated = [Conversation(r["id"], r["messages"]) for r in read_stage_output(run.dialogues) if r["status"] == "ok"]
    shares: dict[str, float] = {}
    for name, conversations in (("simulated", simulated), ("train", _read(run.train))):
        output = run.out / f"detect-{name}.jsonl"
        with _stage(output, "detect", {"detector": "rules", "lang": "en"}) as (store, extra):
            result = asyncio.run(run_detect(conversations, store, DetectConfig(lang="en")))
            extra["cost"] = result.cost.to_dict()
        shares[name] = result.dependent / result.turns if result.turns else 0.0
    return (f"context-dependent: {shares['simulated']:.0%} of the simulated follow-ups, {shares['train']:.0%} of "
            "the toy ones (all of which are, by construction)"), [run.out / "detect-simulated.jsonl",
                                                                  run.out / "detect-train.jsonl"], shares


def _capo(run: _Run) -> StepResult:
    from turnwise.capo import CapoConfig, CapoModels, export_pairs, run_capo
    from turnwise.detect import TurnDecision

    cfg = CapoConfig(settings=GenerationSettings(temperature=0.7, max_tokens=32), lang="en", seed=0,
                     simulator_settings=GenerationSettings(temperature=1.0, top_p=0.9, max_tokens=16))
    dialogues = _read(run.train)[: run.settings.capo_dialogues]  # chosen = the gold answer, right by construction
    detections = {r["id"]: [TurnDecision.from_dict(t) for t in r["turns"]]
                  for r in read_stage_output(run.out / "detect-train.jsonl") if r["status"] == "ok"}
    records = run.out / "capo-pairs.records.jsonl"

    async def go() -> tuple[dict[str, int], Any]:
        config = {**cfg.to_dict(), "negative_model": str(run.sft), "simulator_model": str(run.ask)}
        async with _opened(run, _local(run.sft), _local(run.ask)) as (sft, ask):
            with _stage(records, "capo", config, run.capo) as (store, extra):
                result = await run_capo(dialogues, store, cfg, CapoModels(sft, simulator=ask), detections=detections)
                exported = export_pairs(records, run.capo)  # every record is flushed already
                extra.update(cost=result.cost.to_dict(), pairs=exported.to_dict())
        return dict(store.counts), exported

    counts, exported = asyncio.run(go())
    right = rejected_right(_read(run.capo), dialogues)
    per = ", ".join(f"{s} {exported.by_strategy[s]}" for s in ("neglect", "hallucination", "misunderstanding"))
    return (f"{exported.written} pairs ({per}), {counts.get('filtered', 0)} filtered, {counts.get('failed', 0)} "
            f"failed; {right} rejected answers are right anyway (toy check)"), [run.capo, records], {
                **exported.to_dict(), "records": counts, "rejected_right": right}


def _bestofn(run: _Run) -> StepResult:
    from turnwise.bestofn.stage import BestOfNConfig, run_bestofn, write_pairs
    from turnwise.score.verifiable import VerifiableScorer

    n = run.settings.samples
    cfg = BestOfNConfig(n=n, min_scored=n // 2, min_margin=1.0,
                        settings=GenerationSettings(temperature=1.0, max_tokens=32, n=n, seed=0))
    prompts = [Conversation(f"{conv.id}:{k}", conv.messages[: 2 * k + 1], meta={"reference": reference})
               for conv in _read(run.train)[: run.settings.bestofn_dialogues]
               for k, reference in enumerate(conv.meta["references"])]
    scorer = VerifiableScorer("toy_answer", check_answer)  # no judge: the toy world knows the answers
    records = run.out / "bestofn-pairs.records.jsonl"

    async def go() -> int:
        config = {"policy": str(run.sft), "scorer": scorer.describe(), "n": n, "settings": cfg.settings.to_dict()}
        async with _opened(run, _local(run.sft)) as (policy,):
            with _stage(records, "bestofn", config, run.bestofn) as (store, extra):
                extra["cost"] = (await run_bestofn(prompts, policy, scorer, store, cfg)).to_dict()
                extra["pairs"] = write_pairs(records, run.bestofn)
        return extra["pairs"]

    pairs = asyncio.run(go())
    totals = [c["total"] for r in read_stage_output(records) for c in r.get("candidates", []) if c["total"] is not None]
    right = totals.count(10.0) / len(totals) if totals else 0.0
    return (f"{pairs} pairs from {len(prompts)} prompts ({n} samples each, {right:.0%} of them right by the toy "
            "check; no judge)"), [run.bestofn, records], {"pairs": pairs, "prompts": len(prompts),
                                                           "samples_right": right}


def _dpo(run: _Run) -> StepResult:
    from turnwise.train.configs import DPOTrainConfig

    pairs = [PreferencePair(p.id, p.prompt, p.chosen, p.rejected, {"source": source, "kind": p.meta.get("strategy",
             "best-of-n")}) for source, path in (("capo", run.capo), ("bestofn", run.bestofn)) for p in _read(path)]
    write_records(run.dpo_pairs, pairs, "trl-pref")  # one file, one small meta shape
    sources = {s: sum(p.meta["source"] == s for p in pairs) for s in ("capo", "bestofn")}
    cfg = DPOTrainConfig(data=str(run.dpo_pairs), model=str(run.sft), output=str(run.dpo), beta=0.1,
                         sft_weight=0.1, learning_rate=1e-4, max_steps=run.settings.dpo_steps,
                         **{**_TRAIN, "per_device_train_batch_size": 8})
    logged = _train(cfg, "dpo")
    loss, accuracy = logged["loss"], logged["rewards/accuracies"]
    return (f"{len(pairs)} pairs ({sources['capo']} CaPO + {sources['bestofn']} best-of-N), β 0.1, λ 0.1, "
            f"{cfg.max_steps} steps: loss {loss[0]:.2f} → {loss[-1]:.2f}, reward accuracy {accuracy[-1]:.0%}"), [
                run.dpo_pairs, run.dpo], {"pairs": sources, "loss": loss, "reward_accuracy": accuracy}


def _sft_more(run: _Run) -> StepResult:
    """The fair baseline: the SFT model trained on, with plain SFT, for DPO's steps on DPO's examples
    (each pair's prompt and chosen answer), so DPO is compared with training more, not with stopping."""
    from turnwise.train.configs import SFTTrainConfig

    cfg = SFTTrainConfig(data=str(run.dpo_pairs), model=str(run.sft), output=str(run.sft_more),
                         learning_rate=1e-4, max_steps=run.settings.dpo_steps,
                         **{**_TRAIN, "per_device_train_batch_size": 8})
    loss = _train(cfg, "sft")["loss"]
    return (f"{cfg.max_steps} more SFT steps on the DPO pairs' prompts + chosen answers (lr 1e-4, batch 8): "
            f"loss {loss[0]:.2f} → {loss[-1]:.2f}"), [run.sft_more], {"loss": loss}


def _evaluate(run: _Run) -> StepResult:
    by_model, files = {}, []
    for label, model_dir in (("SFT", run.sft), (BASELINE, run.sft_more), ("SFT + DPO", run.dpo)):
        output = run.out / f"answers-{model_dir.name}.jsonl"
        asyncio.run(_generate(run, output, _local(model_dir)))
        by_model[label] = outcomes(read_stage_output(output))
        files.append(output)
    table, summary = results_markdown(by_model, against=BASELINE)
    (run.out / "results.md").write_text(table, encoding="utf-8")
    (run.out / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    sft, more, dpo = summary["SFT"], summary[BASELINE], summary["SFT + DPO"]
    return (f"held-out turns right, dependent: SFT {sft['dependent']:.0%}, more SFT {more['dependent']:.0%}, "
            f"SFT+DPO {dpo['dependent']:.0%}; standalone: {sft['standalone']:.0%}, {more['standalone']:.0%}, "
            f"{dpo['standalone']:.0%}"), [*files, run.out / "results.md"], summary


async def _generate(run: _Run, output: Path, spec: ModelSpec, limit: int | None = None) -> dict[str, int]:
    """Answer the held-out scripts turn by turn, greedily; the run's cost."""
    from turnwise.stages.generate import run_generate

    config = {"input": str(run.scripts), "model": spec.to_dict(), "settings": GREEDY.to_dict()}
    async with _opened(run, spec) as (model,):
        with _stage(output, "generate", config) as (store, extra):
            result = await run_generate(_read(run.scripts)[:limit], model, store, GREEDY)
            extra["cost"] = result.cost.to_dict()
    return result.cost.to_dict()


def _serve_and_answer(run: _Run) -> StepResult:
    """Answer held-out scripts through `transformers serve`, twice: the cache answers the second run."""
    from turnwise.testing.transformers_server import serve_model

    files = [run.out / "answers-served.jsonl", run.out / "answers-served-rerun.jsonl"]
    with serve_model(run.sft, log_path=run.out / "serve.log") as url:
        spec = ModelSpec(str(run.sft), backend="openai", base_urls=[url], concurrency=8, timeout_s=60)
        costs = [asyncio.run(_generate(run, path, spec, run.settings.serve_scripts)) for path in files]
    return (f"{costs[0]['calls']} turns answered by the served SFT model; HTTP calls: first run "
            f"{costs[0]['attempts']}, second run {costs[1]['attempts']}"), files, {"cost": costs}


_STEPS: list[tuple[str, Callable[[_Run], StepResult]]] = [
    ("toy dialogues", _data),
    ("build tiny model", _model),
    ("train SFT", _sft),
    ("train ask model", _ask),
    ("simulate (self-play)", _simulate),
    ("detect dependent turns", _detect),
    ("CaPO pairs", _capo),
    ("best-of-N pairs", _bestofn),
    ("train DPO + SFT term", _dpo),
    ("train more SFT (baseline)", _sft_more),
    ("evaluate held-out", _evaluate),
]
