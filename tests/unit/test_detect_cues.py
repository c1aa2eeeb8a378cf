"""Context-dependence cues are matched on words, never substrings, in English and Chinese."""

from __future__ import annotations

import pytest

from turnwise.detect.cues import find_cues
from turnwise.detect.rules import pronoun_only
from turnwise.detect.text import language, tokenize_en

pytest.importorskip("jieba")


def kinds(turn: str, history: list[str] | None = None, lang: str | None = None) -> set[str]:
    return {c.kind for c in find_cues(turn, history or [], lang)}


def texts(turn: str, kind: str, history: list[str] | None = None, lang: str | None = None) -> list[str]:
    return [c.text for c in find_cues(turn, history or [], lang) if c.kind == kind]


# --- English word boundaries -------------------------------------------------------------------------


@pytest.mark.parametrize("turn", ["Is this item in stock?", "Where can I buy an item like that book? No, items.",
                                  "Itinerary for Paris please", "The hitman movie"])
def test_it_inside_a_word_never_counts(turn):
    assert "it" not in {t.low for t in tokenize_en(turn)}
    assert "it" not in texts(turn, "personal_pronoun")


def test_it_as_a_word_counts_and_clitics_split():
    assert texts("How fast is it slipping?", "personal_pronoun") == ["it"]
    assert texts("It's sliding into the sea.", "personal_pronoun") == ["It"]
    assert [t.low for t in tokenize_en("that 's it's don't")] == ["that", "'s", "it", "'s", "don", "'t"]


@pytest.mark.parametrize("turn", ["Theme parks in Ohio?", "Show me the thesis", "Is there a hero in Athens?"])
def test_he_and_the_inside_words_never_count(turn):
    assert texts(turn, "personal_pronoun") == []
    assert texts(turn, "demonstrative") == []


def test_pronoun_baseline_matches_words_only():
    assert pronoun_only("Where is it now?", "en")
    assert not pronoun_only("Where is the item now?", "en")
    assert not pronoun_only("Theme and thesis", "en")


# --- English cues ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("turn", "kind"), [
    ("What about 2020?", "ellipsis"),
    ("And the other one?", "ellipsis"),
    ("And the other one?", "one_anaphora"),
    ("And the other one?", "additive"),
    ("Tell me about the first.", "ordinal_reference"),
    ("Can I read the second one?", "one_anaphora"),
    ("Anything else?", "additive"),
    ("Tell me more.", "additive"),
    ("Are there any on motors?", "nominal_ellipsis"),
    ("Is it still raining there?", "proform"),
    ("On what merits?", "fragment"),
    ("What was the score", "bridging"),
    ("What time?", "short_turn"),
])
def test_english_cues(turn, kind):
    assert kind in kinds(turn)


def test_definite_reference_needs_the_noun_in_the_history():
    history = ["Is there a museum for hockey sticks?", "Yes, in Ontario."]
    assert texts("What are the hours of the museum?", "definite_reference", history) == ["the museum"]
    assert texts("What are the hours of the museum?", "definite_reference", []) == []


def test_time_deixis_and_complementizers_are_not_references():
    assert kinds("What happened last night?") & {"ordinal_reference", "demonstrative"} == set()
    assert kinds("Any news this week about Ford?") & {"demonstrative"} == set()
    assert texts("I heard that the Giants won.", "demonstrative") == []


def test_reactions_and_thanks_point_to_standalone():
    assert kinds("Thank you!") == {"phatic"}
    assert kinds("Oh, that's really cool!") == {"reaction", "phatic"}
    assert "demonstrative" not in kinds("That would be great.")
    assert "demonstrative" in kinds("Is that great?")  # a question about it is no reaction


def test_names_carry_their_own_topic_but_a_shortened_name_refers_back():
    assert texts("Is there any news about Dave Chappelle?", "named_entity") == ["Dave Chappelle"]
    history = ["Who is Joe Perry?", "A guitarist."]
    assert texts("Did Joe write songs?", "partial_name", history) == ["Joe"]
    assert "resolved_pronoun" in kinds("Did John say he was coming?")


# --- Chinese word boundaries -------------------------------------------------------------------------


def test_qita_is_not_qi():
    assert texts("其他的呢", "personal_pronoun", lang="zh") == []
    assert texts("其他的呢", "additive", lang="zh") == ["其他"]
    assert texts("其实不是", "personal_pronoun", lang="zh") == []


def test_yinggai_is_not_gai():
    assert texts("我应该怎么办", "demonstrative", lang="zh") == []
    assert texts("我该怎么办", "demonstrative", lang="zh") == []  # the modal 该 points at nothing
    assert texts("该公司的股价", "demonstrative", lang="zh") == ["该公司"]


def test_jixu_jiaoyu_is_not_jixu():
    """jieba splits 继续教育 into 继续/教育; 继续 only counts with its object left out."""
    assert texts("继续教育怎么报名", "ellipsis", lang="zh") == []
    assert texts("我想了解继续教育", "ellipsis", lang="zh") == []
    assert texts("继续说", "ellipsis", lang="zh") == ["继续说"]
    assert texts("请继续", "ellipsis", lang="zh") == ["继续"]


@pytest.mark.parametrize(("turn", "kind", "text"), [
    ("然后呢", "ellipsis", "然后呢"),
    ("那北京呢？", "ellipsis", "那北京呢"),
    ("他的代表作是什么", "personal_pronoun", "他"),
    ("这部电影好看吗", "demonstrative", "这部"),
    ("第二个是什么", "ordinal_reference", "第二个"),
    ("最后一个呢", "ordinal_reference", "最后一个"),
    ("还有别的吗", "additive", "别的"),
])
def test_chinese_cues(turn, kind, text):
    assert text in texts(turn, kind, lang="zh")


def test_chinese_degree_words_and_particle_inside_words_are_not_cues():
    assert texts("那么多人", "demonstrative", lang="zh") == []
    assert texts("呢子大衣多少钱", "ellipsis", lang="zh") == []  # 呢子 is a word (wool cloth)
    assert kinds("好的，谢谢", lang="zh") == {"phatic"}


def test_language_detection():
    assert language("How fast is it?") == "en"
    assert language("iphonex为什么不好用") == "zh"
