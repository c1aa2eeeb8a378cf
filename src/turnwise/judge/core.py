"""Ask a judge model for a verdict: render, call, parse strictly, retry, and keep the failure as data.

    judge = Judge(judge_model, RetryPolicy(attempts=3))
    verdict = await judge.ask("score/helpfulness", parse_rating, "en", query=q, response=r, history=[])
    if verdict.ok:
        verdict.value       # 8.0
    else:
        verdict.reason      # "no valid verdict after 3 attempts: rating 11 is outside 0–10"
        verdict.raw         # every reply, as the judge wrote it

The first attempt runs at a low temperature (the judge's best guess); a reply that cannot be parsed, or a
call that fails, is tried again at a higher temperature with a different seed (with the response cache in
front, the same settings would only return the same broken reply). After the last attempt the failure is
returned, with every raw reply and the reason each was rejected: never a 0, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.judge.parse import ParseError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import prompt_messages
from turnwise.stage.runner import Cost

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How a judge is asked, and asked again.

    Attributes:
        attempts: tries in all (the first plus retries), at least 1.
        first_temperature: temperature of the first try (LongReward: 0.01).
        retry_temperature: temperature of every retry (LongReward: 0.95); each retry also gets its own seed.
        max_tokens: most tokens of one judge reply (analysis included).
    """

    attempts: int = 3
    first_temperature: float = 0.0
    retry_temperature: float = 0.8
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"judge attempts must be at least 1, got {self.attempts}")

    def settings(self, attempt: int) -> GenerationSettings:
        """Generation settings of attempt ``attempt`` (0-based)."""
        if attempt == 0:
            return GenerationSettings(temperature=self.first_temperature, max_tokens=self.max_tokens)
        return GenerationSettings(temperature=self.retry_temperature, max_tokens=self.max_tokens, seed=attempt)

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "first_temperature": self.first_temperature,
                "retry_temperature": self.retry_temperature, "max_tokens": self.max_tokens}


@dataclass
class Judgement(Generic[T]):
    """The outcome of asking a judge.

    Attributes:
        value: the parsed verdict, or None when every attempt failed.
        reason: why it failed (None when it did not).
        raw: each attempt's reply as written ("" for a call that failed).
        errors: why each rejected attempt was rejected, in order.
        cost: every call made, retries included.
    """

    value: T | None
    reason: str | None
    raw: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def attempts(self) -> int:
        return len(self.raw)

    @property
    def text(self) -> str:
        """The reply the verdict came from (the last one)."""
        return self.raw[-1] if self.raw else ""

    def failure(self) -> dict[str, Any]:
        """What a failure record keeps: the reason, the attempts, every raw reply and why it was rejected."""
        return {"reason": self.reason, "attempts": self.attempts, "raw": list(self.raw), "errors": list(self.errors)}


async def ask_judge(
    model: ChatModel, messages: list[Message], parse: Callable[[str], T], policy: RetryPolicy | None = None, *,
    structured: bool = False, lang: str = "en", search_path: tuple[str | Path, ...] = (),
) -> Judgement[T]:
    """Call ``model`` on ``messages`` until ``parse`` accepts a reply or the attempts run out.

    Args:
        model: any ChatModel (wrap it in CachedChatModel so that a re-run pays for nothing).
        messages: the judge's conversation.
        parse: turns a reply into a verdict, raising :class:`ParseError` when it cannot; a
            :class:`~turnwise.judge.replies.Reply` also knows its JSON form.
        policy: attempts, temperatures and reply length.
        structured: with a ``Reply``, hold the reply to its JSON schema (constrained decoding) and read the JSON;
            the instruction that asks for it (``judge/json.<lang>.jinja``, found on ``search_path`` first) is
            appended to the last message.
    """
    from turnwise.judge.replies import Reply, structured_messages

    policy = policy or RetryPolicy()
    schema = None
    if structured and isinstance(parse, Reply):
        messages = structured_messages(messages, parse, lang, tuple(str(p) for p in search_path))
        schema, parse = parse.schema_text, parse.parse_json
    verdict: Judgement[T] = Judgement(None, None)
    for attempt in range(policy.attempts):
        settings = policy.settings(attempt)
        if schema is not None:
            settings = replace(settings, json_schema=schema)
        [completion] = await model.chat([messages], settings)
        verdict.cost.add(completion)
        if not completion.ok or not completion.texts:
            verdict.raw.append("")
            verdict.errors.append(f"call failed: {completion.error}")
            continue
        text = completion.texts[0]
        verdict.raw.append(text)
        try:
            verdict.value = parse(text)
        except ParseError as exc:
            verdict.errors.append(exc.reason)
            continue
        return verdict
    verdict.reason = f"no valid verdict after {policy.attempts} attempts: {verdict.errors[-1]}"
    return verdict


@dataclass(frozen=True)
class Judge:
    """A judge model with its retry policy and where its templates are found; what scorers hold.

    Attributes:
        model: any ChatModel (in the CLI, behind the response cache).
        policy: attempts, temperatures and reply length.
        search_path: folders searched for templates before the package's own.
        structured: hold replies that have a JSON form to its schema (constrained decoding) and read the JSON.
    """

    model: ChatModel
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    search_path: tuple[str | Path, ...] = ()
    structured: bool = False

    def messages(self, template: str, lang: str, **variables: Any) -> list[Message]:
        """The rendered prompt of ``template`` (e.g. ``score/helpfulness``) in ``lang``."""
        return prompt_messages(template, lang, search_path=self.search_path, **variables)

    async def ask(self, template: str, parse: Callable[[str], T], lang: str, **variables: Any) -> Judgement[T]:
        """Render ``template`` in ``lang`` with ``variables`` and ask for a verdict; see :func:`ask_judge`."""
        return await self.ask_messages(self.messages(template, lang, **variables), parse, lang)

    async def ask_messages(self, messages: list[Message], parse: Callable[[str], T], lang: str) -> Judgement[T]:
        """Ask for a verdict on rendered ``messages``, structured when the judge is; see :func:`ask_judge`."""
        return await ask_judge(self.model, messages, parse, self.policy, structured=self.structured, lang=lang,
                               search_path=self.search_path)

    def describe(self) -> dict[str, Any]:
        """For manifests: which model, how it is asked."""
        out: dict[str, Any] = {"backend": self.model.backend, "model": self.model.model, **self.policy.to_dict()}
        if self.search_path:
            out["template_dirs"] = [str(p) for p in self.search_path]
        if self.structured:
            out["structured"] = True
        return out
