"""The strict verdict parsers: the last [[x]] wins, out of range or unknown is a failure, never a guess."""

from __future__ import annotations

import pytest

from turnwise.judge.parse import ParseError, parse_label, parse_rating, parse_tagged
from turnwise.score.faithfulness import SUPPORT, parse_statements, parse_support


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[7]]", 7.0),
        ("[[7.5]]", 7.5),
        ("Rating: [[10]]", 10.0),
        ("The answer misses a point. Rating: [[ 0 ]]", 0.0),
        ("At first I thought [[3]], but on reflection [[8]].", 8.0),  # several ratings: the last wins
        ('Rate in the format "[[rating]]", e.g. "[[5]]". ... Rating: [[6]]', 6.0),
        ("[[9]] and then [[Fully supported]]", 9.0),  # a non-numeric [[...]] is not a rating
    ],
)
def test_rating_parses(text: str, expected: float) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Rating: [[11]]", "rating 11 is outside 0–10"),
        ("[[8]] ... no, [[11]]", "rating 11 is outside 0–10"),  # the last is out of range: no fallback to 8
        ("[[-1]]", "rating -1 is outside 0–10"),
        ("I would give it a seven.", "no [[rating]] in the reply"),
        ("Rating: [7]", "no [[rating]] in the reply"),
        ("[[7/10]]", "no [[rating]] in the reply"),
        ("", "no [[rating]] in the reply"),
    ],
)
def test_rating_failures_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_rating(text)
    assert info.value.reason == reason


def test_rating_range_is_configurable() -> None:
    assert parse_rating("[[4]]", low=1, high=5) == 4.0
    with pytest.raises(ParseError, match="outside 1–5"):
        parse_rating("[[0]]", low=1, high=5)


@pytest.mark.parametrize(
    ("text", "label", "value"),
    [
        ("Level: [[Fully supported]]", "Fully supported", 1.0),
        ("[[partially  SUPPORTED]]", "Partially supported", 0.5),
        ("[[No Support]]", "No support", 0.0),
        ("first [[Fully supported]], then [[No support]]", "No support", 0.0),
        ("等级：[[部分支持]]", "部分支持", 0.5),
    ],
)
def test_support_labels(text: str, label: str, value: float) -> None:
    assert parse_support(text) == (label, value)


def test_unknown_label_is_a_failure() -> None:
    with pytest.raises(ParseError, match=r"unknown verdict \[\[Mostly supported\]\]"):
        parse_label("Level: [[Mostly supported]]", SUPPORT)
    with pytest.raises(ParseError, match="no \\[\\[verdict\\]\\]"):
        parse_label("fully supported", SUPPORT)


def test_statements() -> None:
    reply = "<statement> A is B. </statement>\n<statement></statement>\n<statement>C\nis D.</statement>"
    assert parse_statements(reply) == ["A is B.", "C\nis D."]
    assert parse_statements("No factual statements") == []
    assert parse_statements("no factual statements.") == []
    with pytest.raises(ParseError, match="no <statement>"):
        parse_statements("The answer says A is B.")
    with pytest.raises(ParseError):
        parse_tagged("nothing", "point")
