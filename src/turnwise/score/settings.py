"""How responses are scored, shared by the ``score`` and ``bestofn`` stages: one settings class, one builder.

    scorer = build_scorer_from(settings, judge_model)     # LongReward (with a judge) and/or verifiable checks
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnwise.score.longreward import LongRewardConfig


@dataclass(frozen=True)
class ScoringSettings:
    """How responses are scored.

    Attributes:
        scorer: scorer specs ``NAME[=WEIGHT]``: ``longreward`` (needs a judge model), ``exact``, ``normalized``,
            ``numeric``, ``rm:PATH`` (a reward model from ``turnwise train rm``: 10·sigmoid(reward)), or a
            ``module:function`` check such as ``turnwise.quickstart.world:check_answer``; several are mixed by weight.
        longreward: LongReward's dimensions, judge prompt language, retrieval depth and the history shown.
        retriever: faithfulness evidence: ``dense`` (sentence embeddings) or ``bm25``.
        embedding_model: the sentence-transformers model of the dense retriever (a name, hub id or folder; the
            default ships with turnwise[rag]).
        chunk_tokens: tokens per retrieval chunk (faithfulness).
        tokenizer: counts tokens for chunking: ``regex``, or a tokenizer's hub id or folder.
        judge_attempts: tries per judge verdict (the first at temperature 0).
        judge_max_tokens: most tokens of one judge reply.
        details: keep the judges' analyses in the records (failures always keep their raw replies).
        template_dir: a folder of prompt templates searched before the shipped ones (``score/helpfulness.en.jinja``,
            or only its examples ``score/examples/...``).
        structured: hold the judge's replies to JSON by constrained decoding (a grammar on the local backend,
            ``response_format`` on an OpenAI-compatible server) and read them as JSON, instead of ``[[rating]]``,
            ``[[label]]`` and ``<statement>`` text.
    """

    scorer: tuple[str, ...] = ("longreward",)
    longreward: LongRewardConfig = field(default_factory=LongRewardConfig, metadata={"cli": ""})
    retriever: str = "dense"
    embedding_model: str = "all-MiniLM-L6-v2"
    chunk_tokens: int = 128
    tokenizer: str = "regex"
    judge_attempts: int = 3
    judge_max_tokens: int = 1024
    details: bool = True
    template_dir: str | None = None
    structured: bool = False

    def needs_judge(self) -> bool:
        from turnwise.score.mix import parse_spec

        return any(parse_spec(spec)[0] == "longreward" for spec in self.scorer)


def check_scoring(settings: ScoringSettings, models: dict[str, str]) -> list[str]:
    """What is wrong with the scoring settings, before any model is loaded (``Stage.check``)."""
    from turnwise.errors import ConfigError
    from turnwise.retrieval.retriever import KINDS
    from turnwise.score.mix import check_specs

    problems = []
    try:
        check_specs(list(settings.scorer))
    except ConfigError as exc:
        problems.append(f"settings.scorer: {exc}")
    if settings.needs_judge() and "judge" not in models:
        problems.append("settings.scorer: longreward needs a judge model (--judge-model; in a recipe, models: "
                        "{judge: NAME}), or score with exact, numeric... (--scorer)")
    if settings.retriever not in KINDS:
        problems.append(f"settings.retriever: expected one of {', '.join(KINDS)}, got {settings.retriever!r}")
    return problems


def build_scorer_from(settings: ScoringSettings, judge_model: Any | None) -> Any:
    """The scorer the settings describe, around an already opened (and cached) judge model."""
    from turnwise.judge.core import Judge, RetryPolicy
    from turnwise.prompts import search_path
    from turnwise.retrieval.retriever import make_retriever
    from turnwise.score.mix import build_scorer

    judge = None
    if judge_model is not None:
        policy = RetryPolicy(attempts=settings.judge_attempts, max_tokens=settings.judge_max_tokens)
        judge = Judge(judge_model, policy, search_path(settings.template_dir), settings.structured)
    retriever = None
    if settings.needs_judge():  # only LongReward's faithfulness retrieves
        retriever = make_retriever(settings.retriever, embedding_model=settings.embedding_model,
                                   chunk_tokens=settings.chunk_tokens, tokenizer=settings.tokenizer)
    return build_scorer(list(settings.scorer), judge=judge, retriever=retriever, longreward=settings.longreward)
