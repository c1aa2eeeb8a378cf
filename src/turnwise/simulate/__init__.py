"""User simulation and self-play dialogue synthesis (Parrot, arXiv 2310.07301).

* :mod:`~turnwise.simulate.prompts`: the simulator's prompt and the role flip every backend needs;
* :mod:`~turnwise.simulate.ask_data`: real dialogues → ask-model (Parrot-Ask) training data;
* :mod:`~turnwise.simulate.seeds`: seed first turns from dialogue files or text lines;
* :mod:`~turnwise.simulate.filters`: pure filters on simulated user turns;
* :mod:`~turnwise.simulate.engine`: the stage core, one async loop per dialogue;
* :mod:`~turnwise.simulate.stats`: turns per dialogue, filter counts, context-dependence share.

Nothing here imports torch or transformers at import time.
"""

from turnwise.simulate.ask_data import AskDataConfig, ask_example, ask_messages, write_ask_dataset
from turnwise.simulate.engine import SimulateConfig, SimulateResult, run_simulate, simulate_dialogue
from turnwise.simulate.filters import FilterConfig, check_user_turn
from turnwise.simulate.prompts import SimulatorPrompt, flip_roles, simulator_prompt
from turnwise.simulate.seeds import Seed, read_seeds
from turnwise.simulate.stats import SimulationStats, is_context_dependent, summarize

__all__ = [
    "AskDataConfig",
    "FilterConfig",
    "Seed",
    "SimulateConfig",
    "SimulateResult",
    "SimulationStats",
    "SimulatorPrompt",
    "ask_example",
    "ask_messages",
    "check_user_turn",
    "flip_roles",
    "is_context_dependent",
    "read_seeds",
    "run_simulate",
    "simulate_dialogue",
    "simulator_prompt",
    "summarize",
    "write_ask_dataset",
]
