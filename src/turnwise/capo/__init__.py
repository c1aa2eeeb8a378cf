"""Context-aware preference optimisation data (CaPO, Parrot arXiv 2310.07301 v2): three kinds of negatives.

For each user turn that depends on its history, the dialogue's own answer (or a stronger model's) is the
chosen answer, and the rejected one is written with the history corrupted: left out (context neglect),
invented (context hallucination), or wrong (context misunderstanding). See ``docs/capo.md``.

    from turnwise.capo import CapoConfig, CapoModels, run_capo, export_pairs
"""

from turnwise.capo.export import ExportReport, export_pairs
from turnwise.capo.similarity import similarity, too_close
from turnwise.capo.stage import CapoConfig, CapoResult, build_pairs, history_pool, run_capo
from turnwise.capo.strategies import MODES, STRATEGIES, CapoModels, Negative, StrategyEnv, parse_history
from turnwise.capo.tasks import PairTask, iter_tasks, parse_mix, selected_strategies

__all__ = [
    "MODES",
    "STRATEGIES",
    "CapoConfig",
    "CapoModels",
    "CapoResult",
    "ExportReport",
    "Negative",
    "PairTask",
    "StrategyEnv",
    "build_pairs",
    "export_pairs",
    "history_pool",
    "iter_tasks",
    "parse_history",
    "parse_mix",
    "run_capo",
    "selected_strategies",
    "similarity",
    "too_close",
]
