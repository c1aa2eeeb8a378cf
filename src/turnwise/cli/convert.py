"""`turnwise convert`: rewrite a record file in another chat format.

    turnwise convert question.jsonl question.openai.jsonl --to openai
    turnwise convert data.json sft.jsonl --from sharegpt --to trl-sft --skip-invalid

Formats: openai, sharegpt, alpaca, mt-bench, mt-bench-101, mt-eval, mudoco, trl-sft, trl-pref (see
turnwise.data.formats). The output is written atomically: a failed conversion leaves OUT as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_FORMATS = "openai, sharegpt, alpaca, mt-bench, mt-bench-101, mt-eval, mudoco, trl-sft, trl-pref"


def convert(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Input records: JSON Lines or a JSON array.")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output file (JSON Lines).")],
    to_fmt: Annotated[str, typer.Option("--to", help=f"Output format: {_FORMATS}.")],
    from_fmt: Annotated[
        str | None, typer.Option("--from", help="Input format; detected from the first record when left out.")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip invalid records and count them by rule, instead of stopping.")
    ] = False,
) -> None:
    """Convert conversations between chat formats (a preference pair becomes its prompt and chosen answer)."""
    from rich.console import Console

    from turnwise.data.formats import convert_file

    report = convert_file(src, dst, to_fmt, from_fmt, skip_invalid=skip_invalid)
    line = f"{src} ({report.fmt}) → {dst} ({to_fmt}): {report.summary()}"
    Console(stderr=True, soft_wrap=True).print(line, markup=False, highlight=False)
