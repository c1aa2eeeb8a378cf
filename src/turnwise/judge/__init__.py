"""The judge core every AI-feedback score is built from: a Jinja prompt, a judge model, a strict parser,
a retry policy, and failures kept as data.

    from turnwise.judge import Judge, RetryPolicy, parse_rating

    judge = Judge(model, RetryPolicy(attempts=3))
    verdict = await judge.ask("score/helpfulness", parse_rating, "en", query=q, response=r, history=[])
    verdict.value if verdict.ok else verdict.failure()    # 8.0, or {reason, attempts, raw, errors}

Templates live in ``turnwise/templates/<family>/<name>.<lang>.jinja`` (``score/`` for LongReward);
:func:`render` finds them, with a project's own folders first.
"""

from turnwise.judge.core import Judge, Judgement, RetryPolicy, ask_judge
from turnwise.judge.parse import ParseError, parse_label, parse_rating, parse_tagged
from turnwise.prompts import LANGS, detect_lang, prompt_messages, render, resolve_lang

__all__ = [
    "LANGS",
    "Judge",
    "Judgement",
    "ParseError",
    "RetryPolicy",
    "ask_judge",
    "detect_lang",
    "parse_label",
    "parse_rating",
    "parse_tagged",
    "prompt_messages",
    "render",
    "resolve_lang",
]
