"""python bench/capo_sweep.py --out runs/capo-sweep

Model selection for the quickstart's comparison, on the dev split, with the same search budget for every method.

Each method the quickstart compares gets ``--trials`` settings drawn (seeded) from its own grid: DPO methods over
β, λ (the SFT term's weight), learning rate and steps; plain-SFT baselines over learning rate and steps. Trial 0 is
the recipe's own settings for every method. Trial k runs the quickstart recipe with every method at its k-th
settings and answers the **dev** split (entity pairs apart from the test pairs, and from every pair training saw)
with ``eval.split=dev``, for each of ``--seeds``; a method's score is its accuracy over all dev turns (standalone
and dependent), averaged over the seeds — one rule for every method. The best trial per method is chosen on dev;
``--test`` then runs the quickstart once on the test split over ``--test-seeds`` with the chosen settings (the
table and verdict ``turnwise quickstart`` prints).

    python bench/capo_sweep.py --out runs/capo-sweep                       # 4 trials x 3 dev seeds
    python bench/capo_sweep.py --out runs/capo-sweep --test                # then test once, seeds 0-4
    python bench/capo_sweep.py --out runs/s --trials 2 --seeds 0 --fast    # the wiring (a minute)
    python bench/capo_sweep.py --out runs/grpo-sweep --methods "online GRPO" --test   # one method's trials

A method is a group of recipe stages that share settings: the iterated round 2 takes its round 1's (so each side
of the round-2 comparison is the method its round 1 chose).
Everything is cached in ``--out`` (content-addressed stages), so a second call redoes nothing. Writes
``OUT/sweep.md`` and ``OUT/sweep.json``: every trial's settings and dev scores per method, the chosen settings as
``--set`` lines, and with ``--test`` the test table. The last line is key=value pairs for scripts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

DPO_GRID = {"beta": (0.1, 0.25, 0.5), "sft_weight": (0.2, 1.0, 2.0), "learning_rate": (2e-5, 5e-5, 1e-4),
            "max_steps": (30, 60, 120)}
SFT_GRID = {"learning_rate": (2e-5, 5e-5, 1e-4, 2e-4), "max_steps": (30, 60, 120)}
# method -> (its grid, the recipe stages that take its settings, the eval label its dev score is read from)
METHODS = {
    "CaPO-DPO": (DPO_GRID, ("train_dpo_capo",), "SFT + CaPO-DPO"),
    "on-policy CaPO-DPO": (DPO_GRID, ("train_dpo_on_policy", "train_dpo_round_2"), "SFT + on-policy CaPO-DPO"),
    "best-of-N DPO": (DPO_GRID, ("train_dpo_bestofn",), "SFT + best-of-N DPO"),
    "matched SFT": (SFT_GRID, ("train_matched_sft",), "SFT + matched SFT"),
    "matched SFT (on-policy pairs)": (SFT_GRID, ("train_matched_sft_on_policy", "train_matched_sft_round_2"),
                                      "SFT + matched SFT (on-policy pairs)"),
    "more SFT": (SFT_GRID, ("train_more_sft",), "SFT + more SFT"),
    # online GRPO: the same budget as the SFT baselines (learning rate and steps), the rollout settings fixed
    "online GRPO": (SFT_GRID, ("train_online",), "SFT + online GRPO (multi-turn)"),
}


def recipe_settings() -> dict[str, dict[str, Any]]:
    """Each method's settings in the packaged recipe (its first stage's): trial 0."""
    from turnwise.quickstart.run import recipe_path
    from turnwise.recipe import load_recipe

    recipe = load_recipe(recipe_path())
    stages = {stage.name: stage for stage in recipe.stages}
    out = {}
    for method, (grid, names, _) in METHODS.items():
        settings = stages[names[0]].settings
        out[method] = {key: getattr(settings, key) for key in grid}
    return out


def draw_trials(trials: int, seed: int = 0) -> list[dict[str, dict[str, Any]]]:
    """``trials`` settings per method: the recipe's own first, then distinct draws from the method's grid."""
    base = recipe_settings()
    rng = random.Random(seed)
    chosen: dict[str, list[dict[str, Any]]] = {}
    for method, (grid, _, _) in METHODS.items():
        points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
        points = [p for p in points if p != base[method]]
        rng.shuffle(points)
        chosen[method] = [base[method], *points[:trials - 1]]
    return [{method: chosen[method][k] for method in METHODS} for k in range(trials)]


def sets_for(trial: dict[str, dict[str, Any]], fast: bool = False) -> list[str]:
    """The ``--set`` lines that put a trial's settings on every stage of each method (with ``fast``, the steps are
    the recipe's fast ones: the wiring only)."""
    lines = []
    for method, settings in trial.items():
        for stage in METHODS[method][1]:
            lines += [f"{stage}.{key}={value}" for key, value in settings.items() if not (fast and key == "max_steps")]
            if "max_steps" in settings and not fast:
                lines.append(f"{stage}.logging_steps={max(1, settings['max_steps'] // 10)}")
    return lines


def dev_score(per_seed: list[dict[str, Any]], label: str) -> dict[str, float]:
    """A method's dev accuracy (percent) averaged over seeds: all turns (the rule), dependent and standalone."""
    def mean(column: str) -> float:
        rates = []
        for seed in per_seed:
            counts = seed[label]["counts"]
            right = sum(counts[c][0] for c in (("standalone", "dependent") if column == "all" else (column,)))
            total = sum(counts[c][1] for c in (("standalone", "dependent") if column == "all" else (column,)))
            rates.append(100 * right / total)
        return round(statistics.fmean(rates), 2)

    return {column: mean(column) for column in ("all", "dependent", "standalone")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/capo-sweep"))
    parser.add_argument("--trials", type=int, default=4, help="settings tried per method (the same for every method)")
    parser.add_argument("--seeds", default="0,1,2", help="dev seeds (comma-separated)")
    parser.add_argument("--test", action="store_true", help="then run the test split once with the chosen settings")
    parser.add_argument("--test-seeds", default="0,1,2,3,4")
    parser.add_argument("--jobs", type=int, default=(os.cpu_count() or 1) + 1, help="seeds at once")
    parser.add_argument("--fast", action="store_true", help="the recipe's fast: block (the wiring only)")
    parser.add_argument("--methods", help="only these methods' trials (comma-separated); the others keep the "
                        "recipe's settings, so their stages are reused from the cache")
    args = parser.parse_args()

    import warnings

    from turnwise.quickstart.run import run_quickstart

    warnings.filterwarnings("ignore", category=FutureWarning)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = list(METHODS) if not args.methods else [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    trials = [{m: trial[m] for m in methods} for trial in draw_trials(args.trials)]
    dev_sets = ["eval.split=dev", "eval.teacher_forced=false"]
    scores: list[dict[str, dict[str, float]]] = []
    started = time.perf_counter()
    for k, trial in enumerate(trials):
        t0 = time.perf_counter()
        result = run_quickstart(args.out / "dev", seeds=seeds, fast=args.fast,
                                sets=[*sets_for(trial, args.fast), *dev_sets], jobs=args.jobs)
        scores.append({method: dev_score(result.per_seed, METHODS[method][2]) for method in methods})
        print(f"trial {k}: {time.perf_counter() - t0:.0f} s; dev all-turn accuracy: "
              + ", ".join(f"{m} {scores[-1][m]['all']:.1f}" for m in methods), flush=True)
    best = {method: max(range(len(trials)), key=lambda k, m=method: (scores[k][m]["all"], -k)) for method in methods}
    chosen = {method: trials[best[method]][method] for method in methods}
    lines = [f"# CaPO model selection on the dev split: {len(trials)} trials per method, dev seeds "
             f"{', '.join(map(str, seeds))}{' (--fast)' if args.fast else ''}", "",
             "Dev accuracy in percent (all turns / dependent / standalone), mean over the dev seeds; the chosen trial "
             "in bold (the rule: best on all turns; ties go to the earlier trial).", ""]
    for method in methods:
        grid = METHODS[method][0]
        lines += [f"## {method}", "", "| trial | " + " | ".join(grid) + " | all | dependent | standalone |",
                  "|---|" + "---|" * (len(grid) + 3)]
        for k, trial in enumerate(trials):
            s = scores[k][method]
            cells = [str(trial[method][key]) for key in grid] + [f"{s['all']:.1f}", f"{s['dependent']:.1f}",
                                                                 f"{s['standalone']:.1f}"]
            mark = "**" if k == best[method] else ""
            lines.append(f"| {mark}{k}{mark} | " + " | ".join(cells) + " |")
        lines.append("")
    chosen_sets = sets_for(chosen, args.fast)
    lines += ["The chosen settings, as `--set` lines:", "", "```", *chosen_sets, "```", ""]
    report: dict[str, Any] = {"trials": trials, "dev_seeds": seeds, "scores": scores, "chosen": chosen,
                              "chosen_trial": best, "sets": chosen_sets, "fast": args.fast}
    if args.test:
        result = run_quickstart(args.out / "test", seeds=[int(s) for s in args.test_seeds.split(",")],
                                fast=args.fast, sets=chosen_sets, jobs=args.jobs)
        lines += ["## Tested once, with the chosen settings", "", result.table]
        report["test"] = {"numbers": result.numbers, "verdict": result.verdict}
    wall = time.perf_counter() - started
    lines.append(f"Machine: {os.cpu_count()} CPU cores; {wall:.0f} s in all.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "sweep.json").write_text(json.dumps({**report, "wall_s": round(wall, 1)}, indent=2), encoding="utf-8")
    print("\n".join(lines))
    print(f"wall_s={wall:.0f} trials={len(trials)} dev_seeds={len(seeds)} "
          + " ".join(f"{m.replace(' ', '_')}_trial={best[m]}" for m in methods))


if __name__ == "__main__":
    main()
