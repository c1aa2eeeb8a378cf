"""`turnwise eval run|answer|judge|report`: multi-turn evaluation on MT-Bench, MT-Eval, MT-Bench-101 or your own
N-turn dialogues, judged turn by turn, resumable and cached.

    turnwise eval run question.jsonl runs/eval/qwen --model qwen=Qwen/Qwen2.5-7B-Instruct --base-url URL \\
        --judge-model gpt-4o --judge-base-url https://api.openai.com/v1 --judge-api-key-env OPENAI_API_KEY
    turnwise eval answer mt-bench_extended.jsonl answers.jsonl --model ./my-model --backend local
    turnwise eval judge answers.jsonl judgements.jsonl --judge-model J --judge-base-url URL
    turnwise eval judge answers.jsonl pairs.jsonl --baseline base_answers.jsonl --judge-model J ...
    turnwise eval report runs/eval/*/judgements-*.jsonl --out runs/eval/report
    turnwise eval sharded ../shared/data/gsm8k/test.jsonl runs/sharded.jsonl --model M --limit 50 --samples 3

`run`, `answer` and `judge` are the stages ``eval``, ``eval_answer`` and ``eval_judge`` (:mod:`turnwise.eval.adapter`),
`sharded` the stage ``eval_sharded`` (:mod:`turnwise.eval.sharded_stage`), the same a recipe runs; `report` puts any
judgement files side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from turnwise.cli.command import stage_command

app = typer.Typer(help="Evaluate multi-turn skill: answer turn by turn, judge every turn, report.",
                  no_args_is_help=True, rich_markup_mode="rich")
app.command("run")(stage_command("eval"))
app.command("answer")(stage_command("eval_answer"))
app.command("judge")(stage_command("eval_judge"))
app.command("sharded")(stage_command("eval_sharded"))


@app.command("report")
def report(
    judgements: Annotated[list[Path], typer.Argument(help="Judgement files (single and/or pairwise), any number.")],
    out: Annotated[Path, typer.Option(help="Folder for report.json, report.md, samples.jsonl, report.html.")] = Path(
        "eval-report"),
    title: Annotated[str, typer.Option(help="The HTML report's title.")] = "turnwise eval",
) -> None:
    """Print the Markdown table and write the JSON, per-sample JSONL and HTML (plots) reports."""
    from turnwise.cli.options import stderr
    from turnwise.eval.report import build_report, load_records, markdown, write_report

    records = load_records(judgements)
    built = build_report(records)
    paths = write_report(records, out, title=title, sources=[str(p) for p in judgements], report=built)
    typer.echo(markdown(built))
    stderr.print(f"wrote {', '.join(str(p) for p in paths.values())}")
