"""The recipe runner: stages chained in a YAML file, each stage's output addressed by a hash of its inputs.

    from turnwise.recipe import load_recipe, make_plan, run_plan

    recipe = load_recipe("recipes/quickstart.yaml", fast=True, sets=["train_dpo.beta=0.2"])
    plan = make_plan(recipe)                       # keys, folders, and cached / run / resume per stage
    result = run_plan(plan, on_event=print)        # OUT/report.md links every artefact

Modules: :mod:`~turnwise.recipe.spec` (parse and validate), :mod:`~turnwise.recipe.hashing` (content addressing),
:mod:`~turnwise.recipe.plan` (keys and actions), :mod:`~turnwise.recipe.runner` (run, ``stage.json``),
:mod:`~turnwise.recipe.report` (the run's report, and the ``report`` stage). The stage kinds a recipe names are
:data:`turnwise.stage.table.STAGES`; each runs its one adapter, the same one its command runs. See docs/recipes.md.
"""

from turnwise.recipe.plan import Plan, PlannedStage, make_plan
from turnwise.recipe.runner import RunResult, StageEvent, run_plan
from turnwise.recipe.spec import Recipe, load_recipe

__all__ = ["Plan", "PlannedStage", "Recipe", "RunResult", "StageEvent", "load_recipe", "make_plan", "run_plan"]
