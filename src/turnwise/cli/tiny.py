"""`turnwise tiny-model` (a tiny random-init chat model, built offline, for tests and the quickstart) and
`turnwise model-path` (the folder of an embedded real model).

    turnwise tiny-model /tmp/tiny --template llama3 --seed 1
    transformers serve "$(turnwise model-path smollm2-135m-instruct)" --port 8000
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


def model_path(
    name: Annotated[str, typer.Argument(help="An embedded model: smollm2-135m-instruct.")],
) -> None:
    """Print the folder of an embedded real model (converting it the first time), e.g. for `transformers serve`."""
    from turnwise.errors import ConfigError
    from turnwise.models.embedded import EMBEDDED, materialize

    if name not in EMBEDDED:
        raise ConfigError(f"no embedded model {name!r}; embedded: {', '.join(EMBEDDED)}")
    typer.echo(str(materialize(name)))
