"""Structured replies: each reply kind read from its text format or from the JSON a constrained decoder writes, with
the same checks; the request carries the schema and the prompt the instruction; free text is untouched."""

from __future__ import annotations

import json

import pytest

from turnwise.errors import SchemaError
from turnwise.judge.core import RetryPolicy, ask_judge
from turnwise.judge.parse import ParseError
from turnwise.judge.replies import label_reply, list_reply, rating_reply, structured_messages
from turnwise.models.base import Completion, GenerationSettings
from turnwise.models.openai_http import _payload_base


def test_a_rating_reads_the_same_from_text_and_json():
    reply = rating_reply(1, 10)
    assert reply("Fine. Rating: [[7]]") == 7.0 == reply.parse_json('{"analysis": "fine", "rating": 7}')
    with pytest.raises(ParseError, match="outside 1–10"):
        reply.parse_json('{"analysis": "", "rating": 11}')
    with pytest.raises(ParseError, match="no number 'rating'"):
        reply.parse_json('{"analysis": "", "rating": "7"}')
    with pytest.raises(ParseError, match="not one JSON object"):
        reply.parse_json('{"analysis": "cut off')
    with pytest.raises(ParseError, match="not an object"):
        reply.parse_json("[7]")
    schema = json.loads(reply.schema_text)
    assert schema["required"] == ["analysis", "rating"] and schema["properties"]["rating"]["maximum"] == 10


def test_labels_and_lists_keep_their_rules_in_json():
    support = label_reply({"Fully supported": 1.0, "No support": 0.0})
    assert support.parse_json('{"analysis": "", "verdict": "fully supported"}') == ("Fully supported", 1.0)
    with pytest.raises(ParseError, match="unknown verdict"):
        support.parse_json('{"analysis": "", "verdict": "maybe"}')
    statements = list_reply("statement", "statements", none_marker="No factual statements")
    assert statements.parse_json('{"statements": [" A. ", ""]}') == ["A."]
    assert statements.parse_json('{"statements": []}') == []  # none is a valid answer where the marker says so
    with pytest.raises(ParseError, match="lists no points"):
        list_reply("point", "points").parse_json('{"points": []}')


def test_the_instruction_shows_the_object_in_the_prompts_language():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "Rate it."}]
    en = structured_messages(messages, rating_reply(0, 10), "en")
    assert en[0] == messages[0] and en[1]["content"].startswith("Rate it.\n\n")
    assert en[1]["content"].endswith('{"analysis": "...", "rating": 0-10}') and "JSON" in en[1]["content"]
    assert "JSON" in structured_messages(messages, rating_reply(0, 10), "zh")[1]["content"]


class Recorder:
    backend, model = "recorder", "r"

    def __init__(self, replies: list[str]):
        self.replies, self.calls = list(replies), []

    async def chat(self, conversations, settings):
        self.calls.append((conversations[0], settings))
        return [Completion(texts=[self.replies.pop(0)])]

    async def aclose(self):
        return None


async def test_structured_asks_send_the_schema_and_read_json_text_asks_do_not():
    reply = rating_reply(0, 10)
    model = Recorder(['{"analysis": "ok", "rating": 11}', '{"analysis": "ok", "rating": 8}'])
    verdict = await ask_judge(model, [{"role": "user", "content": "Rate."}], reply, RetryPolicy(attempts=2),
                              structured=True)
    assert verdict.value == 8.0 and verdict.errors == ["rating 11 is outside 0–10"]
    (first, settings), _ = model.calls
    assert settings.json_schema == reply.schema_text and "JSON" in first[-1]["content"]
    plain = Recorder(["[[6]]"])
    verdict = await ask_judge(plain, [{"role": "user", "content": "Rate."}], reply, RetryPolicy(attempts=1))
    assert verdict.value == 6.0 and plain.calls[0][1].json_schema is None
    assert plain.calls[0][0] == [{"role": "user", "content": "Rate."}]


def test_a_schema_reaches_an_openai_compatible_server_and_free_text_keeps_its_cache_key():
    settings = GenerationSettings(temperature=0, json_schema='{"type": "object", "properties": {}}')
    payload = _payload_base("m", settings)
    assert payload["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "reply", "schema": {"properties": {}, "type": "object"}, "strict": True}}
    assert settings.json_schema == '{"properties":{},"type":"object"}'  # canonical: equal schemas, equal keys
    assert "response_format" not in _payload_base("m", GenerationSettings())
    assert "json_schema" not in GenerationSettings().to_dict()  # what every free-text completion was cached under
    with pytest.raises(Exception, match="not valid JSON"):
        GenerationSettings(json_schema="{nope")


def test_every_structured_reply_shows_its_keys_in_the_order_the_grammar_writes_them():
    from turnwise.capo.strategies import history_reply
    from turnwise.rag.rewriter import rewrite_reply
    from turnwise.score.completeness import POINTS

    replies = [rating_reply(0, 10), label_reply({"A": 1.0, "B": 0.0}), list_reply("s", "statements"), POINTS,
               rewrite_reply("where was he born?", 64, reasoning=True), rewrite_reply("how long?", 64, False),
               history_reply(1)]

    def names(schema: dict) -> list[str]:  # property names in the order the decoder writes them, depth first
        out = []
        for key, value in schema.get("properties", {}).items():
            out += [key, *names(value), *names(value.get("items", {}))]
        return out

    for reply in replies:
        written = names(json.loads(reply.schema_text))  # the request's schema, as sent
        assert written == names(reply.schema)
        shown = sorted((reply.example.index(f'"{k}"'), k) for k in written)
        assert [k for _, k in shown] == written, reply.example


def test_a_value_that_is_read_needs_a_word_and_stays_on_one_line():
    import re

    from turnwise.judge.replies import words
    from turnwise.rag.rewriter import rewrite_reply

    pattern = re.compile(words(12)["pattern"])
    assert pattern.fullmatch("How long?") and pattern.fullmatch("它有多长?") and pattern.fullmatch("1990 年")
    for copied in ("...", "", '"quoted"', "two\nlines", "x" * 13, " leading space"):
        assert not pattern.fullmatch(copied), copied
    schema = json.loads(rewrite_reply("how long is it?", 64, reasoning=False).schema_text)
    assert re.fullmatch(schema["properties"]["rewrite"]["pattern"], "How long is the Nile river?")


def test_a_rewrite_is_one_question_that_ends_by_itself_and_fits_its_tokens():
    import re

    from turnwise.rag.rewriter import parse_rewrite, rewrite_reply

    reply = rewrite_reply("how long is it?", 64, reasoning=False, max_tokens=96)
    pattern = re.compile(json.loads(reply.schema_text)["properties"]["rewrite"]["pattern"])
    assert pattern.fullmatch("How long is the Nile?") and pattern.fullmatch("尼罗河有多长？")
    assert pattern.fullmatch("Tell me about the Nile")  # a request needs no question mark
    for looping in ("What was it? What was it?", "尼罗河有多长？它呢？", "Why?!"):
        assert not pattern.fullmatch(looping), looping
    # the text form refuses the same run-on, and a JSON rewrite the grammar had to cut is refused, not read
    for text in ("Rewrite: What was the band? What was the band?", "Rewrite: 他是谁？他呢？"):
        with pytest.raises(ParseError, match="one question"):
            parse_rewrite(text, "who?")
    longest = max(n for n in range(1, 400) if pattern.fullmatch("a" * n))
    assert 40 <= longest < 3 * 96  # sized to the reply's tokens
    with pytest.raises(ParseError, match="cut off"):
        reply.parse_json(json.dumps({"rewrite": "a" * longest}))
    assert reply.parse_json(json.dumps({"rewrite": "How long is the Nile?"})) == "How long is the Nile?"
    # the chain of thought leaves the reasoning its room; the default size holds CANARD's longest rewrite (260)
    assert max(n for n in range(1, 400) if re.fullmatch(json.loads(rewrite_reply("x?", 64).schema_text)[
        "properties"]["rewrite"]["pattern"], "a" * n)) > 260


def test_an_invented_history_refuses_a_bare_speaker_label_and_fits_its_tokens():
    from turnwise.capo.strategies import history_reply

    reply = history_reply(1, max_tokens=96)
    turns = {"user": "What is the capital of France?", "assistant": "Paris."}
    assert [m["role"] for m in reply.parse_json(json.dumps({"exchanges": [turns]}))] == ["user", "assistant"]
    for label in ("User:", "Assistant", "用户：", "  user : "):
        with pytest.raises(ParseError, match="speaker's label"):
            reply.parse_json(json.dumps({"exchanges": [{**turns, "user": label}]}))
        with pytest.raises(SchemaError, match="speaker's label"):  # the text form too
            reply(f"User: {label}\nAssistant: Paris.")

    def turn(r):
        return r.schema["properties"]["exchanges"]["items"]["properties"]["user"]

    assert 2 * longest(turn(reply)) < 3 * 96 and longest(turn(history_reply(1, max_tokens=512))) == 300


def longest(schema: dict) -> int:
    """The characters a ``words`` value may have: the pattern's ``{0,n}`` plus its first letter."""
    return int(schema["pattern"][:-1].rsplit(",")[-1]) + 1


def test_a_list_fits_the_reply_it_is_written_in():
    def size(reply):  # items allowed, characters each
        items = reply.schema["properties"]["statements"]
        return items["maxItems"], longest(items["items"])

    assert size(list_reply("statement", "statements")) == (10, 240)
    assert size(list_reply("statement", "statements", max_tokens=1024)) == (10, 240)
    most, chars = size(list_reply("statement", "statements", max_tokens=192))
    assert most * chars <= 3 * 192 and chars >= 100
    assert size(list_reply("statement", "statements", max_tokens=40))[0] == 1
