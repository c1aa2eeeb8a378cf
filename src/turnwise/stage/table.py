"""Every stage kind by name, as ``module:attr``, imported only when used (like the model backends).

    stage = load_stage("capo")          # imports turnwise.capo.adapter and returns its STAGE
    every = load_stages()               # what a recipe may name

Adding a stage is one line here; nothing registers itself by being imported. A test may put a
:class:`~turnwise.stage.spec.Stage` object in :data:`STAGES` directly (``monkeypatch.setitem``).
"""

from __future__ import annotations

import importlib
from typing import Any

from turnwise.errors import ConfigError
from turnwise.stage.spec import Stage

STAGES: dict[str, Any] = {
    "generate": "turnwise.generate.adapter:STAGE",
    "simulate": "turnwise.simulate.adapter:STAGE",
    "ask_data": "turnwise.simulate.adapter:ASK_DATA",
    "detect": "turnwise.detect.adapter:STAGE",
    "capo": "turnwise.capo.adapter:STAGE",
    "score": "turnwise.score.adapter:STAGE",
    "bestofn": "turnwise.bestofn.adapter:STAGE",
    "train_sft": "turnwise.train.adapter:SFT",
    "train_ask": "turnwise.train.adapter:ASK",
    "train_dpo": "turnwise.train.adapter:DPO",
    "train_rm": "turnwise.train.adapter:RM",
    "train_online": "turnwise.train.adapter:ONLINE",
    "eval": "turnwise.eval.adapter:STAGE",
    "eval_answer": "turnwise.eval.adapter:ANSWER",
    "eval_judge": "turnwise.eval.adapter:JUDGE",
    "eval_sharded": "turnwise.eval.sharded_stage:STAGE",
    "rewrite": "turnwise.rag.adapter:REWRITE",
    "rewrite_eval": "turnwise.rag.adapter:REWRITE_EVAL",
    "rag": "turnwise.rag.adapter:RAG",
    "rag_index": "turnwise.rag.adapter:RAG_INDEX",
    "toy_data": "turnwise.quickstart.stages:TOY_DATA",
    "tiny_model": "turnwise.quickstart.stages:TINY_MODEL",
    "toy_eval": "turnwise.quickstart.stages:TOY_EVAL",
    "report": "turnwise.recipe.report:STAGE",
}


def load_stage(name: str) -> Stage:
    """The stage kind ``name``, its module imported now.

    Raises:
        ConfigError: no such kind.
    """
    target = STAGES.get(name)
    if target is None:
        raise ConfigError(f"unknown stage kind {name!r}; kinds: {', '.join(sorted(STAGES))}")
    if isinstance(target, Stage):
        return target
    module, _, attr = target.partition(":")
    stage = getattr(importlib.import_module(module), attr)
    if stage.name != name:
        raise ConfigError(f"{target} declares the stage {stage.name!r}, not {name!r}")
    return stage


def load_stages() -> dict[str, Stage]:
    """Every stage kind, by name."""
    return {name: load_stage(name) for name in STAGES}
