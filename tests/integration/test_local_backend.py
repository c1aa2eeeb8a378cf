"""The local backend on a tiny random model: left-padded batches, micro-batching, n, stop strings, usage."""

from __future__ import annotations

import asyncio

import pytest

from turnwise.data.render import render
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.models.local import LocalChatModel

pytestmark = pytest.mark.integration

GREEDY = GenerationSettings(temperature=0, max_tokens=12)
CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Where is the red box now? 它在哪里？"},
        {"role": "assistant", "content": "In the old library."},
        {"role": "user", "content": "Why?"},
    ],
    [{"role": "user", "content": "Alice likes the river."}],
    [{"role": "user", "content": "小明喜欢花园。后来呢？"}],
]


@pytest.fixture(scope="module", params=["chatml", "llama3"])
def model(request):
    model_dir = request.getfixturevalue("tiny_model_dir" if request.param == "chatml" else "tiny_llama3_dir")
    model = load_model(ModelSpec(model=str(model_dir), concurrency=8))
    yield model
    asyncio.run(model.aclose())


async def one_by_one(model, conversations, settings):
    return [(await model.chat([c], settings))[0] for c in conversations]


async def test_left_padded_batch_equals_one_by_one(model):
    assert isinstance(model, LocalChatModel) and model.backend == "local"
    batch = await model.chat(CONVERSATIONS, GREEDY)
    singles = await one_by_one(model, CONVERSATIONS, GREEDY)
    assert len({c.usage.prompt_tokens for c in batch}) == len(CONVERSATIONS)  # lengths differ: padding happened
    for batched, single in zip(batch, singles, strict=True):
        assert batched.ok, batched.error
        assert batched.texts == single.texts
        assert batched.finish_reasons == single.finish_reasons
        assert batched.usage == single.usage


async def test_concurrent_callers_are_merged(model):
    singles = await one_by_one(model, CONVERSATIONS, GREEDY)
    before = model.generate_calls
    results = await asyncio.gather(*[model.chat([c], GREEDY) for c in CONVERSATIONS * 2])
    assert model.generate_calls - before == 1  # 8 callers, batch size 8
    assert [r[0].texts for r in results] == [s.texts for s in singles] * 2


async def test_n_samples_with_seed(model):
    settings = GenerationSettings(temperature=1.0, n=3, seed=7, max_tokens=6)
    first = (await model.chat(CONVERSATIONS[:1], settings))[0]
    again = (await model.chat(CONVERSATIONS[:1], settings))[0]
    assert len(first.texts) == len(first.finish_reasons) == 3
    assert len(set(first.texts)) > 1  # a random model sampled at temperature 1 does not repeat itself
    assert first.texts == again.texts  # same seed: same samples
    assert 3 <= first.usage.completion_tokens <= 18


async def test_seeded_samples_do_not_depend_on_the_batch(model):
    """A request's seeded samples are the same alone, in a batch behind other rows, and called concurrently."""
    settings = GenerationSettings(temperature=1.0, top_p=0.9, n=2, seed=11, max_tokens=8)
    alone = [(await model.chat([c], settings))[0].texts for c in CONVERSATIONS]
    batched = [c.texts for c in await model.chat(list(reversed(CONVERSATIONS)), settings)][::-1]
    concurrent = await asyncio.gather(*(model.chat([c], settings) for c in CONVERSATIONS))
    assert alone == batched == [c[0].texts for c in concurrent]
    other = (await model.chat(CONVERSATIONS[:1], GenerationSettings(temperature=1.0, n=2, seed=12, max_tokens=8)))[0]
    assert other.texts != alone[0]  # another seed, other samples


async def test_stop_strings(model):
    full = (await model.chat(CONVERSATIONS[:1], GREEDY))[0]
    text = full.text
    # A character of the greedy reply, first seen at position k >= 1: the reply must be cut right there.
    k = next(i for i, ch in enumerate(text) if i >= 1 and ch != "\ufffd" and text.index(ch) == i)
    cut = (await model.chat(CONVERSATIONS[:1], GenerationSettings(temperature=0, max_tokens=12, stop=(text[k],))))[0]
    assert cut.text == text[:k]
    assert cut.finish_reasons == ["stop"]
    assert cut.usage.completion_tokens <= full.usage.completion_tokens


async def test_usage_counts(model):
    settings = GenerationSettings(temperature=0, max_tokens=5)
    results = await model.chat(CONVERSATIONS, settings)
    tokenizer = model._tokenizer
    for conversation, result in zip(CONVERSATIONS, results, strict=True):
        prompt = render(tokenizer, conversation, add_generation_prompt=True)
        assert result.usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if result.finish_reasons == ["length"]:
            assert result.usage.completion_tokens == 5
        else:
            assert 1 <= result.usage.completion_tokens <= 5


async def test_failures_become_error_rows(model, monkeypatch):
    broken: list[dict[str, str]] = []  # nothing to render: this row fails, the others go on
    results = await model.chat([CONVERSATIONS[0], broken], GREEDY)
    assert results[0].ok and not results[1].ok
    assert "chat template" in results[1].error

    def explode(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(model._lm, "generate", explode)
    results = await model.chat(CONVERSATIONS[:2], GREEDY)
    assert [r.error for r in results] == ["generation failed: RuntimeError: CUDA out of memory"] * 2


async def test_a_json_schema_holds_every_row_to_it_greedy_and_seeded(model):
    """Constrained decoding (xgrammar): even a random tiny model writes only objects the schema allows."""
    pytest.importorskip("xgrammar")
    import json

    schema = json.dumps({"type": "object", "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]},
                                                          "n": {"type": "integer"}},
                         "required": ["verdict", "n"], "additionalProperties": False})
    finished = 0
    for settings in (GenerationSettings(temperature=0, max_tokens=48, json_schema=schema),
                     GenerationSettings(temperature=1.0, max_tokens=48, json_schema=schema, seed=3, n=2)):
        for completion in await model.chat(CONVERSATIONS, settings):
            for text, reason in zip(completion.texts, completion.finish_reasons, strict=True):
                assert text.startswith('{"verdict": "')  # the properties in the schema's order
                if reason == "stop":  # a row cut at max_tokens is an unfinished object, as a server would return
                    value = json.loads(text)
                    assert value["verdict"] in ("yes", "no") and isinstance(value["n"], int)
                    finished += 1
    assert finished
