"""The run's report: every stage, its key, what it did, and a link to each artefact; Markdown and HTML.

The runner writes ``OUT/report.md``, ``OUT/report.html`` and ``OUT/run.json`` at the end of every run
(with what this run did to each stage: cached, ran, skipped); a ``report`` stage writes the same page, without
the run's own column, into its folder. Result tables that stages write (``results`` outputs in Markdown,
such as the quickstart's evaluation table) are embedded.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnwise.records import atomic_write_text
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage


@dataclass
class Entry:
    """One stage on the report: its folder and ``stage.json`` (None when it has not completed)."""

    name: str
    kind: str
    key: str
    dir: Path
    record: dict[str, Any] | None
    status: str | None = None
    wall_s: float | None = None


def _link(text: str, target: Path, base: Path) -> str:
    return f"[{text}]({Path(os.path.relpath(target, base)).as_posix()})"


def _cost(cost: dict[str, Any]) -> str:
    if not cost or "calls" not in cost:
        return ""
    return f"{cost['calls']} model calls ({cost.get('cached', 0)} from the cache, {cost.get('attempts', 0)} requests)"


def _changed_settings(entry: Entry) -> str:
    """The settings that differ from the kind's defaults, ``key=value``."""
    from turnwise.recipe.plan import _flat_diff
    from turnwise.stage.settings import build_settings, plain_settings
    from turnwise.stage.table import STAGES, load_stage

    settings = (entry.record or {}).get("settings", {})
    if entry.kind not in STAGES:
        return ""
    kind = load_stage(entry.kind)
    defaults = plain_settings(build_settings(kind.settings, {}, entry.name, provided=kind.provided),
                              tuple(kind.provided))
    changed = _flat_diff(defaults, settings)
    return ", ".join(f"{k}={json.dumps(b, ensure_ascii=False)}" for k, (_, b) in sorted(changed.items()))


def _table(entries: list[Entry], with_status: bool) -> list[str]:
    head = "| stage | kind | key | " + ("this run | " if with_status else "") + "s | result |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for e in entries:
        record = e.record or {}
        seconds = e.wall_s if with_status and e.status == "ran" else record.get("wall_s")
        status = f"{e.status} | " if with_status else ""
        summary = str(record.get("summary", "")).replace("|", "\\|")
        lines.append(f"| {e.name} | {e.kind} | `{e.key[:12]}` | {status}"
                     f"{'' if seconds is None else f'{seconds:.1f}'} | {summary} |")
    return lines


def _artefacts(e: Entry, base: Path) -> list[str]:
    record = e.record or {}
    links = [_link(name, e.dir / rel, base) for name, rel in record.get("outputs", {}).items()]
    links.append(_link("stage.json", e.dir / "stage.json", base) if record else "not complete")
    lines = [f"- **{e.name}** ({e.kind}, {_link(e.dir.name, e.dir, base)}): " + " · ".join(links)]
    details = [("inputs", ", ".join(f"{k} ← {', '.join(v)}" for k, v in record.get("inputs", {}).items())),
               ("models", ", ".join(f"{k}: {v}" for k, v in record.get("models", {}).items())),
               ("settings", _changed_settings(e) if record else ""), ("cost", _cost(record.get("cost", {}))),
               ("model replies read", _replies(record.get("numbers", {}).get("replies", {}))),
               ("example", _example(record.get("numbers", {}).get("example")))]
    lines += [f"  - {label}: {text}" for label, text in details if text]
    return lines


def _replies(tallies: dict[str, Any]) -> str:
    """``judge verdict 8/8 (100%); rating 7/8 (88%): 1 × the reply is not one JSON object``."""
    parts = []
    for name, t in tallies.items():
        if t.get("calls"):
            why = "; ".join(f"{n} × {reason}" for reason, n in t.get("reasons", {}).items())
            share = f"{name} {t['read']}/{t['calls']} ({t['read'] / t['calls']:.0%})"
            parts.append(share + (f": {why}" if why else ""))
    return "; ".join(parts).replace("|", "\\|")


def _example(text: Any) -> str:
    return f"“{text}”".replace("|", "\\|").replace("\n", " ") if text else ""


def _results(entries: list[Entry]) -> list[str]:
    parts = []
    for e in entries:
        rel = (e.record or {}).get("outputs", {}).get("results")
        if rel and rel.endswith(".md") and (e.dir / rel).exists():
            parts += [f"## Results: {e.name}", "", (e.dir / rel).read_text(encoding="utf-8").strip(), ""]
    return parts


def render_markdown(entries: list[Entry], base: Path, title: str, header: list[str], *, with_status: bool) -> str:
    """The report as Markdown, links relative to ``base`` (the folder the file is written to)."""
    lines = [f"# {title}", "", *header, "", *_table(entries, with_status), "", *_results(entries),
             "## Artefacts", ""]
    for entry in entries:
        lines += _artefacts(entry, base)
    return "\n".join(lines) + "\n"


_INLINE = [(re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
           (re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<b>\1</b>")]
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
          "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
          "text-align:left;vertical-align:top}code{background:#f3f3f3;padding:0 .2rem}")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False).replace("\\|", "|")
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def markdown_to_html(markdown: str, title: str) -> str:
    """HTML for the Markdown this module writes: headings, pipe tables, (nested) lists, paragraphs."""
    out, rows = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            rows = []
        if match := re.match(r"^(#{1,3}) (.*)", line):
            level = len(match[1])
            out.append(f"<h{level}>{_inline(match[2])}</h{level}>")
        elif match := re.match(r"^( *)- (.*)", line):
            style = ' style="margin-left:1.5rem"' if match[1] else ""
            out.append(f"<div{style}>• {_inline(match[2])}</div>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    body = "\n".join(out)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")


def write_report(entries: list[Entry], folder: Path, title: str, header: list[str], *, with_status: bool
                 ) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``folder``."""
    markdown = render_markdown(entries, folder, title, header, with_status=with_status)
    md, page = folder / "report.md", folder / "report.html"
    atomic_write_text(md, markdown)
    atomic_write_text(page, markdown_to_html(markdown, title))
    return md, page


def write_run_report(result: Any) -> Path:
    """``OUT/report.md``, ``OUT/report.html`` and ``OUT/run.json`` for a :class:`~turnwise.recipe.runner.RunResult`."""
    recipe, out = result.plan.recipe, result.plan.recipe.out_dir
    by_name = {o.stage.name: o for o in result.outcomes}
    entries = []
    for stage in result.plan.stages:
        outcome = by_name.get(stage.name)
        status = outcome.status if outcome else "not run"
        entries.append(Entry(stage.name, stage.kind.name, stage.key, stage.dir, outcome.record if outcome else None,
                             status, outcome.wall_s if outcome else None))
    counts = {s: sum(e.status == s for e in entries) for s in ("ran", "cached", "skipped", "not run")}
    header = [f"Recipe `{recipe.path}`{' (--fast)' if recipe.fast else ''}, run in {result.wall_s:.1f} s, finished "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + "."]
    title, *more = (recipe.description or f"turnwise run: {recipe.path.stem}").strip().splitlines()
    if any(line.strip() for line in more):
        header += ["", *more]
    md, _ = write_report(entries, out, title, header, with_status=True)
    run = {"recipe": str(recipe.path), "fast": recipe.fast, "wall_s": round(result.wall_s, 3),
           "stages": [{"name": e.name, "kind": e.kind, "key": e.key, "dir": e.dir.name, "status": e.status,
                       "wall_s": None if e.wall_s is None else round(e.wall_s, 3),
                       "summary": (e.record or {}).get("summary", "")} for e in entries]}
    atomic_write_text(out / "run.json", json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    return md


@dataclass
class ReportSettings:
    """Settings of ``report``.

    Attributes:
        title: the page's title.
    """

    title: str = "turnwise recipe report"


def stage_folder(path: Path) -> Path:
    """The stage folder an output lives in (the nearest folder upwards with a ``stage.json``)."""
    from turnwise.errors import TurnwiseError
    from turnwise.recipe.plan import STAGE_FILE

    for folder in [path, *path.parents]:
        if (folder / STAGE_FILE).is_file():
            return folder
    raise TurnwiseError(f"{path} is not inside a stage folder (no {STAGE_FILE} above it)")


def report(ctx: StageContext) -> StageResult:
    """The ``report`` stage: the stages it reads, their keys, results and artefacts, in its own folder."""
    from turnwise.recipe.plan import stage_record

    entries = []
    for path in ctx.inputs.get("stages", []):
        folder = stage_folder(path)
        record = stage_record(folder) or {}
        entries.append(Entry(record.get("name", folder.name), record.get("kind", "?"), record.get("key", ""), folder,
                             record))
    header = [f"{len(entries)} stages; each folder is named by the stage and the first 12 hex digits of its key."]
    write_report(entries, ctx.layout.dir, ctx.settings.title, header, with_status=False)
    return StageResult(ctx.outputs(), f"{len(entries)} stages reported")


STAGE = Stage("report", "A report of the stages it reads: keys, results and links to every artefact.", ReportSettings,
              report, inputs=(Port("stages", "the stages to report (default: every earlier stage)", required=False,
                                   many=True),),
              outputs=(Output("report", "report.md"), Output("html", "report.html")))
