"""A trained reward model as a scorer: ``--scorer rm:runs/rm/model`` in ``bestofn`` and ``score``.

    turnwise train rm --data pairs.jsonl --model runs/sft --output runs/rm
    turnwise bestofn dialogues.jsonl pairs.jsonl --model runs/sft --scorer rm:runs/rm
    turnwise bestofn ... --scorer rm:runs/rm=1 --scorer numeric=1          # mixed with a verifiable check

The model (``turnwise train rm``, or any sequence-classification model with one output) reads the prompt's
messages and the response as one chat, rendered by its tokenizer's chat template, the history cut the way
training cut it (the oldest turns first, :func:`turnwise.data.truncate.truncate_history`) to ``max_length``.
Its raw reward r is unbounded; the dimension ``reward`` reports ``10·σ(r)`` so that it sits on the 0–10 scale
every scorer shares (the order of responses, which best-of-N uses, is r's order), and keeps r in its details.

Rewards are computed on this process's CPU or GPU, in batches of ``batch_size``, in a worker thread so that
the event loop keeps serving the policy's requests meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import ConfigError, require
from turnwise.score.types import OK, DimensionScore, ScoreBatch, ScoreInput, ScoreResult

PREFIX = "rm:"  # the scorer spec: rm:PATH


class RewardModel:
    """Scalar rewards of chats from a one-output sequence-classification model.

    Args:
        model: the model (``num_labels == 1``), already on its device.
        tokenizer: its tokenizer, with a chat template.
        max_length: most tokens of one chat; a longer history loses its oldest turns.
        batch_size: chats per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 2048, batch_size: int = 8):
        if getattr(model.config, "num_labels", None) != 1:
            raise ConfigError(f"a reward model has one output (num_labels 1), this one "
                              f"{getattr(model.config, 'num_labels', '?')}")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str, *, device: str = "auto", max_length: int = 2048) -> RewardModel:
        """Load a reward model folder (``turnwise train rm``'s output, or a hub id)."""
        torch = require("torch", "train")
        transformers = require("transformers", "train")
        from turnwise.data.render import load_tokenizer
        from turnwise.models.embedded import resolve

        where = resolve(path)
        if not Path(where).exists() and "/" not in where:
            raise ConfigError(f"reward model {path!r}: no such folder")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(where).to(device).eval()
        except OSError as exc:  # not found locally, and not on the hub (or no network)
            raise ConfigError(f"reward model {path!r}: cannot load it ({exc})") from exc
        return cls(model, load_tokenizer(where), max_length=max_length)

    def _fit(self, chat: list[Message]) -> list[int]:
        from turnwise.data.truncate import truncate_history

        def count(messages: list[Message]) -> int:
            return len(self._ids(messages))

        kept, _ = truncate_history(chat, count, self.max_length)
        return self._ids(kept)[-self.max_length:]  # a single turn longer than the budget keeps its end

    def _ids(self, chat: list[Message]) -> list[int]:
        return self.tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]

    def rewards(self, chats: Sequence[list[Message]]) -> list[float]:
        """The raw reward of each chat (the prompt's messages then the assistant's answer)."""
        torch = require("torch", "train")
        out: list[float] = []
        with self._lock, torch.no_grad():
            for start in range(0, len(chats), self.batch_size):
                ids = [self._fit(chat) for chat in chats[start:start + self.batch_size]]
                width = max(map(len, ids))
                pad = self.tokenizer.pad_token_id
                # right padding: the classification head reads the last non-padding token of each row
                input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids], device=self.model.device)
                mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids],
                                    device=self.model.device)
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits
                out += [float(x) for x in logits[:, 0].float().cpu()]
        return out


def _loadable(path: str) -> bool:
    """A folder, an embedded model's name, or something shaped like a hub id (``org/name``)."""
    import re

    from turnwise.models.embedded import resolve

    return bool(path) and (Path(resolve(path)).is_dir() or (re.fullmatch(r"[\w.-]+/[\w.-]+", path) is not None
                           and not path.startswith(".")))


def score_of(reward: float) -> float:
    """The 0–10 score of a raw reward: ``10·σ(r)``."""
    return 10.0 / (1.0 + math.exp(-reward)) if reward > -700 else 0.0


class RewardModelScorer:
    """One dimension, ``reward``, from a :class:`RewardModel`."""

    dimensions = ("reward",)

    def __init__(self, path: str, model: RewardModel | None = None):
        if model is None and not _loadable(path):
            raise ConfigError(f"scorer rm:{path}: no such folder (a reward model from turnwise train rm, or a hub "
                              "id such as org/name)")
        self.path = path
        self.name = "rm"
        self._model = model

    @property
    def model(self) -> RewardModel:
        if self._model is None:
            self._model = RewardModel.load(self.path)
        return self._model

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "score": "10*sigmoid(reward)"}

    async def score(self, item: ScoreInput, responses: Sequence[str]) -> ScoreBatch:
        prompt = item.prompt or [*item.history, {"role": "user", "content": item.query}]
        chats = [[*prompt, {"role": "assistant", "content": text}] for text in responses]
        rewards = await asyncio.to_thread(self.model.rewards, chats)
        return ScoreBatch([ScoreResult([DimensionScore("reward", OK, round(score_of(r), 4),
                                                       details={"reward": round(r, 6)})]) for r in rewards])
