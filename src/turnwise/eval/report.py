"""Turn judgement records into a report: a Markdown table, a JSON file, per-sample JSONL and an HTML page.

    records = load_records(["runs/eval/a/judgements.jsonl", "runs/eval/b/judgements.jsonl"])
    report = build_report(records)          # per benchmark and model: per turn, per category, overall
    print(markdown(report))
    paths = write_report(records, "runs/eval/report")   # report.json, report.md, samples.jsonl, report.html

Several models (and several benchmarks) go side by side: one table per benchmark, one column per model.
Single-answer grades and pairwise comparisons may be mixed; each record says which it is (``mode``).
The numbers are defined in :mod:`turnwise.eval.aggregate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from turnwise.data.io import write_jsonl
from turnwise.errors import InputError
from turnwise.eval.aggregate import ordered, summarize_pairwise, summarize_single
from turnwise.eval.items import BENCHMARKS
from turnwise.records import atomic_write_text, read_stage_output


def load_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every judgement record of the files, in order; a file that is not one raises InputError."""
    records = []
    for path in paths:
        if not Path(path).is_file():
            raise InputError(str(path), None, "no such judgement file")
        for record in read_stage_output(path):
            if record.get("mode") not in ("single", "pairwise") and not _is_sharded(record):
                raise InputError(str(path), f"record {record['id']!r}", "not an eval judgement (no mode: single or "
                                 "pairwise); pass the files `turnwise eval judge` writes")
            records.append(record)
    return records


def _is_sharded(record: dict[str, Any]) -> bool:
    """A run of `turnwise eval sharded` (no judge: a checker scored it)."""
    return {"task", "setting", "score"} <= record.keys()


def _groups(records: Iterable[dict[str, Any]], mode: str, keys: Sequence[str]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("mode") == mode:
            groups.setdefault(tuple(record.get(k) for k in keys), []).append(record)
    return groups


def build_report(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summaries per (benchmark, model, judge) and per (benchmark, model, baseline, judge)."""
    single = [{"benchmark": b, "model": m, "judge": j, **summarize_single(group)}
              for (b, m, j), group in _groups(records, "single", ("benchmark", "model", "judge")).items()]
    keys = ("benchmark", "model", "baseline", "judge")
    pairwise = [{"benchmark": b, "model": m, "baseline": base, "judge": j, **summarize_pairwise(group)}
                for (b, m, base, j), group in _groups(records, "pairwise", keys).items()]
    report: dict[str, Any] = {"single": single, "pairwise": pairwise}
    runs = [r for r in records if _is_sharded(r)]
    if runs:  # sharded evaluation: accuracy, aptitude, unreliability per setting, per model
        from turnwise.eval.sharded import summarize

        models: dict[str, list[dict[str, Any]]] = {}
        for record in runs:
            models.setdefault(str(record.get("model", "model")), []).append(record)
        report["sharded"] = [{"model": m, **summarize(group)} for m, group in models.items()]
    return report


def sample_rows(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One row per judged turn: ids, score or outcome, failure reason, the question and the answer."""
    for record in records:
        if _is_sharded(record):  # its rows are the runs themselves (the file `eval sharded` wrote)
            continue
        common = {k: record.get(k) for k in ("mode", "benchmark", "model", "baseline", "judge", "category")
                  if k in record}
        turns, answers = record.get("turns", []), record.get("answers", [])
        for entry in record.get("scores", record.get("outcomes", [])):
            k = entry["turn"]
            row = {**common, "id": record["id"], "turn": k, "question": turns[k - 1] if k <= len(turns) else None}
            if record["mode"] == "single":
                row.update(score=entry.get("score"), answer=answers[k - 1] if k <= len(answers) else None,
                           judgement=entry.get("text"))
            else:
                row.update(outcome=entry.get("outcome"), consistent=entry.get("consistent"),
                           verdicts=entry.get("verdicts"))
            if entry.get("failure"):
                row.update(failure=entry["failure"], reason=entry.get("reason"))
            yield row


def _fmt(stat: dict[str, Any]) -> str:
    if stat.get("mean") is None:
        return "—"
    se = f" ± {stat['se']:.2f}" if stat.get("se") is not None else ""
    return f"{stat['mean']:.2f}{se} (n={stat['n']})"


def _fmt_rate(stat: dict[str, Any]) -> str:
    if stat.get("win_rate") is None:
        return "—"
    se = f" ± {100 * stat['se']:.1f}" if stat.get("se") is not None else ""
    return f"{100 * stat['win_rate']:.1f}%{se} ({stat['wins']}/{stat['ties']}/{stat['losses']})"


def _categories(summaries: Sequence[dict[str, Any]]) -> list[str]:
    return ordered(c for s in summaries for c in s["categories"])


def _turns(summaries: Sequence[dict[str, Any]]) -> list[int]:
    return sorted({int(t) for s in summaries for t in s["turns"]})


def _get(table: dict, key: Any) -> dict[str, Any]:
    return table.get(key, table.get(str(key), {}))


def single_table(summaries: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one benchmark's single-grading table: a column per model."""
    labels = _labels(summaries, ("model",))
    rows = [[f"turn {t}", *(_fmt(_get(s["turns"], t)) for s in summaries)] for t in _turns(summaries)]
    rows += [[c, *(_fmt(s["categories"].get(c, {})) for s in summaries)] for c in _categories(summaries)]
    rows.append(["**overall**", *(_fmt(s["overall"]) for s in summaries)])
    rows.append(["failed judgements", *(_failed(s["failed"]) for s in summaries)])
    return ["", *labels], rows


def pairwise_table(summaries: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one benchmark's pairwise table: win rate % ± SE (wins/ties/losses)."""
    labels = [f"{s['model']} vs {s['baseline']}" for s in summaries]
    rows = [[f"turn {t}", *(_fmt_rate(_get(s["turns"], t)) for s in summaries)] for t in _turns(summaries)]
    rows += [[c, *(_fmt_rate(s["categories"].get(c, {})) for s in summaries)] for c in _categories(summaries)]
    rows.append(["**overall**", *(_fmt_rate(s["overall"]) for s in summaries)])
    rows.append(["ties from swapped orders", *(str(s["inconsistent"]) for s in summaries)])
    rows.append(["failed judgements", *(_failed(s["failed"]) for s in summaries)])
    return ["", *labels], rows


def _failed(failed: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in failed.items() if k != "total" and v]
    return f"{failed['total']}" + (f" ({', '.join(parts)})" if parts else "")


def _labels(summaries: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    names = [" · ".join(str(s[k]) for k in keys) for s in summaries]
    if len(set(names)) < len(names):  # the same model under several judges
        names = [f"{n} (judge {s['judge']})" for n, s in zip(names, summaries, strict=True)]
    return names


def by_benchmark(report: dict[str, Any], mode: str) -> dict[str, list[dict[str, Any]]]:
    """A report's summaries of one mode, grouped by benchmark (turnwise's benchmarks first, in their order)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for summary in report[mode]:
        out.setdefault(summary["benchmark"], []).append(summary)
    known = list(BENCHMARKS)
    return dict(sorted(out.items(), key=lambda kv: (known.index(kv[0]) if kv[0] in known else len(known), kv[0])))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: per benchmark, a single-grading table and a pairwise table where there are any."""
    parts = []
    for bench, summaries in by_benchmark(report, "single").items():
        judges = ", ".join(sorted({str(s["judge"]) for s in summaries}))
        if bench == "multichallenge":
            from turnwise.eval.multichallenge import markdown as rubric_markdown

            parts += [rubric_markdown(s["multichallenge"], str(s["model"]), str(s["judge"])) for s in summaries]
            continue
        how = "mean of judged turns"
        if summaries[0]["aggregate"] == "min":
            how = "mean over tasks of each dialogue's lowest turn"
        parts.append(f"### {bench}: single-answer grading (judge {judges}; overall = {how})\n\n"
                     + markdown_table(*single_table(summaries)))
    for bench, summaries in by_benchmark(report, "pairwise").items():
        judges = ", ".join(sorted({str(s["judge"]) for s in summaries}))
        parts.append(f"### {bench}: pairwise, both orders (judge {judges}; win rate, ties count ½)\n\n"
                     + markdown_table(*pairwise_table(summaries)))
    if report.get("sharded"):
        from turnwise.eval.sharded import markdown as sharded_markdown

        parts += [sharded_markdown(s, str(s["model"])).rstrip() for s in report["sharded"]]
    return "\n\n".join(parts) + "\n" if parts else "No judgements to report.\n"


def write_report(records: Sequence[dict[str, Any]], out_dir: str | Path, *, title: str = "turnwise eval",
                 sources: Sequence[str] = (), report: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``samples.jsonl`` and ``report.html`` into ``out_dir``.

    Args:
        records: judgement records (single and/or pairwise).
        out_dir: the folder to write into (created when missing).
        title: the HTML page's title.
        sources: the files the records came from (kept in report.json).
        report: :func:`build_report` of ``records``, when the caller already has it.
    """
    from turnwise.eval.html import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = report if report is not None else build_report(records)
    paths = {name: out / name for name in ("report.json", "report.md", "samples.jsonl", "report.html")}
    atomic_write_text(paths["report.json"], json.dumps({**report, "sources": list(sources)}, indent=2,
                                                       ensure_ascii=False) + "\n")
    atomic_write_text(paths["report.md"], markdown(report))
    write_jsonl(paths["samples.jsonl"], sample_rows(records))
    atomic_write_text(paths["report.html"], render_html(report, title=title))
    return paths
