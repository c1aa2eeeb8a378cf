"""A scripted evaluation judge for tests, benchmarks and offline demos: no model, deterministic verdicts.

    judge = ScriptedEvalJudge(rate=lambda p: 10 - p.turn)          # a rating from the parsed prompt
    judge = ScriptedEvalJudge(table={"Compose an engaging...": [8, 6]})   # by the first question, per turn
    judge = ScriptedEvalJudge(prefer="first")                        # a pairwise judge biased to position A
    model = FakeChatModel(judge.reply)                               # in-process
    ServerConfig(script=judge.server_script)                         # behind the scripted server

It reads the prompts of the ``eval/single`` and ``eval/pairwise`` templates (English or Chinese) back into
a :class:`JudgePrompt` (questions, the answers shown, which turn is graded) and replies in the format the
strict parsers expect: ``Rating: [[x]]`` or ``[[A]]``/``[[B]]``/``[[C]]``. To an ``eval/rubric`` prompt
(MultiChallenge) it answers ``[[YES]]`` or ``[[NO]]``: ``rubric(response, criteria)``, by default
:func:`hash_verdict`. A table entry that is a string
is sent as the reply verbatim (to script unparseable replies). Anything that is not a judge prompt gets
``answer to: <last user turn>`` (so one server can play the evaluated model and the judge).

As a backend for the commands (``--judge-backend turnwise.eval.scripted:ScriptedEvalJudgeModel``),
``--judge-model`` names a JSON file ``{"table": {...}, "default": 5, "prefer": "first"}`` or anything else
for the defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turnwise.data.schema import Message

_USER = r"### (?:User:|用户：)\n"
_FIRST = {  # turn-1 layouts: question, answer A, answer B (None for single grading)
    "single": [(r"\[Question\]\n", r"\[The Start of Assistant's Answer\]\n", r"\n\[The End of Assistant's Answer\]"),
               (r"\[问题\]\n", r"\[助手回答开始\]\n", r"\n\[助手回答结束\]")],
    "pairwise": [(r"\[User Question\]\n", r"\[The Start of Assistant {s}'s Answer\]\n",
                  r"\n\[The End of Assistant {s}'s Answer\]"),
                 (r"\[用户问题\]\n", r"\[助手{s}回答开始\]\n", r"\n\[助手{s}回答结束\]")],
}
_CONVERSATION = [(r"<\|The Start of Assistant {s}'s Conversation with User\|>",
                  r"<\|The End of Assistant {s}'s Conversation", r"\n### Assistant {s}:\n"),
                 (r"<\|助手{s}与用户的对话开始\|>", r"<\|助手{s}与用户的对话结束\|>", r"\n### 助手{s}：\n")]


@dataclass
class JudgePrompt:
    """What a judge prompt shows.

    Attributes:
        kind: ``single`` or ``pairwise``.
        questions: the user turns up to the graded one.
        answers: the (first) assistant's answers, as shown.
        answers_b: the second assistant's answers (pairwise only).
    """

    kind: str
    questions: list[str]
    answers: list[str]
    answers_b: list[str] | None = None

    @property
    def turn(self) -> int:
        """The graded turn (1-based): the last one shown."""
        return len(self.questions)


def parse_prompt(text: str) -> JudgePrompt | None:
    """The :class:`JudgePrompt` of an ``eval/single`` or ``eval/pairwise`` prompt, or None for anything else."""
    if "[[rating]]" in text:
        kind = "single"
    elif "[[A]]" in text and "[[C]]" in text:
        kind = "pairwise"
    else:
        return None
    sides = ("A",) if kind == "single" else ("A", "B")
    found = _conversations(text, sides) or _first_turn(text, kind)
    if found is None:
        return None
    questions, answers = found
    return JudgePrompt(kind, questions, answers[0], answers[1] if kind == "pairwise" else None)


def _conversations(text: str, sides: Sequence[str]) -> tuple[list[str], list[list[str]]] | None:
    for start, end, assistant in _CONVERSATION:
        blocks = []
        for side in sides:
            m = re.search(start.format(s=side) + r"\n(.*?)\n" + end.format(s=side), text, re.S)
            if m is None:
                break
            chunks = [c for c in re.split(_USER, "\n" + m.group(1).strip()) if c.strip()]
            pairs = [re.split(assistant.format(s=side), "\n" + c.strip(), maxsplit=1) for c in chunks]
            blocks.append([(p[0].strip(), p[1].strip() if len(p) > 1 else "") for p in pairs])
        if len(blocks) == len(sides):
            return [q for q, _ in blocks[0]], [[a for _, a in b] for b in blocks]
    return None


def _first_turn(text: str, kind: str) -> tuple[list[str], list[list[str]]] | None:
    for question, start, end in _FIRST[kind]:
        q = re.search(question + r"(.*?)\n\n(?=\[(?:The Start|参考答案开始|助手))", text, re.S)
        sides = ["A", "B"] if kind == "pairwise" else [""]
        answers = [re.search(start.format(s=s) + r"(.*?)" + end.format(s=s), text, re.S) for s in sides]
        if q is not None and all(answers):
            return [q.group(1).strip()], [[a.group(1).strip()] for a in answers]  # type: ignore[union-attr]
    return None


def hash_rating(prompt: JudgePrompt) -> float:
    """A deterministic integer rating from 1 to 10 from the first question, the turn and the graded answer."""
    key = f"{prompt.questions[0]}\0{prompt.turn}\0{prompt.answers[-1]}"
    return float(1 + int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10)


RUBRIC_PROMPT = re.compile(r"<MODEL_RESPONSE>\n(.*)\n</MODEL_RESPONSE>.*<CRITERIA>\n(.*)\n</CRITERIA>", re.S)


def hash_verdict(response: str, criteria: str) -> str:
    """A deterministic YES or NO from the response and the rubric question."""
    return "YES" if int(hashlib.sha256(f"{response}\0{criteria}".encode()).hexdigest()[:8], 16) % 2 else "NO"


def longer_answer(prompt: JudgePrompt) -> str:
    """Pairwise default: the longer last answer wins; equal lengths tie."""
    a, b = len(prompt.answers[-1]), len(prompt.answers_b[-1])  # type: ignore[index]
    return "A" if a > b else "B" if b > a else "C"


Rate = Callable[[JudgePrompt], "float | str"]
Prefer = Callable[[JudgePrompt], str]


class ScriptedEvalJudge:
    """Deterministic replies to the eval judge prompts; see the module docstring.

    Args:
        rate: ``fn(prompt) -> rating`` (or a raw reply string); default :func:`hash_rating`.
        rubric: ``fn(response, criteria) -> "YES" | "NO"`` (or a raw reply string) for rubric prompts; default
            :func:`hash_verdict`.
        table: first question → one entry per turn (a rating, or a raw reply string); it wins over ``rate``.
        default: the rating for dialogues missing from ``table`` (None: fall back to ``rate``).
        prefer: pairwise verdict: ``first`` (always position A), ``second``, ``tie``, or ``fn(prompt) -> A|B|C``;
            default :func:`longer_answer`.
    """

    def __init__(self, rate: Rate | None = None, *, table: Mapping[str, Sequence[float | str]] | None = None,
                 default: float | None = None, prefer: str | Prefer | None = None,
                 rubric: Callable[[str, str], str] | None = None):
        self.rate = rate or hash_rating
        self.rubric = rubric or hash_verdict
        self.table = dict(table or {})
        self.default = default
        fixed = {"first": "A", "second": "B", "tie": "C"}
        if isinstance(prefer, str):
            verdict = fixed[prefer]
            self.prefer: Prefer = lambda _: verdict
        else:
            self.prefer = prefer or longer_answer
        self.calls = {"single": 0, "pairwise": 0, "answer": 0, "rubric": 0}

    def reply(self, messages: list[Message]) -> str:
        """The reply to a conversation (the FakeChatModel ``reply`` hook)."""
        rubric = RUBRIC_PROMPT.search(messages[-1]["content"])
        if rubric is not None:
            self.calls["rubric"] += 1
            verdict = self.rubric(rubric.group(1), rubric.group(2))
            return verdict if verdict not in ("YES", "NO") else f"Scripted check of the criteria.\n\n[[{verdict}]]"
        prompt = parse_prompt(messages[-1]["content"])
        if prompt is None:
            self.calls["answer"] += 1
            return f"answer to: {messages[-1]['content']}"
        self.calls[prompt.kind] += 1
        if prompt.kind == "pairwise":
            return f"Scripted comparison of turn {prompt.turn}.\n\n[[{self.prefer(prompt)}]]"
        value = self._rating(prompt)
        if isinstance(value, str):
            return value
        return f"Scripted judgement of turn {prompt.turn}.\n\nRating: [[{value:g}]]"

    def _rating(self, prompt: JudgePrompt) -> float | str:
        entries = self.table.get(prompt.questions[0])
        if entries is not None and prompt.turn <= len(entries):
            return entries[prompt.turn - 1]
        if self.default is not None:
            return self.default
        return self.rate(prompt)

    def server_script(self, request: dict[str, Any]) -> str:
        """The scripted server's ``script`` hook: the reply to an OpenAI chat request body."""
        return self.reply(request["messages"])

    @classmethod
    def from_file(cls, path: str) -> ScriptedEvalJudge:
        """A judge from ``{"table": {question: [entries]}, "default": x, "prefer": "first"}``."""
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        return cls(table=spec.get("table"), default=spec.get("default"), prefer=spec.get("prefer"))


class ScriptedEvalJudgeModel:
    """The scripted eval judge as a ChatModel backend.

    ``--judge-backend turnwise.eval.scripted:ScriptedEvalJudgeModel`` on `turnwise eval judge` or `run`.

    Args:
        spec: a ModelSpec; its ``model`` is a judge file (see :meth:`ScriptedEvalJudge.from_file`) or a name.
    """

    def __init__(self, spec: Any):
        from turnwise.testing.fake import FakeChatModel

        is_file = spec.model.endswith(".json") and os.path.isfile(spec.model)
        self.judge = ScriptedEvalJudge.from_file(spec.model) if is_file else ScriptedEvalJudge()
        self._fake = FakeChatModel(self.judge.reply, model=spec.model)
        self.backend = "scripted-eval"
        self.model = spec.model

    async def chat(self, conversations: Any, settings: Any) -> Any:
        return await self._fake.chat(conversations, settings)

    async def aclose(self) -> None:
        return None
