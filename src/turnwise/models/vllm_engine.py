"""The ``vllm`` backend: vLLM's offline engine in this process, for GPU machines.

    pip install 'turnwise[vllm]'

Untested in CI: vLLM needs a GPU, and the CI machines have none. It is written against vLLM's documented
offline API (``LLM``, ``LLM.chat``, ``SamplingParams``, ``RequestOutput``); only its import error is
covered by a unit test. Run it on a GPU before relying on it.

``LLM.chat`` blocks, so it runs in one worker thread; concurrent callers (one async loop per simulated
dialogue) are merged into batches by the same :class:`~turnwise.models.batching.MicroBatcher` the local
backend uses, up to ``spec.concurrency`` rows per ``LLM.chat`` call; vLLM schedules inside a batch.
Engine arguments come from ``spec.options`` (``tensor_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ...), except ``batch_wait_s``, which is the batcher's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from turnwise.data.render import resolve_chat_template
from turnwise.data.schema import Message
from turnwise.errors import require
from turnwise.models.base import Completion, GenerationSettings, ModelSpec, Usage
from turnwise.models.batching import MicroBatcher
from turnwise.models.identity import in_process_identity

logger = logging.getLogger(__name__)

_BATCHER_OPTIONS = ("batch_wait_s",)


class VLLMChatModel:
    """A model served by vLLM's offline ``LLM`` engine (the ``vllm`` backend).

    Args:
        spec: ``model`` is a hub id or local path; ``concurrency`` is the most rows per ``LLM.chat``
            call; ``dtype``, ``chat_template`` and ``trust_remote_code`` apply as documented on
            ModelSpec; ``options`` go to ``vllm.LLM`` as engine arguments.
    """

    backend = "vllm"

    def __init__(self, spec: ModelSpec):
        vllm = require("vllm", "vllm")
        self.spec = spec
        self.model = spec.model
        self._vllm = vllm
        self._chat_template = resolve_chat_template(spec.chat_template) if spec.chat_template else None
        engine_args = {k: v for k, v in spec.options.items() if k not in _BATCHER_OPTIONS}
        self._llm = vllm.LLM(
            model=spec.model,
            dtype=spec.dtype,
            trust_remote_code=spec.trust_remote_code,
            **engine_args,
        )
        self._batcher = MicroBatcher(
            self._generate_batch,
            max_rows=spec.concurrency,
            wait_s=float(spec.options.get("batch_wait_s", 0.002)),
            name="turnwise-vllm",
        )

    @property
    def cache_identity(self) -> dict[str, Any]:
        """The response cache's key for this model: its weights too, so a retrained folder is not stale."""
        return in_process_identity(self.backend, self.spec)

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """Answer each conversation; concurrent calls with the same settings share ``LLM.chat`` calls."""
        if not conversations:
            return []
        return await self._batcher.submit(conversations, settings)

    async def aclose(self) -> None:
        """Stop the worker thread and drop the engine."""
        await self._batcher.aclose()
        self._llm = None

    def _sampling_params(self, settings: GenerationSettings) -> Any:
        return self._vllm.SamplingParams(
            n=settings.n,
            temperature=settings.temperature,  # 0 is greedy in vLLM
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            seed=settings.seed,
            stop=list(settings.stop) or None,
            **self._structured(settings),
        )

    def _structured(self, settings: GenerationSettings) -> dict[str, Any]:
        """vLLM's constrained decoding for a JSON schema (``structured_outputs`` since 0.11, ``guided_decoding``
        before); not measured here: no GPU was lent when it was written."""
        if settings.json_schema is None:
            return {}
        import json

        schema = json.loads(settings.json_schema)
        try:
            from vllm.sampling_params import StructuredOutputsParams
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            return {"guided_decoding": GuidedDecodingParams(json=schema)}
        return {"structured_outputs": StructuredOutputsParams(json=schema)}

    def _generate_batch(self, conversations: list[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """One ``LLM.chat`` call (worker thread); a failure fails every row of the batch."""
        try:
            outputs = self._llm.chat(
                conversations,
                sampling_params=self._sampling_params(settings),
                use_tqdm=False,
                chat_template=self._chat_template,
                add_generation_prompt=True,
            )
        except Exception as exc:  # one bad batch must not take the callers down with it
            logger.warning("vLLM failed for a batch of %d: %s", len(conversations), exc)
            return [Completion(error=f"generation failed: {type(exc).__name__}: {exc}") for _ in conversations]
        return [_to_completion(output) for output in outputs]


def _to_completion(output: Any) -> Completion:
    """A vLLM ``RequestOutput`` as a Completion; vLLM has already cut the text at the stop string."""
    samples = output.outputs
    return Completion(
        texts=[sample.text for sample in samples],
        finish_reasons=[sample.finish_reason or "length" for sample in samples],
        usage=Usage(
            prompt_tokens=len(output.prompt_token_ids or []),
            completion_tokens=sum(len(sample.token_ids) for sample in samples),
        ),
    )
