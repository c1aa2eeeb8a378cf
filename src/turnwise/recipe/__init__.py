"""The recipe runner: stages chained in a YAML file, each stage's output addressed by a hash of its inputs.

    from turnwise.recipe import load_recipe, make_plan, run_plan

    recipe = load_recipe("recipes/quickstart.yaml", fast=True, sets=["train_dpo.beta=0.2"])
    plan = make_plan(recipe)                       # keys, folders, and cached / run / resume per stage
    result = run_plan(plan, on_event=print)        # OUT/report.md links every artefact

Modules: :mod:`~turnwise.recipe.spec` (parse and validate), :mod:`~turnwise.recipe.settings` (settings
dataclasses from YAML), :mod:`~turnwise.recipe.hashing` (content addressing), :mod:`~turnwise.recipe.plan`
(keys and actions), :mod:`~turnwise.recipe.runner` (run, ``stage.json``), :mod:`~turnwise.recipe.registry`
and :mod:`~turnwise.recipe.kinds` (stage kinds and their adapters), :mod:`~turnwise.recipe.report`.
See docs/recipes.md.
"""

from turnwise.recipe.plan import Plan, PlannedStage, make_plan
from turnwise.recipe.registry import KINDS, Kind, Port, kinds, register
from turnwise.recipe.runner import RunResult, StageEvent, run_plan
from turnwise.recipe.spec import Recipe, load_recipe

__all__ = ["KINDS", "Kind", "Plan", "PlannedStage", "Port", "Recipe", "RunResult", "StageEvent", "kinds",
           "load_recipe", "make_plan", "register", "run_plan"]
