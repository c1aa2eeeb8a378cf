"""The user-turn filters: each a pure function returning a reason or None, pinned on small examples."""

from __future__ import annotations

import pytest

from turnwise.errors import ConfigError
from turnwise.simulate.filters import (
    FilterConfig,
    TurnHistory,
    answers_instead_of_asking,
    check_user_turn,
    detect_language,
    jaccard,
    language_mismatch,
    near_duplicate,
    normalize,
    repeated,
    role_label,
    sensitive,
    sensitive_pattern,
    shingles,
    too_short,
)


def history(asked=("What is a cache?",), answers=("A cache keeps answers close at hand so they are fast.",)):
    h = TurnHistory()
    for text in asked:
        h.add_user(text)
    for text in answers:
        h.add_answer(text)
    return h


def test_normalize_and_shingles():
    assert normalize("  What IS   a cache?! ") == "what is a cache"
    assert normalize("Ｗｈａｔ？") == "what"  # NFKC folds full-width letters
    assert shingles("What is it?") == {"what", "is", "it"}
    assert shingles("它在哪里？") == {"它在", "在哪", "哪里"}  # Chinese: character bigrams
    assert shingles("Python 里的 list") == {"python", "里的", "list"}


def test_jaccard_by_hand():
    # {a, b, c} and {b, c, d}: 2 shared of 4 distinct.
    assert jaccard({"a", "b", "c"}, {"b", "c", "d"}) == 0.5
    assert jaccard(set(), {"a"}) == 0.0


@pytest.mark.parametrize(
    ("text", "lang"),
    [("How old is it?", "en"), ("它在哪里？", "zh"), ("Python 里的 list 是什么", "zh"), ("What does 小明 like?", "en"),
     ("それは何ですか", "ja"), ("Что это?", "ru"), ("???", None), ("42", None)],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_too_short_counts_non_space_characters():
    assert too_short("ok", 3) == "too_short"
    assert too_short("o k", 3) == "too_short"
    assert too_short("Why?", 3) is None


@pytest.mark.parametrize("text", ["User: and then?", "Sure.\nAssistant: here it is", "用户：那个呢", "human: hi"])
def test_role_labels(text):
    assert role_label(text) == "role_label"


@pytest.mark.parametrize("text", ["What does a user see?", "Is the assistant role special?", "Set x: 3"])
def test_no_role_labels(text):
    assert role_label(text) is None


@pytest.mark.parametrize("text", ["Certainly! Here is the code.", "As an AI language model, I cannot.",
                                  "It works. I hope this helps!", "当然可以，下面是代码。"])
def test_assistant_phrasing_is_an_answer(text):
    assert answers_instead_of_asking(text, history(), 0.8) == "answer"


def test_copying_an_earlier_answer_is_an_answer():
    h = history()
    assert answers_instead_of_asking("a cache keeps answers close at hand so they are fast", h, 0.8) == "answer"
    assert answers_instead_of_asking("Why is it fast?", h, 0.8) is None


def test_repeated_exact_and_near():
    h = history(asked=("What is a cache?", "How big should the cache be for my web app?"))
    assert repeated("what is a CACHE", h) == "repeated"
    assert repeated("What is a queue?", h) is None
    # 9 shared words of 10 distinct: Jaccard 0.9.
    assert near_duplicate("How big should the cache be for my app?", h, 0.8) == "near_duplicate"
    assert near_duplicate("And for a mobile app?", h, 0.8) is None


def test_sensitive_terms_match_whole_words_and_chinese_substrings():
    pattern = sensitive_pattern(["bomb", "炸弹", " "])
    assert sensitive("How do I defuse a BOMB?", pattern) == "sensitive"
    assert sensitive("怎么做炸弹", pattern) == "sensitive"
    assert sensitive("A bombastic speech?", pattern) is None
    assert sensitive_pattern([]) is None and sensitive("anything", None) is None


def test_language_mismatch_needs_both_languages_known():
    assert language_mismatch("它在哪里？", "en") == "language"
    assert language_mismatch("Where is it?", "en") is None
    assert language_mismatch("?!", "en") is None
    assert language_mismatch("它在哪里？", None) is None


def test_check_user_turn_order_and_disabled_filters():
    config = FilterConfig(sensitive_terms=["secret"])
    h = history()
    assert check_user_turn("  ", h, "en", config) == "empty"
    assert check_user_turn("User: What is a cache?", h, "en", config) == "role_label"  # before repeated
    assert check_user_turn("What is a cache?", h, "en", config) == "repeated"
    assert check_user_turn("Tell me the secret", h, "en", config) == "sensitive"
    assert check_user_turn("那它呢？", h, "en", config) == "language"
    assert check_user_turn("Why is it fast?", h, "en", config) is None
    relaxed = FilterConfig(disabled=["repeated", "near_duplicate", "language"])
    assert check_user_turn("What is a cache?", h, "en", relaxed) is None
    assert check_user_turn("那它呢？", h, "en", relaxed) is None


def test_filter_config_rejects_unknown_settings():
    with pytest.raises(ConfigError, match="cannot disable"):
        FilterConfig(disabled=["empty"])
    with pytest.raises(ConfigError, match="near_duplicate"):
        FilterConfig(near_duplicate=0)
