"""The ``report`` adapter: the stages it reads, their keys, results and artefacts, in its own folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from turnwise.errors import TurnwiseError
from turnwise.recipe.context import StageContext, StageResult
from turnwise.recipe.plan import STAGE_FILE, stage_record
from turnwise.recipe.registry import Kind, Port, register
from turnwise.recipe.report import Entry, write_report


@dataclass
class ReportSettings:
    """Settings of ``report``.

    Attributes:
        title: the page's title.
    """

    title: str = "turnwise recipe report"


def stage_folder(path: Path) -> Path:
    """The stage folder an output lives in (the nearest folder upwards with a ``stage.json``)."""
    for folder in [path, *path.parents]:
        if (folder / STAGE_FILE).is_file():
            return folder
    raise TurnwiseError(f"{path} is not inside a stage folder (no {STAGE_FILE} above it)")


@register(Kind("report", "A report of the stages it reads: keys, results and links to every artefact.",
               ReportSettings, inputs=(Port("stages", "the stages to report (default: every earlier stage)",
                                            required=False, many=True),), outputs=("report", "html")))
def report(ctx: StageContext) -> StageResult:
    entries = []
    for path in ctx.inputs.get("stages", []):
        folder = stage_folder(path)
        record = stage_record(folder) or {}
        entries.append(Entry(record.get("name", folder.name), record.get("kind", "?"), record.get("key", ""), folder,
                             record))
    header = [f"{len(entries)} stages; each folder is named by the stage and the first 12 hex digits of its key."]
    write_report(entries, ctx.dir, ctx.settings.title, header, with_status=False)
    return StageResult({"report": "report.md", "html": "report.html"}, f"{len(entries)} stages reported")
