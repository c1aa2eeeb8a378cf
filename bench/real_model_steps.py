"""python bench/real_model_steps.py [--out runs/bench-real] [--modes text,structured] [--scale 1.0]

Every model-facing step of turnwise on a real model's replies: SmolLM2-135M-Instruct (``smollm2-135m-instruct``,
the embedded model, local backend, greedy judges, one attempt per verdict so that every call counts once), on
public data from ``../shared/data``: MT-Bench first turns (simulate seeds, eval), MT-Eval's 5-turn dialogues with
their answers (detect, capo, LongReward, best-of-N), CANARD (the rewriter).

Each step is a stage of a recipe run once per mode: ``text`` (the templates' own formats: ``[[rating]]``,
``Verdict:``, ``<statement>``, ``Rewrite:``, ``User:``/``Assistant:`` lines) and ``structured`` (the same prompts,
the reply held to a JSON schema by constrained decoding, ``structured: true``). Per step it counts the calls whose
reply was read (parsed, or for free text: usable), the share, and the failure reasons from the records (each kept
with its raw reply); and that no input lost its record. A killed run resumes (the recipe's stages and the response
cache keep what was done). Prints a Markdown table and writes ``OUT/parse-rates.json`` and ``OUT/parse-rates.md``.

Slow on a CPU: about an hour per mode on 2 cores at --scale 1 (each step at least 100 calls).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODEL = {"model": "smollm2-135m-instruct", "backend": "local", "concurrency": 32, "dtype": "float32"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def mt_eval(n: int, answer_chars: int = 500) -> list[dict[str, Any]]:
    """MT-Eval dialogues as conversations (the GPT-4 answers as the assistant turns, shortened)."""
    rows = []
    for line in (DATA / "mt_eval" / "mt-bench_extended.jsonl").read_text(encoding="utf-8").splitlines()[:n]:
        record = json.loads(line)
        messages = []
        for turn in record["conversation"]:
            messages += [{"role": "user", "content": turn["user"]},
                         {"role": "assistant", "content": turn["sys"][:answer_chars]}]
        rows.append({"id": f"mteval-{record['question_id']}", "messages": messages})
    return rows


def inputs(folder: Path, scale: float) -> dict[str, Path]:
    """The files the steps read, each sized for at least 100 calls at scale 1."""
    n = lambda k: max(2, round(k * scale))  # noqa: E731
    folder.mkdir(parents=True, exist_ok=True)
    questions = [json.loads(line) for line in (DATA / "mt_bench" / "question.jsonl").read_text().splitlines()]
    dialogues = mt_eval(80)
    last_turn = [{"id": d["id"], "messages": d["messages"][:4]} for d in dialogues]  # score the second answer
    third = [{"id": f"{d['id']}-3", "messages": d["messages"][:6]} for d in dialogues]  # and the third
    prompts = [{"id": d["id"], "messages": d["messages"][:3]} for d in dialogues]   # a follow-up to answer
    canard = json.loads((DATA / "context" / "canard_dev.json").read_text(encoding="utf-8"))
    random.Random(0).shuffle(canard)
    return {
        "seeds": write_jsonl(folder / "seeds.jsonl", [{"id": f"mtb-{q['question_id']}", "messages": [
            {"role": "user", "content": q["turns"][0]}]} for q in questions[: n(35)]]),
        "dialogues": write_jsonl(folder / "dialogues.jsonl", dialogues[: n(25)]),
        "capo": write_jsonl(folder / "capo.jsonl", dialogues[: n(40)]),
        "answers": write_jsonl(folder / "answers.jsonl", last_turn[: n(30)]),
        "answers_more": write_jsonl(folder / "answers_more.jsonl", third[: n(70)]),
        "prompts": write_jsonl(folder / "prompts.jsonl", prompts[: n(25)]),
        "benchmark": write_jsonl(folder / "mt_bench.jsonl", questions[: n(50)]),
        "pairwise": write_jsonl(folder / "mt_bench_pairs.jsonl", questions[: n(25)]),
        "canard": write_json(folder / "canard.json", canard[: n(100)]),
    }


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def recipe(files: dict[str, Path], out: Path, structured: bool, more: bool = True) -> dict[str, Any]:
    judge = {"judge_attempts": 1, "structured": structured}
    longreward_more = [
        # faithfulness makes several calls per answer (statements, then one per statement); the other three
        # dimensions one each: these 70 more answers bring them to 100 calls
        {"name": "longreward_more", "kind": "score", "inputs": {"answers": {"file": str(files["answers_more"])}},
         "models": {"judge": "smol"},
         "settings": {**judge, "retriever": "bm25", "judge_max_tokens": 192,
                      "longreward": {"lang": "en", "dimensions": ["helpfulness", "logicality", "completeness"]}}},
    ] if more else []
    return {"description": f"real-model steps ({'structured' if structured else 'text'})", "out_dir": str(out),
            "seed": 0, "models": {"smol": MODEL}, "stages": [
        {"name": "simulate", "kind": "simulate", "inputs": {"seeds": {"file": str(files["seeds"])}},
         "models": {"user": "smol", "assistant": "smol"},
         "settings": {"mode": "prompted", "turns": 4, "min_turns": 1, "lang": "en", "max_regenerations": 1,
                      "user_settings": {"temperature": 0.7, "max_tokens": 48},
                      "assistant_settings": {"temperature": 0.0, "max_tokens": 96}}},
        {"name": "detect", "kind": "detect", "inputs": {"dialogues": {"file": str(files["dialogues"])}},
         "models": {"judge": "smol"},
         "settings": {"lang": "en", "judge": {"judge_on": "all", "structured": structured,
                                              "settings": {"max_tokens": 160}}}},
        {"name": "capo", "kind": "capo", "inputs": {"dialogues": {"file": str(files["capo"])}},
         "models": {"negative": "smol"},
         "settings": {"prompted": True, "lang": "en", "mix": {"hallucination": 1}, "exchanges": 1,
                      "structured": structured, "settings": {"temperature": 0.0, "max_tokens": 160}}},
        {"name": "longreward", "kind": "score", "inputs": {"answers": {"file": str(files["answers"])}},
         "models": {"judge": "smol"},
         "settings": {**judge, "retriever": "bm25", "judge_max_tokens": 192, "longreward": {"lang": "en"}}},
        {"name": "bestofn", "kind": "bestofn", "inputs": {"dialogues": {"file": str(files["prompts"])}},
         "models": {"policy": "smol", "judge": "smol"},
         "settings": {**judge, "n": 4, "min_scored": 2, "min_margin": 0, "retriever": "bm25",
                      "judge_max_tokens": 192, "longreward": {"dimensions": ["helpfulness"], "lang": "en"},
                      "settings": {"temperature": 0.8, "max_tokens": 96}}},
        {"name": "answers", "kind": "eval_answer", "inputs": {"benchmark": {"file": str(files["benchmark"])}},
         "models": {"model": "smol"}, "settings": {"name": "smollm2", "temperature": 0.0, "max_tokens": 128}},
        {"name": "eval_single", "kind": "eval_judge", "inputs": {"answers": "answers"},
         "models": {"judge": "smol"}, "settings": {**judge, "judge_max_tokens": 192, "lang": "en"}},
        {"name": "baseline", "kind": "eval_answer", "inputs": {"benchmark": {"file": str(files["pairwise"])}},
         "models": {"model": "smol"}, "settings": {"name": "smollm2-t07", "temperature": 0.7, "max_tokens": 128}},
        {"name": "eval_pairwise", "kind": "eval_judge", "inputs": {"answers": "answers", "baseline": "baseline"},
         "models": {"judge": "smol"}, "settings": {**judge, "judge_max_tokens": 192, "lang": "en"}},
        {"name": "rewrite", "kind": "rewrite", "inputs": {"conversations": {"file": str(files["canard"])}},
         "models": {"model": "smol"},
         "settings": {"input_format": "canard", "gate": "always", "variant": "direct", "attempts": 1,
                      "max_tokens": 96, "structured": structured, "lang": "en"}},
        *longreward_more,
    ]}


# -- what each step's records say: the adapters' own tallies (the report shows the same) --------------------

def _records(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(result: Any, files: dict[str, Path]) -> tuple[dict[str, Any], dict[str, int]]:
    """Per step its tally, and per stage the inputs that have no record (none should)."""
    from turnwise.capo.adapter import replies as capo_replies
    from turnwise.detect.adapter import replies as detect_replies
    from turnwise.eval.adapter import replies as eval_replies
    from turnwise.rag.adapter import replies as rewrite_replies
    from turnwise.score.adapter import replies as score_replies
    from turnwise.simulate.adapter import replies as simulate_replies

    def results(folder: Path, name: str, key: str) -> list[dict[str, Any]]:
        return [x for r in _records(folder, name) for x in r.get(key, [])]

    readers = {
        "simulate": lambda f: simulate_replies(_records(f, "dialogues.jsonl")),
        "detect": lambda f: detect_replies(_records(f, "detections.jsonl")),
        "capo": lambda f: {"invented history": capo_replies(_records(f, "records.jsonl"))["invented history"]},
        "longreward": lambda f: score_replies(results(f, "scores.jsonl", "results")),
        "bestofn": lambda f: score_replies(results(f, "records.jsonl", "candidates")),
        "eval_single": lambda f: eval_replies(_records(f, "judgements.jsonl")),
        "eval_pairwise": lambda f: eval_replies(_records(f, "judgements.jsonl")),
        "rewrite": lambda f: rewrite_replies(_records(f, "rewrites.jsonl")),
    }
    one_each = {"simulate": ("seeds", "dialogues.jsonl"), "detect": ("dialogues", "detections.jsonl"),
                "longreward": ("answers", "scores.jsonl"), "longreward_more": ("answers_more", "scores.jsonl"),
                "answers": ("benchmark", "answers.jsonl"),
                "eval_single": ("benchmark", "judgements.jsonl"), "baseline": ("pairwise", "answers.jsonl"),
                "rewrite": ("canard", "rewrites.jsonl")}
    table, lost = {}, {}
    for outcome in result.outcomes:
        stage = outcome.stage
        name = stage.name.removesuffix("_more")  # longreward_more adds to longreward's steps
        if name in readers:
            for step, tallied in readers[name](stage.dir).items():
                merge(table, f"{name}: {step}", tallied)
        if stage.name in one_each:
            source, output = one_each[stage.name]
            lost[stage.name] = _count(files[source]) - len(_records(stage.dir, output))
    return table, lost


def merge(table: dict[str, dict[str, Any]], step: str, tallied: dict[str, Any]) -> None:
    """Add a stage's tally of a step to the table's (one step may be measured by two stages)."""
    if step not in table:
        table[step] = tallied
        return
    into = table[step]
    into["calls"] += tallied["calls"]
    into["read"] += tallied["read"]
    into["share"] = round(into["read"] / into["calls"], 4) if into["calls"] else None
    for reason, n in tallied["reasons"].items():
        into["reasons"][reason] = into["reasons"].get(reason, 0) + n


def _count(path: Path) -> int:
    return len(json.loads(path.read_text(encoding="utf-8"))) if path.suffix == ".json" else \
        sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def markdown(by_mode: dict[str, dict[str, Any]]) -> str:
    modes = list(by_mode)
    steps = list(dict.fromkeys(step for table in by_mode.values() for step in table))
    head = "| step | " + " | ".join(f"{m}: read / calls" for m in modes) + " | failure reasons (" + modes[0] + ") |"
    lines = [head, "|---" * (len(modes) + 2) + "|"]
    for step in steps:
        cells = []
        for mode in modes:
            t = by_mode[mode].get(step)
            cells.append("—" if not t or not t["calls"] else f"{t['read']}/{t['calls']} ({t['read'] / t['calls']:.0%})")
        reasons = by_mode[modes[0]].get(step, {}).get("reasons", {})
        why = "; ".join(f"{n} × {r}" for r, n in reasons.items()).replace("|", "\\|")
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {why} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-real")
    parser.add_argument("--modes", default="text,structured")
    parser.add_argument("--scale", type=float, default=1.0, help="input sizes (1 = at least 100 calls per step)")
    parser.add_argument("--short-text", action="store_true",
                        help="text mode scores the first 30 answers only with LongReward (30 calls for its one-call "
                             "dimensions instead of 100): about 15 minutes less")
    args = parser.parse_args()
    from turnwise.recipe import load_recipe, make_plan, run_plan

    files = inputs(args.out / "data", args.scale)
    by_mode, lost_by_mode = {}, {}
    for mode in args.modes.split(","):
        start = time.time()
        path = args.out / f"{mode}.yaml"
        # One folder for both modes: stages that do not depend on the mode (simulate, the answers) share their key,
        # so the second mode finds them done, and the one response cache answers what both ask alike.
        path.write_text(json.dumps(recipe(files, args.out / "runs", mode == "structured",
                                      more=mode == "structured" or not args.short_text), indent=1),
                        encoding="utf-8")
        result = run_plan(make_plan(load_recipe(path)),
                          on_event=lambda e, mode=mode: e.event in ("done", "failed") and print(
                              f"[{mode}] {e.stage}: {e.event} in {e.wall_s:.0f} s: {e.summary}", file=sys.stderr))
        by_mode[mode], lost_by_mode[mode] = measure(result, files)
        print(f"[{mode}] {time.time() - start:.0f} s", file=sys.stderr)
    table = markdown(by_mode)
    (args.out / "parse-rates.md").write_text(table, encoding="utf-8")
    (args.out / "parse-rates.json").write_text(json.dumps({"steps": by_mode, "lost": lost_by_mode}, indent=2),
                                               encoding="utf-8")
    print(table)
    print("records lost per stage:", json.dumps(lost_by_mode))
    parsed = {mode: [t for step, t in tab.items() if t["calls"] and not step.startswith("simulate:")]
              for mode, tab in by_mode.items()}  # simulate writes free text: nothing to parse
    print(" ".join(f"{mode}_min_parse_share={min(t['read'] / t['calls'] for t in steps):.3f}"
                   for mode, steps in parsed.items() if steps))


if __name__ == "__main__":
    main()
