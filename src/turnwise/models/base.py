"""The ChatModel interface, its value types, and how a backend is chosen from a spec.

Every role in turnwise talks to a model through one async method::

    completions = await model.chat(conversations, settings)

It takes a batch of conversations (lists of OpenAI-style messages ending with a user turn) and returns
one :class:`Completion` per conversation, in order. A call that fails returns a Completion whose
``error`` says why; backends never raise for a single failed request, so a batch is never lost to one
bad row.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.models.embedded import is_embedded
from turnwise.models.embedded import resolve as resolve_embedded

BACKENDS = {
    "openai": "turnwise.models.openai_http:OpenAIChatModel",
    "local": "turnwise.models.local:LocalChatModel",
    "vllm": "turnwise.models.vllm_engine:VLLMChatModel",
}


def schema_text(schema: dict[str, Any]) -> str:
    """A JSON schema as canonical text (the request's cache key): keys sorted, except the names under
    ``properties``, whose order is the order a constrained decoder writes them in (the reasoning before the
    verdict, the user's turn before the assistant's)."""
    import json

    def canonical(value: Any, ordered: bool = False) -> Any:
        if isinstance(value, dict):
            keys = list(value) if ordered else sorted(value)
            return {k: canonical(value[k], ordered=not ordered and k == "properties") for k in keys}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    return json.dumps(canonical(schema), separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings, part of every cache key.

    Attributes:
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass.
        max_tokens: most new tokens per completion.
        n: completions per conversation (each cached under its own sample index).
        seed: sampling seed, where the backend honours one.
        stop: strings that end a completion.
        json_schema: a JSON schema (as JSON text) the completion must follow: constrained decoding, by a grammar on
            the ``local`` backend (xgrammar), guided decoding on ``vllm``, ``response_format`` on an
            OpenAI-compatible server (vLLM, SGLang and llama.cpp servers honour it). Null: free text.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: str | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.json_schema is not None:
            import json

            try:
                schema = json.loads(self.json_schema)
            except ValueError as exc:
                raise ConfigError(f"json_schema is not valid JSON: {exc}") from None
            if not isinstance(schema, dict):
                raise ConfigError("json_schema must be a JSON object (a JSON schema)")
            object.__setattr__(self, "json_schema", schema_text(schema))

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "stop": list(self.stop)}
        if data["json_schema"] is None:  # free text: the key every cached completion was stored under before
            del data["json_schema"]
        return data


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self


@dataclass
class Completion:
    """The answer to one conversation.

    Attributes:
        texts: one text per requested sample (``settings.n``); empty when the call failed.
        finish_reasons: why each sample stopped (``stop``, ``length``).
        usage: tokens paid for; zero when answered from the cache.
        error: why the call failed, or None.
        attempts: HTTP attempts or generation passes spent on it.
        cached: answered from the response cache.
    """

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The first sample's text (the only one when n == 1)."""
        if not self.texts:
            raise ValueError(f"completion failed: {self.error}")
        return self.texts[0]


@runtime_checkable
class ChatModel(Protocol):
    """What every backend provides.

    Attributes:
        backend: the backend's name, part of the cache key (``openai``, ``local``, ``vllm``).
        model: the model's name or path, part of the cache key.
    """

    backend: str
    model: str

    async def chat(
        self, conversations: Sequence[list[Message]], settings: GenerationSettings
    ) -> list[Completion]: ...

    async def aclose(self) -> None: ...


@dataclass
class ModelSpec:
    """How to reach a model; the same fields in YAML recipes and on the command line.

    Attributes:
        model: hub id or local path (local, vllm) or the name the server knows it by (openai).
        backend: ``openai``, ``local``, ``vllm``, a ``module:Class`` of your own, or ``auto`` (openai when
            base URLs are given, local when ``model`` is an existing directory or a model turnwise embeds, such as
            ``smollm2-135m-instruct``).
        base_urls: OpenAI-compatible endpoints, e.g. ``http://127.0.0.1:8000/v1``; several spread the load.
        api_key_env: name of the environment variable holding the API key. The key itself is never
            stored in a spec, an output, a cache or a log.
        concurrency: requests in flight per base URL (openai) or generation batch size (local).
        timeout_s: per-request timeout (openai).
        max_retries: retries after the first attempt on 429, 5xx, timeouts and broken replies (openai).
        backoff_s: first retry delay; doubles per attempt, with jitter, unless the server sends retry-after.
        dtype: torch dtype for in-process backends (``auto``, ``float32``, ``bfloat16``, ``float16``).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``.
        chat_template: a Jinja chat template (inline or a file path) for models that ship none.
        trust_remote_code: run code from the model repository; off unless you ask for it.
        options: backend-specific keyword arguments (e.g. vLLM's ``tensor_parallel_size``).
    """

    model: str
    backend: str = "auto"
    base_urls: list[str] = field(default_factory=list)
    api_key_env: str | None = None
    concurrency: int = 16
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0
    dtype: str = "auto"
    device: str = "auto"
    chat_template: str | None = None
    trust_remote_code: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        if self.base_urls:
            return "openai"
        if os.path.isdir(self.model) or is_embedded(self.model):
            return "local"
        raise ConfigError(
            f"cannot tell which backend serves {self.model!r}: give base URLs for an OpenAI-compatible "
            "server, a local model directory, or name the backend (openai, local, vllm, module:Class)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, safe to write to a manifest (it holds no key, only the variable's name)."""
        return {**asdict(self), "backend": self.resolved_backend()}


def _import_backend(target: str) -> type:
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise ConfigError(f"backend {target!r} must be one of {', '.join(BACKENDS)} or 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import backend module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ConfigError(f"module {module_name!r} has no class {class_name!r}") from exc


def load_model(spec: ModelSpec) -> ChatModel:
    """Build the backend a spec names; its module is imported only now."""
    backend = spec.resolved_backend()
    if backend in ("local", "vllm") and is_embedded(spec.model):
        from dataclasses import replace

        spec = replace(spec, model=resolve_embedded(spec.model))  # its converted folder (converted on first use)
    cls = _import_backend(BACKENDS.get(backend, backend))
    return cls(spec)
