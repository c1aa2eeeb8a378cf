"""The ``local`` backend: a transformers model in this process, batched generation with left padding.

Simulation runs each dialogue as its own async loop, so the model sees many callers that each send one
conversation. A :class:`MicroBatcher` merges what they send into batches: requests queue up while the
worker thread is busy with the previous batch, and the next batch takes up to ``spec.concurrency`` rows
that share the oldest request's settings. Generation runs in one worker thread, so the event loop stays
free and the model is never used by two threads at once.

Decoding follows the :class:`GenerationSettings` alone: greedy when ``temperature == 0``, otherwise
temperature and nucleus sampling with no top-k, and no repetition penalty; sampling knobs in the model's
own ``generation_config`` are not applied (pass extras through ``spec.options["generate_kwargs"]``).
With a sampling seed, every row samples from a stream of its own, drawn from the seed, the prompt and the
sample's index (:class:`RowSampler`): a request's samples are the same alone or in any batch, at any
concurrency, so a seeded run repeats whatever the timing of the calls around it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from turnwise.data.render import load_tokenizer, render
from turnwise.data.schema import Message
from turnwise.errors import ConfigError, TurnwiseError, require
from turnwise.models.base import Completion, GenerationSettings, ModelSpec, Usage
from turnwise.models.batching import MicroBatcher
from turnwise.models.identity import in_process_identity

logger = logging.getLogger(__name__)

def _resolve_device(device: str, torch: Any) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _resolve_dtype(dtype: str, torch: Any) -> Any:
    if dtype == "auto":
        return "auto"
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return value


def _load_model(spec: ModelSpec, torch: Any) -> Any:
    transformers = require("transformers", "local")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            spec.model, dtype=_resolve_dtype(spec.dtype, torch), trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise TurnwiseError(f"cannot load a causal language model from {spec.model!r}: {exc}") from exc
    return model.to(_resolve_device(spec.device, torch)).eval()


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _stop_criteria(tokenizer: Any, stop: Sequence[str], prompt_length: int) -> Any:
    """Stop a row once its *new* text contains a stop string.

    transformers' own ``stop_strings`` also match across the prompt's end (a prompt ending in ``\n`` and
    a first new token ``\n`` match ``\n\n``), which OpenAI-style stop strings never do.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    stop = [s for s in stop if s]
    if not stop:
        return None
    # Every token holds at least one byte, so a stop string of b bytes lies within the last b + 1 tokens.
    window = max(len(s.encode("utf-8")) for s in stop) + 1

    class _StopOnNewText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            tails = input_ids[:, max(prompt_length, input_ids.shape[1] - window) :].tolist()
            texts = tokenizer.batch_decode(tails, skip_special_tokens=True)
            done = [any(s in text for s in stop) for text in texts]
            return input_ids.new_tensor(done, dtype=bool)

    return StoppingCriteriaList([_StopOnNewText()])


def _cut_at_stop(text: str, stop: Sequence[str]) -> str | None:
    """The text before the first stop string, or None when none occurs."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(hits)] if hits else None


def row_seed(seed: int, prompt: str, sample: int) -> int:
    """The seed of one row's sampling stream: the same on every machine and run."""
    digest = hashlib.sha256(f"{seed}\0{sample}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class RowSampler:
    """A logits processor that samples each row with uniforms of its own and leaves only that token possible.

    Generation then runs greedy: the token chosen here is the row's sample. Temperature and top-p are applied
    here (as transformers' warpers would); the uniform of step k of a row comes from its own seeded
    generator, so what a row samples does not depend on which rows share its batch.
    """

    def __init__(self, seeds: list[int], settings: GenerationSettings, prompt_length: int, device: Any):
        torch = require("torch", "local")
        self.temperature, self.top_p, self.prompt_length = settings.temperature, settings.top_p, prompt_length
        streams = [torch.rand(settings.max_tokens, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                   for s in seeds]
        self.uniforms = torch.stack(streams).to(device)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[1] - self.prompt_length
        ordered, order = (scores.double() / self.temperature).sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        # Nucleus: the most likely tokens up to the first whose cumulative mass reaches top_p (always one).
        probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= self.top_p, 0.0)
        cdf = probs.cumsum(dim=-1)
        cdf = cdf / cdf[:, -1:]
        pick = (cdf < self.uniforms[:, step : step + 1]).sum(dim=-1, keepdim=True).clamp(max=cdf.shape[-1] - 1)
        return scores.new_full(scores.shape, float("-inf")).scatter_(1, order.gather(1, pick), 0.0)


class LocalChatModel:
    """A transformers causal LM served in-process (the ``local`` backend).

    Args:
        spec: ``model`` is a local directory or hub id; ``concurrency`` is the batch size; ``dtype``,
            ``device``, ``chat_template`` and ``trust_remote_code`` apply as documented on ModelSpec.
            ``options``: ``batch_wait_s`` (seconds to wait for more rows before running a batch that
            is not full, default 0.002) and ``generate_kwargs`` (extra arguments for ``generate``).
    """

    backend = "local"

    def __init__(self, spec: ModelSpec):
        torch = require("torch", "local")
        self.spec = spec
        self.model = spec.model
        self._tokenizer = load_tokenizer(
            spec.model, chat_template=spec.chat_template, trust_remote_code=spec.trust_remote_code
        )
        self._tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._lm = _load_model(spec, torch)
        self._identity = in_process_identity(self.backend, spec)
        config = self._lm.generation_config
        self._eos_ids = set(_as_list(config.eos_token_id)) | set(_as_list(self._tokenizer.eos_token_id))
        self._pad_id = self._tokenizer.pad_token_id
        self._generate_kwargs = dict(spec.options.get("generate_kwargs", {}))
        self._compiler: Any = None  # xgrammar's, built on the first request with a json_schema
        self._grammars: dict[str, Any] = {}
        unknown = set(spec.options) - {"batch_wait_s", "generate_kwargs"}
        if unknown:
            logger.warning("the local backend ignores options %s", ", ".join(sorted(unknown)))
        self._batcher = MicroBatcher(
            self._generate_batch,
            max_rows=spec.concurrency,
            wait_s=float(spec.options.get("batch_wait_s", 0.002)),
            name="turnwise-local",
        )

    @property
    def cache_identity(self) -> dict[str, Any]:
        """The response cache's key for this model: its weights too, so a retrained folder is not stale."""
        return self._identity

    @property
    def generate_calls(self) -> int:
        """Batches generated so far (each one ``generate`` call)."""
        return self._batcher.batches_run

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """Answer each conversation; concurrent calls with the same settings share batches."""
        if not conversations:
            return []
        return await self._batcher.submit(conversations, settings)

    async def aclose(self) -> None:
        """Stop the worker thread and drop the model, freeing its memory."""
        await self._batcher.aclose()
        if self._lm is None:  # closed before
            return
        device = str(self._lm.device)
        self._lm = None
        if device.startswith("cuda"):
            require("torch", "local").cuda.empty_cache()

    def _generate_batch(self, conversations: list[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """Render, generate and decode one batch (worker thread); failures become error completions."""
        results: list[Completion | None] = [None] * len(conversations)
        prompts, rows = [], []
        for row, messages in enumerate(conversations):
            try:
                prompts.append(render(self._tokenizer, messages, add_generation_prompt=True))
                rows.append(row)
            except Exception as exc:  # a malformed conversation fails its own row only
                results[row] = Completion(error=str(exc) if isinstance(exc, TurnwiseError) else repr(exc))
        if prompts:
            try:
                generated = self._generate(prompts, settings)
            except Exception as exc:  # one bad batch must not take the callers down with it
                logger.warning("generation failed for a batch of %d: %s", len(prompts), exc)
                generated = [Completion(error=f"generation failed: {type(exc).__name__}: {exc}") for _ in prompts]
            for row, completion in zip(rows, generated, strict=True):
                results[row] = completion
        return [r if r is not None else Completion(error="not generated") for r in results]

    def _generation_config(self, settings: GenerationSettings) -> Any:
        from transformers import GenerationConfig

        sample = settings.temperature > 0
        config = self._lm.generation_config
        return GenerationConfig(
            bos_token_id=config.bos_token_id,
            eos_token_id=sorted(self._eos_ids),
            pad_token_id=self._pad_id,
            max_new_tokens=settings.max_tokens,
            num_return_sequences=settings.n,
            do_sample=sample,
            # Set explicitly: values left unset are filled from the model's generation_config.
            temperature=settings.temperature if sample else 1.0,
            top_p=settings.top_p if sample else 1.0,
            top_k=0 if sample else 50,  # 0 turns top-k off; 50, the default, keeps greedy quiet
            repetition_penalty=1.0,
        )

    def _generate(self, prompts: list[str], settings: GenerationSettings) -> list[Completion]:
        torch = require("torch", "local")
        from transformers import LogitsProcessorList

        seeded = settings.temperature > 0 and settings.seed is not None
        # Seeded: each sample is a row of its own, sampled by a RowSampler from its own stream, decoded greedily.
        rows = [p for p in prompts for _ in range(settings.n)] if seeded else prompts
        encoded = self._tokenizer(rows, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = encoded.to(self._lm.device)
        prompt_length = encoded["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if settings.json_schema is not None:  # first: the sampler below picks among the tokens the grammar allows
            processors.append(self._grammar(settings.json_schema))
        if seeded:
            seeds = [row_seed(settings.seed, p, j) for p in prompts for j in range(settings.n)]
            processors.append(RowSampler(seeds, settings, prompt_length, self._lm.device))
        config = self._generation_config(replace(settings, temperature=0.0, n=1) if seeded else settings)
        with torch.inference_mode():
            output = self._lm.generate(
                **encoded,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=_stop_criteria(self._tokenizer, settings.stop, prompt_length),
                **self._generate_kwargs,
            )
        new_tokens = output[:, prompt_length:].tolist()
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()[:: settings.n if seeded else 1]
        completions = []
        for row, prompt_length in enumerate(prompt_lengths):
            samples = [self._decode(ids, settings) for ids in new_tokens[row * settings.n : (row + 1) * settings.n]]
            completions.append(
                Completion(
                    texts=[text for text, _, _ in samples],
                    finish_reasons=[reason for _, reason, _ in samples],
                    usage=Usage(prompt_tokens=int(prompt_length), completion_tokens=sum(n for _, _, n in samples)),
                )
            )
        return completions

    def _grammar(self, schema: str) -> Any:
        """A fresh logits processor (it keeps one matcher per row) for ``schema``; compiled once per schema."""
        try:
            import xgrammar
            import xgrammar.contrib.hf
        except ImportError as exc:
            raise TurnwiseError("constrained decoding on the local backend needs xgrammar: pip install --no-deps "
                                "xgrammar apache-tvm-ffi (its declared triton is for GPUs; scripts/setup.sh does "
                                f"this), or pip install 'turnwise[constrained]' on a GPU machine ({exc})") from exc
        if self._compiler is None:
            info = xgrammar.TokenizerInfo.from_huggingface(self._tokenizer, vocab_size=self._lm.config.vocab_size)
            self._compiler = xgrammar.GrammarCompiler(info)
        if schema not in self._grammars:
            # Compact JSON: free whitespace lets a small model spend its tokens on newlines.
            self._grammars[schema] = self._compiler.compile_json_schema(schema, any_whitespace=False)
        return xgrammar.contrib.hf.LogitsProcessor(self._grammars[schema])

    def _decode(self, ids: list[int], settings: GenerationSettings) -> tuple[str, str, int]:
        """Text, finish reason and tokens generated for one sampled sequence."""
        end_ids = self._eos_ids | {self._pad_id}
        end = next((k for k, token in enumerate(ids) if token in end_ids), len(ids))
        text = self._tokenizer.decode(ids[:end], skip_special_tokens=True)
        cut = _cut_at_stop(text, settings.stop)
        if cut is not None:
            # A stop string ended this row; what follows it in `ids` is padding, not generated.
            return cut, "stop", end
        if end < len(ids) and ids[end] in self._eos_ids:
            return text, "stop", end + 1
        return text, "length", end
