"""`turnwise rewrite`: rewrite follow-ups into self-contained queries, and score rewriters against humans.

    turnwise rewrite IN OUT --model M                     # short for `turnwise rewrite run IN OUT --model M`
    turnwise rewrite run canard_dev.json rewrites.jsonl --from canard --model M --base-url URL
    turnwise rewrite eval canard_dev.json runs/canard.md --from canard                  # the baseline alone
    turnwise rewrite eval canard_dev.json runs/canard.md --from canard --model M --base-url URL
    turnwise rewrite eval zh_rewrite_dev.txt runs/zh.md --from zh-rewrite --predictions rewrites.txt

`run` is the default subcommand: ``turnwise rewrite IN OUT`` is ``turnwise rewrite run IN OUT`` (an input
file literally named ``eval`` or ``run`` needs the explicit ``run``). They are the stages ``rewrite`` and
``rewrite_eval`` (:mod:`turnwise.rag.adapter`).
"""

from __future__ import annotations

import typer

from turnwise.cli.command import RunByDefault, stage_command

app = typer.Typer(cls=RunByDefault, no_args_is_help=True, add_completion=False,
                  help="Rewrite follow-ups into self-contained queries (run), or score rewrites (eval). "
                       "`turnwise rewrite IN OUT ...` is short for `turnwise rewrite run IN OUT ...`.")
app.command("run")(stage_command("rewrite"))
app.command("eval")(stage_command("rewrite_eval"))
