"""A scripted LongReward judge for tests, benchmarks and offline demos: no model, deterministic replies.

    judge = ScriptedJudge(ratings={"helpfulness": 8}, verdicts={"The lake is deep.": "Partially supported"})
    model = FakeChatModel(judge.reply)                         # in-process
    ServerConfig(script=judge.server_script)                   # behind the scripted OpenAI-compatible server

It recognises which LongReward prompt it was sent from the prompt's first line (the task sentence every
``score/*`` template starts with, English or Chinese), reads the question, answer, statement or chunk
from the prompt's last slot, and replies in the format the parsers expect:

- helpfulness, logicality, completeness: ``ratings[task]`` (a number or ``fn(response) -> number``);
  by default a number from 0 to 10 derived from a hash of the response;
- statements: one ``<statement>`` per sentence of the answer with at least three words (or six CJK
  characters), or "No factual statements";
- faithfulness: ``verdicts[statement]`` (a label or ``fn(statement, passages) -> label``); by default the
  share of the statement's words found in the passages (≥ 0.8 fully, ≥ 0.4 partially, else no support);
- extract: the chunk's sentences that share a word with the question, or "No relevant information".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from turnwise.data.schema import Message

TASKS = {  # a phrase of each template's first line, English and Chinese
    "helpfulness": ("helpfulness", "有用性"),
    "logicality": ("logical correctness", "逻辑性"),
    "completeness": ("completeness", "完备性"),
    "faithfulness": ("supported by evidence", "被证据所支持"),
    "statements": ("factual statements", "事实性陈述"),
    "extract": ("relevant to the question", "与问题相关的信息"),
}
Rating = float | Callable[[str], float]
Verdict = str | Callable[[str, list[str]], str]

_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")
_WORD = re.compile(r"[A-Za-z0-9]+|[\u4e00-\u9fff]")
_PASSAGE = re.compile(r"\n\[(?:Passage |文段)\d+\]\n")


def task_of(prompt: str) -> str | None:
    """Which LongReward prompt this is, from its first line; None for anything else."""
    first = prompt.strip().split("\n", 1)[0].lower()
    for task, phrases in TASKS.items():
        if any(p in first for p in phrases):
            return task
    return None


def _after(prompt: str, heads: tuple[str, ...], tails: tuple[str, ...]) -> str:
    """The text between the last of ``heads`` and the next of ``tails`` (the prompt's own slot, not an example)."""
    starts = [prompt.rfind(h) + len(h) for h in heads if h in prompt]
    rest = prompt[max(starts):] if starts else prompt
    ends = [rest.find(t) for t in tails if t in rest]
    return rest[: min(ends)].strip() if ends else rest.strip()


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def sentences(text: str) -> list[str]:
    """Sentences long enough to be a factual statement (≥ 3 words, or ≥ 6 CJK characters)."""
    out = []
    for s in (m.group().strip() for m in _SENTENCE.finditer(text)):
        cjk = len(re.findall(r"[\u4e00-\u9fff]", s))
        if len(s.split()) >= 3 or cjk >= 6:
            out.append(s)
    return out


def hash_rating(task: str, response: str) -> float:
    """A deterministic 0–10 integer rating from the task and the response."""
    return float(int(hashlib.sha256(f"{task}\0{response}".encode()).hexdigest()[:8], 16) % 11)


def overlap_verdict(statement: str, passages: list[str]) -> str:
    """Support by word overlap: ≥ 0.8 of the statement's words in the passages → fully, ≥ 0.4 → partially."""
    words = _words(statement)
    share = len(words & _words(" ".join(passages))) / len(words) if words else 0.0
    return "Fully supported" if share >= 0.8 else "Partially supported" if share >= 0.4 else "No support"


class ScriptedJudge:
    """Deterministic replies to LongReward's judge prompts; see the module docstring.

    Args:
        ratings: per rating task, a fixed rating or ``fn(response)``.
        verdicts: per statement text, a fixed label, or one ``fn(statement, passages)`` for all.
        fail: tasks to answer with an unparseable reply, "I cannot decide." (a set), or with the reply given
            per task (a mapping), to test retries and failure records.
    """

    def __init__(self, ratings: Mapping[str, Rating] | None = None,
                 verdicts: Mapping[str, str] | Callable[[str, list[str]], str] | None = None,
                 fail: set[str] | Mapping[str, str] | None = None):
        self.ratings = dict(ratings or {})
        self.verdicts = verdicts if verdicts is not None else {}
        self.fail = dict(fail) if isinstance(fail, Mapping) else dict.fromkeys(fail or (), "I cannot decide.")
        self.calls: dict[str, int] = {}

    def reply(self, messages: list[Message]) -> str | None:
        """The reply to a judge conversation (the FakeChatModel ``reply`` hook)."""
        prompt = messages[-1]["content"]
        task = task_of(prompt)
        self.calls[task or "unknown"] = self.calls.get(task or "unknown", 0) + 1
        if task is None:
            return None
        if task in self.fail:
            return self.fail[task]
        return getattr(self, f"_{task}", self._rating)(task, prompt)

    def server_script(self, request: dict[str, Any]) -> str:
        """The scripted server's ``script`` hook: the reply to an OpenAI chat request body."""
        return self.reply(request["messages"]) or "unscripted prompt"

    def _rating(self, task: str, prompt: str) -> str:
        response = _after(prompt, ("[Answer start]", "[助手的答案开始]"), ("[Answer end]", "[助手的答案结束]"))
        rating = self.ratings.get(task, lambda r: hash_rating(task, r))
        value = rating(response) if callable(rating) else rating
        return f"Analysis: scripted {task} judgement.\n\nRating: [[{value:g}]]"

    def _statements(self, task: str, prompt: str) -> str:
        response = _after(prompt, ("[Answer start]", "[助手的答案开始]"), ("[Answer end]", "[助手的答案结束]"))
        found = sentences(response)
        return "\n".join(f"<statement>{s}</statement>" for s in found) if found else "No factual statements"

    def _faithfulness(self, task: str, prompt: str) -> str:
        slot = _after(prompt, ("[Statement]\n", "[陈述]\n"), ("\n[Analysis]", "\n[分析]"))
        statement, *passages = (p.strip() for p in _PASSAGE.split(slot))
        verdict = self.verdicts(statement, passages) if callable(self.verdicts) else self.verdicts.get(statement)
        label = verdict if verdict is not None else overlap_verdict(statement, passages)
        return f"Analysis: scripted support judgement.\n\nLevel: [[{label}]]"

    def _extract(self, task: str, prompt: str) -> str:
        chunk = _after(prompt, ("[Document start]", "[文档片段开始]"), ("[Document end]", "[文档片段结束]"))
        query = _after(prompt, ("[Question]", "[问题]"), ("[Relevant information]", "[相关信息]"))
        relevant = [s for s in sentences(chunk) if _words(s) & (_words(query) - _STOP)]
        if not relevant:
            return "No relevant information"
        return "\n".join(f"{i}. {s}" for i, s in enumerate(relevant[:5], start=1))


_STOP = {"the", "a", "an", "of", "is", "are", "was", "what", "which", "how", "did", "do", "does", "to", "in", "and",
         "it", "its", "on", "for", "with", "that", "this", "why", "who", "when", "where"}


class ScriptedJudgeModel:
    """The scripted judge as a ChatModel backend, for offline demos and tests of the commands::

        turnwise bestofn prompts.jsonl pairs.jsonl --model ./tiny \\
            --judge-model scripted --judge-backend turnwise.judge.scripted:ScriptedJudgeModel

    Args:
        spec: a ModelSpec; only its ``model`` name is used.
    """

    def __init__(self, spec: Any):
        from turnwise.testing.fake import FakeChatModel

        self.judge = ScriptedJudge()
        self._fake = FakeChatModel(self.judge.reply, model=spec.model)
        self.backend = "scripted"
        self.model = spec.model

    async def chat(self, conversations: Any, settings: Any) -> Any:
        return await self._fake.chat(conversations, settings)

    async def aclose(self) -> None:
        return None
