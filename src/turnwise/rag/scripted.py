"""A scripted rewriter and answerer for tests and offline demos: no weights, deterministic replies.

    turnwise rewrite eval --data canard_dev.json --format canard \
        --rewriter pronouns --backend turnwise.rag.scripted:ScriptedRagModel

It reads turnwise's own prompts. To a rewrite prompt (``rag/rewrite_*``) it answers with the classic
pronoun-substitution baseline: English third-person pronouns (he, she, it, they; his, her, its, their;
him, them) become the topic's title (CANARD's article) or, without a topic, the last capitalised name in
the user's earlier turns; a question with no such pronoun, or no antecedent, is returned unchanged;
Chinese questions are returned unchanged. The chain-of-thought prompt gets a one-line reasoning first.
To an answer prompt (``rag/answer``) it answers with the first sentence of the first passage. Anything
else is echoed. Usable as a backend (``module:Class`` taking a :class:`ModelSpec`) or built directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from turnwise.data.schema import Message
from turnwise.models.base import Completion, GenerationSettings, ModelSpec, Usage

_SUBJECT = {"he", "she", "it", "they", "him", "them"}
_POSSESSIVE = {"his", "her", "its", "their"}
_PRONOUN = re.compile(r"\b(he|she|it|they|him|them|his|her|its|their)\b", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w'.-]*(?:\s+(?:of|the|and|de|van|von|la)?\s*[A-Z][\w'.-]*)*")
_NOT_NAMES = {"what", "who", "when", "where", "why", "how", "which", "did", "does", "do", "is", "are", "was",
              "were", "can", "could", "would", "will", "i", "the", "a", "an", "and", "tell", "please", "yes", "no"}
_BLOCK = re.compile(r"^\[(Topic|Conversation|Question)\]\n(.*?)(?=^\[(?:Topic|Conversation|Question)\]\n|\Z)",
                    re.MULTILINE | re.DOTALL)
_FINAL = "Now rewrite the following question."
_ZH_QUESTION = "【问题】\n"
_PASSAGE = re.compile(r"^\[(?:Passage |文段)1\][^\n]*\n(.+?)(?:\n\n|\Z)", re.MULTILINE | re.DOTALL)
_SENTENCE = re.compile(r".+?(?:[.!?。！？](?=\s|$)|$)", re.DOTALL)


def _slots(prompt: str) -> dict[str, str]:
    """The Topic, Conversation and Question slots of the turn asked about (the few-shot examples come before)."""
    tail = prompt.rsplit(_FINAL, 1)[-1]
    return {name: body.strip() for name, body in _BLOCK.findall(tail)}


def _antecedent(slots: dict[str, str]) -> str | None:
    if slots.get("Topic"):
        return slots["Topic"].split(" — ")[0].strip()
    user_turns = [line[len("user: "):] for line in slots.get("Conversation", "").splitlines()
                  if line.startswith("user: ")]
    for turn in reversed(user_turns):
        names = [m.group(0).strip() for m in _NAME.finditer(turn) if m.group(0).split()[0].lower() not in _NOT_NAMES]
        if names:
            return names[-1].rstrip("?.!,")
    return None


def pronoun_rewrite(question: str, antecedent: str | None) -> str:
    """Replace third-person pronouns with ``antecedent`` (possessives get ``'s``)."""
    if not antecedent:
        return question

    def swap(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        if word in _POSSESSIVE:
            return f"{antecedent}'s"
        return antecedent if word in _SUBJECT else match.group(0)

    return _PRONOUN.sub(swap, question)


def rewrite_reply(prompt: str) -> str:
    """The scripted reply to a rewrite prompt."""
    cot = "step by step" in prompt or "一步一步" in prompt
    if _ZH_QUESTION in prompt:
        question = prompt.rsplit(_ZH_QUESTION, 1)[-1].strip()
        return ("推理：保持原样。\n" if cot else "") + f"改写：{question}"
    slots = _slots(prompt)
    question = slots.get("Question", "")
    antecedent = _antecedent(slots)
    rewrite = pronoun_rewrite(question, antecedent)
    reasoning = f"Reasoning: the pronouns refer to {antecedent}.\n" if rewrite != question else \
        "Reasoning: nothing to resolve.\n"
    return (reasoning if cot else "") + f"Rewrite: {rewrite}"


def answer_reply(system: str) -> str:
    """The scripted reply to an answer prompt: the first sentence of the first passage."""
    found = _PASSAGE.search(system)
    if found is None:
        return "I could not find that in the passages."
    line = found.group(1).strip().split("\n", 1)[0]
    sentence = _SENTENCE.match(line)
    return f"According to the passages: {(sentence.group(0) if sentence else line).strip()}"


def scripted_reply(messages: list[Message]) -> str:
    """Which prompt this is, from its text, and the reply to it."""
    last = messages[-1]["content"]
    if last.startswith(("You rewrite the latest question", "你的任务是改写")):
        return rewrite_reply(last)
    if messages[0]["role"] == "system" and ("[Passage " in messages[0]["content"] or "[文段" in messages[0]["content"]
                                            or "No passage was found" in messages[0]["content"]
                                            or "没有找到相关文段" in messages[0]["content"]):
        return answer_reply(messages[0]["content"])
    return f"answer to: {last}"


class ScriptedRagModel:
    """A ChatModel that answers turnwise's rewrite and answer prompts by rule (see the module docstring).

    Args:
        spec: the model spec (only ``model`` is used, as the name in cache keys and manifests); None in tests.
    """

    backend = "scripted-rag"

    def __init__(self, spec: ModelSpec | None = None):
        self.model = spec.model if spec is not None else "scripted"
        self.seen: list[list[Message]] = []

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        out = []
        for conv in conversations:
            self.seen.append([dict(m) for m in conv])
            text = scripted_reply(list(conv))
            usage = Usage(sum(len(m["content"].split()) for m in conv), len(text.split()))
            out.append(Completion(texts=[text] * settings.n, finish_reasons=["stop"] * settings.n, usage=usage))
        return out

    async def aclose(self) -> None:
        return None
