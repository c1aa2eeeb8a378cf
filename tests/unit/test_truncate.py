"""Token-budget truncation with a fake tokenizer: every expected count is worked out by hand below."""

from __future__ import annotations

import pytest

from turnwise.data.truncate import TruncationInfo, truncate_history
from turnwise.errors import SchemaError


def count_tokens(messages: list[dict[str, str]]) -> int:
    """A stand-in for a chat template: 3 tokens of framing per message plus one per word."""
    return sum(3 + len(m["content"].split()) for m in messages)


SYS = {"role": "system", "content": "Be brief."}  # 3 + 2 = 5 tokens
U1 = {"role": "user", "content": "one two three"}  # 6
A1 = {"role": "assistant", "content": "four five"}  # 5
U2 = {"role": "user", "content": "six"}  # 4
A2 = {"role": "assistant", "content": "seven eight nine ten"}  # 7
U3 = {"role": "user", "content": "eleven twelve"}  # 5
A3 = {"role": "assistant", "content": "thirteen"}  # 4

FULL = [SYS, U1, A1, U2, A2, U3, A3]  # 5 + 6 + 5 + 4 + 7 + 5 + 4 = 36


def test_a_conversation_within_budget_is_kept_whole():
    kept, info = truncate_history(FULL, count_tokens, 36)
    assert kept == FULL and kept is not FULL
    assert info == TruncationInfo(pairs_dropped=0, tokens_before=36, tokens_after=36, fits=True)


def test_drops_the_oldest_pair_first():
    # Without (U1, A1): 36 - 11 = 25 <= 30.
    kept, info = truncate_history(FULL, count_tokens, 30)
    assert kept == [SYS, U2, A2, U3, A3]
    assert info == TruncationInfo(1, 36, 25, True)


def test_drops_as_many_pairs_as_needed_and_keeps_system_and_last_exchange():
    # One pair dropped leaves 25 > 20; both dropped leave 36 - 11 - 11 = 14.
    kept, info = truncate_history(FULL, count_tokens, 20)
    assert kept == [SYS, U3, A3]
    assert info == TruncationInfo(2, 36, 14, True)


def test_too_long_even_without_history_is_reported_not_cut():
    kept, info = truncate_history(FULL, count_tokens, 13)
    assert kept == [SYS, U3, A3]
    assert info == TruncationInfo(2, 36, 14, False)
    assert info.to_dict() == {"pairs_dropped": 2, "tokens_before": 36, "tokens_after": 14, "fits": False}


def test_a_conversation_waiting_for_an_answer_keeps_its_last_user_turn():
    # [SYS, U1, A1, U2] = 5 + 6 + 5 + 4 = 20; without (U1, A1): 9.
    kept, info = truncate_history([SYS, U1, A1, U2], count_tokens, 10)
    assert kept == [SYS, U2]
    assert info == TruncationInfo(1, 20, 9, True)


def test_without_a_system_message():
    # [U1, A1, U2, A2] = 6 + 5 + 4 + 7 = 22; without (U1, A1): 11, exactly the budget.
    kept, info = truncate_history([U1, A1, U2, A2], count_tokens, 11)
    assert kept == [U2, A2]
    assert info == TruncationInfo(1, 22, 11, True)


def test_a_single_turn_over_budget_has_nothing_to_drop():
    kept, info = truncate_history([U1], count_tokens, 3)
    assert kept == [U1]
    assert info == TruncationInfo(0, 6, 6, False)


def test_the_input_is_not_changed():
    messages = list(FULL)
    truncate_history(messages, count_tokens, 20)
    assert messages == FULL


def test_an_invalid_conversation_is_refused():
    with pytest.raises(SchemaError, match="two user turns in a row"):
        truncate_history([U1, U2], count_tokens, 100)
