"""Adapters that make the offline quickstart's world: toy dialogues (:mod:`turnwise.toy`) and a tiny model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from turnwise.recipe.context import StageContext, StageResult
from turnwise.recipe.kinds.common import read_conversations
from turnwise.recipe.registry import Kind, Port, register


@dataclass
class ToyDataSettings:
    """Settings of ``toy_data``.

    Attributes:
        train_dialogues: toy dialogues for SFT (and the ask model).
        prefs_dialogues: dialogues about entity pairs SFT never saw together, to build preference pairs on
            (0 = none; the ``prefs`` output is then empty).
        held_out: dialogues about entity pairs no training saw together, for the evaluation.
        held_out_share: share of the entity pairs held out.
        prefs_share: share of the entity pairs kept for the preference dialogues.
        seed: which dialogues, and which pairs go where.
    """

    train_dialogues: int = 200
    prefs_dialogues: int = 200
    held_out: int = 96
    held_out_share: float = 0.2
    prefs_share: float = 0.2
    seed: int = 0


@register(Kind("toy_data", "Toy dialogues that refer back (turnwise.toy), split by unseen entity pairs.",
               ToyDataSettings, outputs=("train", "prefs", "held_out", "scripts")))
def toy_data(ctx: StageContext) -> StageResult:
    """Write the train, preference and held-out dialogues (ShareGPT, then OpenAI) and the held-out scripts."""
    from turnwise.data.formats import read_records, write_records
    from turnwise.data.schema import Conversation
    from turnwise.toy import toy_splits

    s = ctx.settings
    splits = toy_splits(s.train_dialogues, s.held_out, seed=s.seed, held_out_share=s.held_out_share,
                        n_prefs=s.prefs_dialogues, prefs_share=s.prefs_share)
    for split, rows in (("train", splits["train"]), ("prefs", splits["prefs"]), ("heldout", splits["held_out"])):
        sharegpt = ctx.path(f"{split}.sharegpt.json")
        sharegpt.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        write_records(ctx.path(f"{split}.openai.jsonl"), read_records(sharegpt)[0], "openai")
    # The held-out dialogues as scripts: the first question asked, the follow-ups still to ask.
    scripts = [Conversation(c.id, c.messages[:1], followups=c.user_turns[1:], meta=c.meta)
               for c in read_conversations(ctx.path("heldout.openai.jsonl"))]
    write_records(ctx.path("heldout-scripts.openai.jsonl"), scripts, "openai")
    counts = {split: len(rows) for split, rows in splits.items()}
    return StageResult({"train": "train.openai.jsonl", "prefs": "prefs.openai.jsonl",
                        "held_out": "heldout.openai.jsonl", "scripts": "heldout-scripts.openai.jsonl"},
                       f"{counts['train']} SFT + {counts['prefs']} preference + {counts['held_out']} held-out 6-turn "
                       "dialogues, each split on entity pairs the others never put together", counts=counts)


@dataclass
class TinyModelSettings:
    """Settings of ``tiny_model`` (:func:`turnwise.testing.tiny_model.build_tiny_model`).

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


@register(Kind("tiny_model", "A tiny random Qwen2-architecture model with a tokenizer trained on local text.",
               TinyModelSettings, inputs=(Port("texts", "conversations whose text trains the tokenizer (default: a "
                                                "built-in corpus)", required=False, many=True),),
               outputs=("model",), torch=True))
def tiny_model(ctx: StageContext) -> StageResult:
    """Build the model in ``model/``; the summary counts its parameters."""
    from safetensors import safe_open

    from turnwise.testing.tiny_model import build_tiny_model

    s = ctx.settings
    texts = [m["content"] for path in ctx.inputs.get("texts", []) for c in read_conversations(path)
             for m in c.messages] or None
    build_tiny_model(ctx.path("model"), texts=texts, vocab_size=s.vocab_size, hidden_size=s.hidden_size,
                     num_layers=s.num_layers, num_heads=s.num_heads, num_kv_heads=s.num_kv_heads,
                     max_position_embeddings=s.max_position_embeddings, template=s.template, seed=s.seed)
    with safe_open(str(ctx.path("model") / "model.safetensors"), framework="pt") as f:
        params = sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118
    source = "the inputs' text" if texts else "the built-in corpus"
    return StageResult({"model": "model"}, f"Qwen2-arch, {params / 1e3:.0f}K parameters, tokenizer trained on {source}",
                       numbers={"parameters": params})
