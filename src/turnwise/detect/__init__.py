"""Context dependence: which user turns only make sense with their history (Parrot's first CaPO step).

    from turnwise.detect import RuleDetector, detect_messages
    for turn in detect_messages(messages):
        print(turn.index, turn.dependent, turn.confidence, turn.evidence)

Cues in English and Chinese (words, not substrings) weighed by :class:`RuleDetector`; an optional LLM
judge (:mod:`turnwise.detect.judge`); the resumable stage core :func:`run_detect`; labelled public data
and metrics for the benchmark (``python bench/detect_quality.py``).
"""

from turnwise.detect.cues import Cue, find_cues
from turnwise.detect.judge import JudgeConfig, VerdictError, parse_verdict
from turnwise.detect.rules import DEFAULT_WEIGHTS, RuleDetector, TurnDecision, detect_messages, pronoun_only
from turnwise.detect.stage import DetectConfig, DetectResult, detect_conversation, run_detect

__all__ = [
    "DEFAULT_WEIGHTS",
    "Cue",
    "DetectConfig",
    "DetectResult",
    "JudgeConfig",
    "RuleDetector",
    "TurnDecision",
    "VerdictError",
    "detect_conversation",
    "detect_messages",
    "find_cues",
    "parse_verdict",
    "pronoun_only",
    "run_detect",
]
