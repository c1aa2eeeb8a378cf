"""The offline quickstart: every piece that exists, end to end, on a CPU with nothing downloaded.

    turnwise quickstart runs/quickstart

Steps: build a tiny Qwen2-architecture model with a tokenizer trained on local text; write small
multi-turn dialogues (ShareGPT) whose follow-ups refer back with pronouns and ellipsis; convert them to
OpenAI messages; show which tokens carry the SFT loss; trim one to a token budget; answer every
dialogue turn by turn with the in-process backend, then again to show the cache answering everything;
serve the model with `transformers serve` on loopback and answer through the OpenAI-compatible backend,
twice, counting HTTP calls. Every step writes its files under OUT_DIR and reports one figure.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.data.formats import read_records, write_records
from turnwise.data.schema import Conversation
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.records import RecordStore, RunManifest
from turnwise.stages.generate import run_generate

ENTITIES = [
    ("the Nile", "river", "Africa", "6,650 km"),
    ("the Amazon", "river", "South America", "6,400 km"),
    ("the Danube", "river", "Europe", "2,850 km"),
    ("the Mekong", "river", "Asia", "4,900 km"),
    ("Mount Kenya", "mountain", "Africa", "5,199 m"),
    ("Mont Blanc", "mountain", "Europe", "4,806 m"),
    ("Aconcagua", "mountain", "South America", "6,961 m"),
    ("Fuji", "mountain", "Asia", "3,776 m"),
]
SIZE = {"river": ("How long is it?", "long"), "mountain": ("How high is it?", "high")}


def toy_dialogues(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Small ShareGPT dialogues whose later turns only make sense with their history."""
    rng = random.Random(seed)
    dialogues = []
    for i in range(n):
        (a, kind, where, size), other = rng.sample(ENTITIES, 2)
        question, adjective = SIZE[kind]
        b, kind_b, _, size_b = other
        turns = [
            (f"Tell me about {a}.", f"{a[0].upper() + a[1:]} is a {kind} in {where}."),
            (question, f"It is {size} {adjective}."),
            (f"And {b}?", f"{b[0].upper() + b[1:]} is a {kind_b}; it is {size_b} {SIZE[kind_b][1]}."),
            ("Where is the first one?", f"{a[0].upper() + a[1:]} is in {where}."),
        ]
        conv = [{"from": who, "value": text} for q, ans in turns for who, text in (("human", q), ("gpt", ans))]
        dialogues.append({"id": f"toy-{i:03d}", "conversations": conv})
    return dialogues


@dataclass
class Step:
    name: str
    figure: str
    seconds: float
    files: list[str] = field(default_factory=list)


@dataclass
class QuickstartReport:
    out_dir: Path
    steps: list[Step] = field(default_factory=list)

    def timed(self, name: str, fn: Callable[[], tuple[str, list[Path]]]) -> None:
        start = time.perf_counter()
        figure, files = fn()
        self.steps.append(Step(name, figure, time.perf_counter() - start, [str(f) for f in files]))


def _models(out: Path) -> tuple[str, list[Path]]:
    from turnwise.testing.tiny_model import build_tiny_model

    model_dir = out / "tiny-model"
    if not (model_dir / "config.json").exists():
        texts = [turn["value"] for d in toy_dialogues(400, seed=1) for turn in d["conversations"]]
        build_tiny_model(model_dir, texts=texts, seed=0)
    params = _param_count(model_dir)
    return f"Qwen2-arch, {params / 1e3:.0f}K parameters, tokenizer trained on local text", [model_dir]


def _param_count(model_dir: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        return sum(_numel(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _data(out: Path) -> tuple[str, list[Path]]:
    sharegpt = out / "dialogues.sharegpt.json"
    sharegpt.write_text(json.dumps(toy_dialogues(24), indent=1), encoding="utf-8")
    conversations, _ = read_records(sharegpt)
    openai = out / "dialogues.openai.jsonl"
    written = write_records(openai, conversations, "openai")
    # The same dialogues as N-turn scripts: the first question asked, the rest still to ask.
    items, _ = read_records(openai)
    scripts = [Conversation(c.id, c.messages[:1], followups=c.user_turns[1:]) for c in items]
    script_path = out / "scripts.openai.jsonl"
    write_records(script_path, scripts, "openai")
    return f"{written} ShareGPT dialogues → OpenAI messages; {len(scripts)} 4-turn scripts", [openai, script_path]


def _mask(out: Path) -> tuple[str, list[Path]]:
    from turnwise.data.render import load_tokenizer, loss_view

    tokenizer = load_tokenizer(str(out / "tiny-model"))
    [first, *_], _ = read_records(out / "dialogues.openai.jsonl")
    view = loss_view(tokenizer, first.messages)
    marked = "".join(f"[[{tok}]]" if loss else tok for tok, loss in view)
    path = out / "loss-mask.txt"
    path.write_text(marked + "\n", encoding="utf-8")
    return f"{sum(loss for _, loss in view)} of {len(view)} tokens carry the SFT loss (assistant turns)", [path]


def _truncate(out: Path) -> tuple[str, list[Path]]:
    from turnwise.data.render import load_tokenizer, render
    from turnwise.data.truncate import truncate_history

    tokenizer = load_tokenizer(str(out / "tiny-model"))
    [first, *_], _ = read_records(out / "dialogues.openai.jsonl")
    messages = [{"role": "system", "content": "You are a helpful geography tutor."}, *first.messages[:-1]]

    def count(ms: list) -> int:
        return len(tokenizer(render(tokenizer, ms, add_generation_prompt=True))["input_ids"])

    budget = count(messages) * 2 // 3
    kept, info = truncate_history(messages, count, budget)
    path = out / "truncated.json"
    path.write_text(json.dumps({"messages": kept, "truncation": info.to_dict()}, indent=1), encoding="utf-8")
    return (f"budget {budget} tokens: dropped {info.pairs_dropped} oldest turn pairs "
            f"({info.tokens_before} → {info.tokens_after} tokens), system message kept"), [path]


def _answer(out: Path, spec: ModelSpec, name: str) -> tuple[str, list[Path]]:
    """Answer the scripts turn by turn, then once more into a second file: the cache answers all."""
    settings = GenerationSettings(temperature=0.0, max_tokens=16)
    figures, files = [], []
    for attempt in ("", "-rerun"):
        output = out / f"answers-{name}{attempt}.jsonl"
        cost = asyncio.run(_generate(out / "scripts.openai.jsonl", output, spec, settings, out / "cache.sqlite"))
        figures.append(f"{cost['attempts'] if name == 'openai' else cost['calls'] - cost['cached']} paid")
        files.append(output)
    label = "HTTP calls" if name == "openai" else "model calls"
    return f"{cost['calls']} turns answered; {label}: first run {figures[0]}, second run {figures[1]}", files


async def _generate(inputs: Path, output: Path, spec: ModelSpec, settings: GenerationSettings, cache: Path) -> dict:
    conversations, _ = read_records(inputs)
    output.unlink(missing_ok=True)
    manifest = RunManifest(output, "generate", {"model": spec.to_dict(), "settings": settings.to_dict()})
    model = CachedChatModel(load_model(spec), ResponseCache(cache))
    try:
        with RecordStore(output) as store:
            result = await run_generate(conversations, model, store, settings)
    finally:
        await model.aclose()
        model.cache.close()
    manifest.finish("complete", dict(store.counts), result.cost.to_dict())
    return result.cost.to_dict()


def run_quickstart(out_dir: str | Path, *, serve: bool = True) -> QuickstartReport:
    """Run every step; each writes under ``out_dir`` and adds one line to the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache.sqlite").unlink(missing_ok=True)  # a fresh cache, so the first run really pays
    report = QuickstartReport(out)
    report.timed("build tiny model", lambda: _models(out))
    report.timed("convert data", lambda: _data(out))
    report.timed("show loss mask", lambda: _mask(out))
    report.timed("truncate history", lambda: _truncate(out))
    local = ModelSpec(str(out / "tiny-model"), backend="local", concurrency=8, dtype="float32", device="cpu")
    report.timed("answer (local, cached)", lambda: _answer(out, local, "local"))
    if serve:
        report.timed("answer (transformers serve)", lambda: _serve_and_answer(out))
    return report


def _serve_and_answer(out: Path) -> tuple[str, list[Path]]:
    from turnwise.testing.transformers_server import serve_model

    model_dir = out / "tiny-model"
    with serve_model(model_dir, log_path=out / "serve.log") as url:
        spec = ModelSpec(str(model_dir), backend="openai", base_urls=[url], concurrency=8, timeout_s=60)
        return _answer(out, spec, "openai")
