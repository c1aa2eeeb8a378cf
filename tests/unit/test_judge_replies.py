"""Structured replies: each reply kind read from its text format or from the JSON a constrained decoder writes, with
the same checks; the request carries the schema and the prompt the instruction; free text is untouched."""

from __future__ import annotations

import json

import pytest

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
