"""The offline quickstart: the quickstart recipe (``turnwise/recipes/quickstart.yaml``), once per seed, and
the result table over the seeds.

    result = run_quickstart("runs/quickstart", jobs=2)     # seeds 0-4, two at a time: minutes on a CPU
    result = run_quickstart("runs/q", fast=True)           # one seed, the recipe's fast: block (well under a minute)
    print(result.table)

Each seed is a whole :func:`turnwise.recipe.run_plan` of the recipe into ``OUT/seed-N`` (its own split of the
toy world, its own models), so a second call is answered by the finished stages and a changed ``--set``
re-runs only what it touches. ``OUT/results.md``, ``results.json`` and ``results.html`` (per-turn plot) hold
the accuracy over seeds; each seed's own table, report and artefacts are in its folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError
from turnwise.eval.stats import p_is
from turnwise.quickstart.world import ERRORS
from turnwise.records import atomic_write_text

MATCHED = "SFT + matched SFT"  # baseline (a): plain SFT on exactly the tokens DPO's SFT term trains (chosen answers)
BASELINE = "SFT + more SFT"  # baseline (b): plain SFT on every assistant turn of the pairs' prompts and chosen answers
MATCHED_ON_POLICY = "SFT + matched SFT (on-policy pairs)"  # on-policy CaPO-DPO's own matched baseline
MATCHED_ROUND_2 = "SFT + matched SFT (round-2 pairs)"  # iterated DPO's: the on-policy one, trained on as long
BASELINES = (MATCHED, BASELINE, MATCHED_ON_POLICY, MATCHED_ROUND_2)
CAPO = "SFT + CaPO-DPO"
# The CaPO variants, each against its matched baseline (the same chosen answers, steps, batch and learning rate),
# fixed before the run; the goal must hold for one of them at GOAL_P divided by their number (Bonferroni).
VARIANTS = ((CAPO, MATCHED), ("SFT + on-policy CaPO-DPO", MATCHED_ON_POLICY),
            ("SFT + on-policy CaPO-DPO, round 2", MATCHED_ROUND_2))
SEEDS = (0, 1, 2, 3, 4)  # at least five: the paired statistics pool them
GOAL_POINTS = 5.0  # what CaPO-DPO should gain over the matched baseline on dependent turns
GOAL_P = 0.01  # at this significance (McNemar, turns pooled over seeds)
STANDALONE_LOSS = 1.0  # the most it may lose on standalone turns (points)


def recipe_path() -> Path:
    """The quickstart recipe shipped with the package (``recipes/quickstart.yaml`` in the repository)."""
    return Path(str(resources.files("turnwise") / "recipes" / "quickstart.yaml"))


@dataclass
class QuickstartResult:
    """What a quickstart run left: per seed its run and evaluation numbers; the table over seeds."""

    out_dir: Path
    seeds: list[int]
    runs: list[Any] = field(default_factory=list)
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    table: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""


def _seed_plan(out: Path, seed: int, fast: bool, sets: Sequence[str], recipe: Path) -> Any:
    from turnwise.recipe import load_recipe, make_plan

    where = [f"seed={seed}", f"out_dir={out / f'seed-{seed}'}"]
    plan = make_plan(load_recipe(recipe, fast=fast, sets=[*sets, *where]))
    if not any(stage.name == "eval" and stage.kind.name == "toy_eval" for stage in plan.stages):
        raise ConfigError(f"{recipe}: the quickstart needs a stage named eval of kind toy_eval (its table reads it)")
    return plan


def _run_seed(out: Path, seed: int, fast: bool, sets: Sequence[str], recipe: Path) -> dict[str, Any]:
    """One seed's whole run in a worker process: what the parent needs to rebuild its result."""
    import warnings

    from turnwise.recipe import run_plan

    warnings.filterwarnings("ignore", category=FutureWarning)  # as the command does: the libraries' deprecations

    run = run_plan(_seed_plan(out, seed, fast, sets, recipe))
    return {"wall_s": run.wall_s, "report": run.report,
            "outcomes": [(o.stage.name, o.status, o.wall_s) for o in run.outcomes]}


def _rebuilt(plan: Any, done: dict[str, Any]) -> Any:
    """A worker's run as a :class:`~turnwise.recipe.runner.RunResult` over the parent's plan (its stages now
    complete), with the statuses and times the worker saw."""
    from turnwise.recipe.plan import stage_record
    from turnwise.recipe.runner import RunResult, StageOutcome

    stages = {stage.name: stage for stage in plan.stages}
    outcomes = [StageOutcome(stages[name], status, wall, record=stage_record(stages[name].dir, stages[name].key)
                             if status in ("ran", "cached") else None) for name, status, wall in done["outcomes"]]
    return RunResult(plan, outcomes, done["wall_s"], done["report"])


def run_quickstart(out_dir: str | Path, *, seeds: Sequence[int] | None = None, fast: bool = False,
                   sets: Iterable[str] = (), on_plan: Callable[[int, Any], Any] | None = None, jobs: int = 1,
                   on_seed: Callable[[int, Any], None] | None = None, recipe: str | Path | None = None
                   ) -> QuickstartResult:
    """Run the quickstart recipe for each seed, then write the table over seeds.

    Args:
        out_dir: where each seed's run goes (``OUT/seed-N``) and the results over seeds.
        seeds: the seeds (default: 0-4; with ``fast``, 0 alone).
        fast: apply the recipe's ``fast:`` block (the wiring, small).
        sets: ``--set`` overrides for every seed's recipe (``train_dpo_capo.beta=0.2``...).
        on_plan: called with (seed, plan) before each run; returns the observer of that run's events
            (a progress view), or None. Sequential runs only (``jobs`` 1).
        jobs: seeds run at once, each in its own process (the recipe runs a tiny model on one thread, so two
            seeds on two cores take about the time of one); the results are the same as one at a time.
        on_seed: called with (seed, run) as each seed finishes.
        recipe: another recipe run the same way (default: the packaged quickstart recipe); it needs a ``toy_eval``
            stage named ``eval``, such as ``recipes/capo-smollm2.yaml`` (the same comparison on a pretrained model).
    """
    from turnwise.quickstart.results import (
        errors_markdown,
        paired_comparisons,
        paired_markdown,
        results_html,
        seeds_markdown,
    )
    from turnwise.recipe import run_plan
    from turnwise.recipe.runner import output_path

    out = Path(out_dir)
    chosen = list(seeds if seeds is not None else (SEEDS[:1] if fast else SEEDS))
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    sets = list(sets)
    recipe = Path(recipe) if recipe is not None else recipe_path()
    result = QuickstartResult(out, chosen)
    outcomes: list[dict[str, Any]] = []
    forced: list[dict[str, Any]] = []
    runs: dict[int, Any] = {}
    if jobs > 1 and len(chosen) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(jobs, len(chosen)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_seed, out, seed, fast, sets, recipe): seed for seed in chosen}
            for future in as_completed(futures):
                seed = futures[future]
                runs[seed] = _rebuilt(_seed_plan(out, seed, fast, sets, recipe), future.result())
                if on_seed:
                    on_seed(seed, runs[seed])
    else:
        for seed in chosen:
            plan = _seed_plan(out, seed, fast, sets, recipe)
            observer = on_plan(seed, plan) if on_plan else None
            runs[seed] = run_plan(plan, on_event=observer)
            if on_seed:
                on_seed(seed, runs[seed])
    for seed in chosen:
        plan = runs[seed].plan
        result.runs.append(runs[seed])
        result.per_seed.append(json.loads(output_path(plan, "eval", "numbers").read_text(encoding="utf-8")))
        outcomes.append(json.loads(output_path(plan, "eval", "outcomes").read_text(encoding="utf-8")))
        forced.append(json.loads(output_path(plan, "eval", "teacher_forced").read_text(encoding="utf-8")))
    # the quickstart's baselines; another recipe's models are compared with its eval's `against` model
    against = result.per_seed[0]["changes"]["against"]
    baselines = [b for b in BASELINES if b in outcomes[0]] or [against]
    table, numbers = seeds_markdown(result.per_seed, against=against)
    comparisons = paired_comparisons(outcomes, baselines)
    result.verdict = verdict(comparisons)
    title = f"held-out accuracy over {len(chosen)} seed(s) ({', '.join(map(str, chosen))}){' --fast' if fast else ''}"
    errors = {model: {e: sum(seed[model]["errors"][e] for seed in result.per_seed) for e in ERRORS}
              for model in numbers["models"]}
    parts = [f"# turnwise quickstart: {title}", "Free-running: each model answers with its own history.", table,
             paired_markdown(comparisons, len(chosen)),
             f"Wrong dependent turns by kind of error, summed over the seeds:\n\n{errors_markdown(errors)}"]
    extra: dict[str, Any] = {}
    if all("teacher_forced" in seed for seed in result.per_seed):
        forced_table, forced_numbers = seeds_markdown([seed["teacher_forced"] for seed in result.per_seed],
                                                      against=against)
        forced_pairs = paired_comparisons(forced, baselines[:1])
        parts += ["Teacher-forced: each turn answered with the gold history before it.", forced_table,
                  paired_markdown(forced_pairs, len(chosen))]
        extra = {"teacher_forced": {**forced_numbers, "paired": forced_pairs}}
    result.table = "\n\n".join(p.strip() for p in parts) + f"\n\n{result.verdict}\n"
    result.numbers = {**numbers, "paired": comparisons, "errors": errors, **extra, "seed_values": chosen,
                      "fast": fast, "verdict": result.verdict, "runs": [str(r.report) for r in result.runs]}
    atomic_write_text(out / "results.md", result.table)
    atomic_write_text(out / "results.json", json.dumps(result.numbers, indent=2))
    atomic_write_text(out / "results.html", results_html(result.per_seed, title="turnwise quickstart",
                                                         notes=result.verdict, against=against,
                                                         paired=comparisons))
    return result


def verdict(comparisons: dict[str, Any]) -> str:
    """Whether a CaPO variant beat its matched baseline on dependent turns by the goal, significantly (``GOAL_P``
    over the number of variants: the best of several is not chosen after the fact), without losing more than the
    allowed points on standalone turns: computed from the paired statistics, not the means alone."""
    rows = [(model, base, comparisons[base][model]) for model, base in VARIANTS
            if model in comparisons.get(base, {})]
    if not rows:
        return ""
    threshold = GOAL_P / len(rows)
    lines, met = [], []
    for model, base, row in rows:
        dep, alone = row["dependent"], row["standalone"]
        if dep["diff"] >= GOAL_POINTS and dep["p"] < threshold and alone["diff"] >= -STANDALONE_LOSS:
            met.append(model)
        lines.append(f"- {model} vs {base}: {dep['diff']:+.1f} points on dependent turns [{dep['low']:+.1f}, "
                     f"{dep['high']:+.1f}], {p_is(dep['p'])}; {alone['diff']:+.1f} on standalone ones")
    goal = (f"Goal: a CaPO variant ≥ +{GOAL_POINTS:.0f} points over its matched baseline on dependent turns with "
            f"p < {GOAL_P}/{len(rows)}, standalone ≥ −{STANDALONE_LOSS:.0f}: "
            + (f"met by {', '.join(met)}." if met else "not met.") + " docs/quickstart.md explains the result.")
    return goal + "\n\n" + "\n".join(lines)
