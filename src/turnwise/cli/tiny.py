"""`turnwise tiny-model`: build a tiny random-init chat model offline, for tests and the quickstart.

    turnwise tiny-model /tmp/tiny --template llama3 --seed 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tiny_model(
    out_dir: Annotated[Path, typer.Argument(help="Directory to save the model and tokenizer in.")],
    layers: Annotated[int, typer.Option(help="Decoder layers.")] = 2,
    hidden: Annotated[int, typer.Option(help="Hidden size.")] = 64,
    heads: Annotated[int, typer.Option(help="Attention heads (must divide --hidden).")] = 4,
    kv_heads: Annotated[int, typer.Option(help="Key/value heads (must divide --heads).")] = 2,
    vocab: Annotated[int, typer.Option(help="Tokenizer vocabulary size, special tokens included.")] = 512,
    max_positions: Annotated[int, typer.Option(help="Longest sequence the model is configured for.")] = 2048,
    template: Annotated[str, typer.Option(help="Chat template: chatml (Qwen2 style) or llama3.")] = "chatml",
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
) -> None:
    """Build a tiny Qwen2-architecture model with a freshly trained tokenizer; nothing is downloaded."""
    from turnwise.quickstart.tiny_model import build_tiny_model

    path = build_tiny_model(
        out_dir,
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        max_position_embeddings=max_positions,
        template=template,
        seed=seed,
    )
    typer.echo(f"tiny {template} model saved to {path}")
