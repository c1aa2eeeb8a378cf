"""Answer conversations turn by turn with a model: the last user turn, then each follow-up, with its own history.

:mod:`~turnwise.generate.core` is the core (records in, records out); :mod:`~turnwise.generate.adapter` its settings
and the one adapter the command (``turnwise generate``) and a recipe stage (``kind: generate``) both run.
"""

from turnwise.generate.core import GenerateResult, answer_conversation, run_generate

__all__ = ["GenerateResult", "answer_conversation", "run_generate"]
