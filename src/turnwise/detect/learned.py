"""The learned context-dependence detector: a logistic regression over sentence embeddings and the cues.

    detector = LearnedDetector.load()                      # the model the package ships
    [decisions] = detector.label_batch([(messages, "en")])  # one TurnDecision per user turn after the first

Features of a user turn:

- its embedding (all-MiniLM-L6-v2, 384 dimensions, unit length): what kind of request it is, whether it names
  its subject;
- one indicator per cue kind of :mod:`turnwise.detect.cues` and the hand-set rules' score (divided by 3):
  pronouns, ellipsis, names, a name that shortens one of the history... in English and Chinese, found by words,
  not substrings. The history enters through these cues.

The encoder runs with its linear layers quantized to int8 (torch's dynamic quantization): three times the speed
on a CPU, the same cross-domain scores to within 0.01 (``docs/capo.md``). An embedding of the previous message
(its element-wise product with the turn's) was measured as well: it changed no cross-domain score in the third
decimal and cost four times the time, so it is left out.

Its probability is Platt-calibrated on out-of-fold scores; a turn is dependent when it is above ``threshold``
(0.5; raise it for precision-leaning CaPO data). The decision's ``score`` is that probability's log-odds
minus the threshold's, so a judge verdict adds to it as it does to the rules' score. ``turnwise detect train``
fits one (:mod:`turnwise.detect.train`); the card beside it names its data and the sha256 of its parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from turnwise.data.schema import Message
from turnwise.detect.cues import Cue, find_cues
from turnwise.detect.rules import DEFAULT_WEIGHTS, RuleDetector, TurnDecision, user_turns_after_first
from turnwise.errors import ConfigError

KINDS: tuple[str, ...] = tuple(sorted(DEFAULT_WEIGHTS))
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
SHIPPED = Path(__file__).with_name("models") / "default"
FILE = "detector.json"
FORMAT = 2  # 2: int8 embeddings of the turn alone
DIMENSION = 384  # all-MiniLM-L6-v2


@dataclass(frozen=True)
class TurnRef:
    """One user turn to featurize: the conversation, the turn's position in it and its language."""

    messages: Sequence[Message]
    index: int
    lang: str

    @property
    def turn(self) -> str:
        return self.messages[self.index]["content"]

    @property
    def history(self) -> list[str]:
        return [m["content"] for m in self.messages[: self.index] if m["role"] != "system"]


def featurize(turns: Sequence[TurnRef], embedder: Any) -> tuple[Any, list[list[Cue]]]:
    """The feature matrix (float64, one row per turn) and each turn's cues (the evidence).

    Every distinct text is embedded once ("Thanks!" and "What about tomorrow?" recur across conversations).
    """
    from turnwise.errors import require

    np = require("numpy", "rag")
    texts = sorted({t.turn for t in turns})
    vectors = np.asarray(embedder.embed(texts), dtype=np.float64).reshape(len(texts), -1)
    row = {text: i for i, text in enumerate(texts)}
    cues = [find_cues(t.turn, t.history, t.lang) for t in turns]
    rules = RuleDetector()
    indicators = np.array([[float(k in {c.kind for c in found}) for k in KINDS] + [rules.score(found) / 3]
                           for found in cues], dtype=np.float64).reshape(len(turns), len(KINDS) + 1)
    return np.hstack([vectors[[row[t.turn] for t in turns]], indicators]), cues


@functools.lru_cache(maxsize=2)
def _quantized(name: str) -> Any:
    """The sentence-transformers model with its linear layers in int8 (one copy per process)."""
    import torch

    from turnwise.retrieval.embed import load_sentence_transformer

    model = load_sentence_transformer(name, "cpu")
    with warnings.catch_warnings():  # torch announces the move of eager quantization to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class QuantizedEmbedder:
    """Unit-length embeddings from an int8-quantized sentence-transformers model, on the CPU (the learned detector's
    features: training and labelling use the same one)."""

    def __init__(self, model: str = EMBEDDING_MODEL, batch_size: int = 64):
        self.name = f"{model} (int8)"
        self.model = model
        self.batch_size = batch_size
        self.computed = 0
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Any:
        from turnwise.errors import require

        np = require("numpy", "rag")
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            vectors = _quantized(self.model).encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                                    convert_to_numpy=True, show_progress_bar=False)
            self.computed += len(texts)
        return vectors


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class LearnedDetector:
    """A fitted detector: the weights, the calibration, the decision threshold and where they came from.

    Attributes:
        weights: one per feature (see the module docstring for their order).
        bias: the regression's intercept.
        platt: ``(a, c)``: the probability is ``logistic(a * (x . weights + bias) + c)``.
        threshold: the probability above which a turn is called dependent.
        embedding_model: the sentence-transformers model the features were computed with.
        card: what the model card says (data, command, settings); not part of the parameters' hash.
    """

    weights: tuple[float, ...]
    bias: float
    platt: tuple[float, float] = (1.0, 0.0)
    threshold: float = 0.5
    embedding_model: str = EMBEDDING_MODEL
    card: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"the detector's threshold must be between 0 and 1, got {self.threshold}")

    @property
    def parameters(self) -> dict[str, Any]:
        return {"format": FORMAT, "embedding_model": self.embedding_model, "kinds": list(KINDS),
                "weights": list(self.weights), "bias": self.bias, "platt": list(self.platt)}

    @property
    def digest(self) -> str:
        """sha256 of the parameters (not the threshold, which the user may set at run time)."""
        return hashlib.sha256(json.dumps(self.parameters, sort_keys=True).encode()).hexdigest()

    def with_threshold(self, threshold: float | None) -> LearnedDetector:
        return self if threshold is None else replace(self, threshold=threshold)

    def probabilities(self, features: Any) -> Any:
        """Calibrated probabilities that each row's turn is dependent."""
        from turnwise.errors import require

        np = require("numpy", "rag")
        raw = features @ np.asarray(self.weights, dtype=np.float64) + self.bias
        a, c = self.platt
        return 1.0 / (1.0 + np.exp(-(a * raw + c)))

    def decide(self, index: int, probability: float, cues: Sequence[Cue]) -> TurnDecision:
        """The decision for a turn of dependent-probability ``probability``."""
        score = _logit(probability) - _logit(self.threshold)
        dependent = score > 0
        evidence = [{"cue": c.kind, "text": c.text, "weight": DEFAULT_WEIGHTS.get(c.kind, 0.0)} for c in cues]
        evidence.append({"cue": "learned", "probability": round(probability, 4), "threshold": self.threshold,
                         "model": self.digest[:12]})
        confidence = probability if dependent else 1 - probability
        return TurnDecision(index, dependent, round(confidence, 3), evidence, round(score, 3), decided_by="learned")

    def label_batch(self, conversations: Sequence[tuple[Sequence[Message], str]],
                    embedder: Any = None) -> list[list[TurnDecision]]:
        """Label every user turn after the first of each ``(messages, lang)``; one list of decisions each."""
        refs = [TurnRef(messages, i, lang) for messages, lang in conversations
                for i in user_turns_after_first(messages)]
        if not refs:
            return [[] for _ in conversations]
        features, cues = featurize(refs, embedder or self.embedder())
        probs = self.probabilities(features)
        decisions = iter(self.decide(r.index, float(p), c) for r, p, c in zip(refs, probs, cues, strict=True))
        return [[next(decisions) for _ in user_turns_after_first(messages)] for messages, _ in conversations]

    def embedder(self) -> Any:
        return QuantizedEmbedder(self.embedding_model)

    def save(self, folder: str | Path) -> Path:
        """Write ``detector.json`` (parameters, threshold, card) and ``README.md`` (the card) into ``folder``."""
        from turnwise.detect.card import model_card

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {**self.parameters, "threshold": self.threshold, "sha256": self.digest, "card": dict(self.card)}
        (folder / FILE).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(model_card(self), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path | None = None) -> LearnedDetector:
        """Load a detector folder (or its ``detector.json``); None loads the shipped one."""
        path = Path(path) if path is not None else SHIPPED
        file = path / FILE if path.is_dir() else path
        if not file.is_file():
            raise ConfigError(f"{path}: no learned detector here (expected {FILE}; `turnwise detect train` writes one)")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or list(data["kinds"]) != list(KINDS):
                raise ConfigError(f"{file}: written for another feature layout (format {data.get('format')}); "
                                  "train it again with this version's `turnwise detect train`")
            detector = cls(tuple(data["weights"]), float(data["bias"]), tuple(data["platt"]),
                           float(data.get("threshold", 0.5)), data["embedding_model"], data.get("card", {}))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{file}: not a learned detector ({exc})") from None
        if len(detector.weights) != DIMENSION + len(KINDS) + 1 and detector.embedding_model == EMBEDDING_MODEL:
            raise ConfigError(f"{file}: {len(detector.weights)} weights, expected {DIMENSION + len(KINDS) + 1}")
        if data.get("sha256") not in (None, detector.digest):
            raise ConfigError(f"{file}: the parameters do not match their sha256 (the file was edited or damaged)")
        return detector
