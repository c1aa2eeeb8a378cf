"""Best-of-N preference pairs scored by AI feedback (LongReward) or verifiable checks.

    from turnwise.bestofn import BestOfNConfig, run_bestofn, write_pairs, pick_pair
"""

from turnwise.bestofn.pick import Candidate, Pick, pick_pair
from turnwise.bestofn.stage import BestOfNConfig, BestOfNTotals, best_of_n, pair_meta, run_bestofn, write_pairs

__all__ = [
    "BestOfNConfig",
    "BestOfNTotals",
    "Candidate",
    "Pick",
    "best_of_n",
    "pair_meta",
    "pick_pair",
    "run_bestofn",
    "write_pairs",
]
