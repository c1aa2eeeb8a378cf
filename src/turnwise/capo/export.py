"""From the stage's records to the file the DPO trainer reads: ``ok`` pairs only, deduplicated.

The rows are TRL's conversational preference layout (``prompt`` messages, ``chosen`` and ``rejected``
one assistant message each) with ``id`` and ``meta``, exactly what the ``trl-pref`` writer of
:mod:`turnwise.data.formats` produces, so ``turnwise train dpo`` and ``datasets.load_dataset("json", ...)``
read it without conversion. Two pairs with the same prompt and the same (normalised) rejected answer are
one: the first is kept and the others are counted.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.capo.similarity import normalize
from turnwise.data.io import write_jsonl
from turnwise.records import read_stage_output


@dataclass
class ExportReport:
    """What the export wrote: pairs, duplicates dropped, and pairs per strategy."""

    written: int = 0
    duplicates: int = 0
    by_strategy: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "duplicates": self.duplicates, "by_strategy": dict(self.by_strategy)}


def pair_row(record: dict[str, Any]) -> dict[str, Any]:
    """A stage record as a trl-pref row (``id``, ``prompt``, ``chosen``, ``rejected``, ``meta``)."""
    return {"id": record["id"], "prompt": record["prompt"], "chosen": record["chosen"],
            "rejected": record["rejected"], "meta": record["meta"]}


def _key(record: dict[str, Any]) -> str:
    prompt = json.dumps(record["prompt"], ensure_ascii=False, sort_keys=True)
    blob = prompt + "\x1f" + normalize(record["rejected"][0]["content"])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def unique_pairs(records: Iterable[dict[str, Any]], report: ExportReport) -> Iterator[dict[str, Any]]:
    """The ``ok`` records as rows, the first of each (prompt, rejected) kept."""
    seen: set[str] = set()
    for record in records:
        if record["status"] != "ok":
            continue
        key = _key(record)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        report.by_strategy[record["meta"]["strategy"]] += 1
        yield pair_row(record)


def export_pairs(records_path: str | Path, output: str | Path) -> ExportReport:
    """Write the unique ``ok`` pairs of a capo records file to ``output`` (atomically), in id order: records
    land in the order their calls finished, and a trainer reading the pairs should see the same order on
    every run (and keep the same one of two duplicates)."""
    report = ExportReport()
    records = sorted(read_stage_output(records_path), key=lambda r: r["id"])
    report.written = write_jsonl(output, unique_pairs(records, report))
    return report
