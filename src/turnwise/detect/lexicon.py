"""Word lists behind the context-dependence cues, English and Chinese.

Every list is a closed linguistic class (pronouns, demonstratives, ordinals, discourse particles) or a
small open class named for what it does (time nouns that make "last" temporal, evaluative words that
make "that's great" a reaction). None is drawn from a benchmark's examples.
"""

from __future__ import annotations


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- English -----------------------------------------------------------------------------------------

PERSONAL_EN = _set("he she it they him her them his its their hers theirs himself herself itself themselves")
DEMONSTRATIVE_EN = _set("this that these those")
# "the first one", "that one", "which ones": one-anaphora needs a determiner or a modifier before it.
NOT_ONE_ANAPHORA_EN = _set("no any some every each at in of than number")
ORDINAL_EN = _set("first second third fourth fifth last latter former previous latest newest next both either neither")
ADDITIVE_EN = _set("else other others another also too again")
# "more" refers back when nothing says more of what: "tell me more", "more about", "any more news".
MORE_FOLLOWERS_EN = _set("about on of info information details detail news stories articles")
# Ordinals and demonstratives before these are deictic time ("last night", "this week"), not references.
TIME_NOUNS_EN = _set(
    """night nights week weeks weekend year years month months day days time times season seasons morning
    evening afternoon hour hours minute minutes decade century quarter today tonight tomorrow yesterday"""
)
ELLIPSIS_OPENERS_EN = (("what", "about"), ("how", "about"), ("what", "else"), ("then", "what"), ("and", "then"))
CONJUNCTIONS_EN = _set("and or but")
SUBJECT_PRONOUNS_EN = _set("i you he she it we they")
DETERMINERS_EN = _set("the a an my your our his her their its some any every each no")
LINKING_EN = _set("'s is was sounds sound seems seem looks look would 'd must will could")
EVALUATIVE_EN = _set(
    """good great cool nice awesome amazing interesting fascinating wonderful fantastic excellent perfect fine
    bad terrible awful sad shame funny crazy weird strange surprising shocking impressive exciting sweet lovely
    helpful fun true wrong"""
)
# Quantifiers that stand for a whole noun phrase when no noun follows: "are there any on motors?".
QUANTIFIERS_EN = _set("any some none both either neither all each")
PREPOSITIONS_EN = _set("in of from about with on for at by to")
# Relational nouns: "the score", "the address" presuppose a game, a place named before (bridging).
RELATIONAL_NOUNS_EN = _set(
    """score scores address price prices cost hours name names date result results winner winners loser location
    schedule forecast plot cast author director owner rating ratings lineup release ending outcome headline
    headlines source link reason cause reaction response details population capital size age total"""
)
# Restrictive words after a definite noun phrase: "the celebration of tribes" says which one itself.
RESTRICTORS_EN = _set("of about on from in that which who whose where called named")
# A clause without one of these (a closed class) and short is a fragment: "On what merits?", "Wake?".
AUXILIARIES_EN = _set(
    """is are was were be been being am 's 're 'm do does did done have has had 've 'd can could will would 'll
    shall should may might must don doesn didn isn aren wasn weren won wouldn couldn shouldn haven hasn hadn"""
)
# Turn-level reactions: a turn made only of these asks nothing of its history.
PHATIC_EN = _set(
    """yes yeah yep yup no nope nah ok okay k sure thanks thank you thx please cool great awesome wow oh ah aha
    hmm hm um uh well alright right fine good nice perfect amazing interesting really seriously sorry lol haha
    huh oops gosh boy dang shoot damn i 'm am understand see got agreed exactly indeed true bye goodbye hello hi
    hey very so much then just that's"""
)
# Sentence starts that are never names even when capitalised.
FUNCTION_WORDS_EN = _set(
    """a an the and or but so then if when what who whom whose which where why how is are was were be been do does
    did can could will would should shall may might must has have had i you he she it we they me him her us them
    my your his its our their this that these those there here of in on at to for from with about by as not no
    yes ok okay please any some all more most other another also too very just only what's"""
)
STOPWORDS_EN = FUNCTION_WORDS_EN | _set(
    "'s 're 've 'll 'd 'm 't tell show give send read let get like know want need see open"
)

# --- Chinese (words as jieba segments them) ------------------------------------------------------------

PERSONAL_ZH = _set("他 她 它 他们 她们 它们 其 人家")
DEMONSTRATIVE_ZH = _set("这 那 这个 那个 这些 那些 这里 那里 这儿 那儿 这边 那边 此 这样 那样 这种 那种")
# Degree words that start with 这/那 but point at no referent ("那么多" = so many).
NOT_DEMONSTRATIVE_ZH = _set("这么 那么 这么样 那么样 怎么")
# 该 is a determiner ("该公司") only before a noun; elsewhere it is the modal "should".
DETERMINER_BEFORE_NOUN_ZH = _set("该 本 此")
ADDITIVE_ZH = _set("别的 其他 其它 其余 另外 另 也 再 还有")
# 继续 "continue" refers back only when its object is left out ("继续", "继续说"), not in "继续教育".
CONTINUE_ZH = _set("继续 接着")
SPEECH_VERBS_ZH = _set("说 讲 聊 介绍 讲讲 说说 聊聊 下去")
ORDINAL_ZH = _set("前者 后者 上面 刚才 刚刚 之前 前面 上述")
# 上/下/最后 point back only before a counted noun phrase: "上一个", "最后一首".
ORDINAL_BEFORE_NUMERAL_ZH = _set("上 下 最后 前 后")
FINAL_PARTICLES_ZH = _set("啊 呀 吧 嘛 哦 哈 啦")
QUESTION_WORDS_ZH = _set("什么 怎么 怎么样 为什么 谁 哪 哪个 哪里 哪儿 多少 几 吗 呢 么 如何")
PHATIC_ZH = _set(
    """好 好的 好吧 嗯 嗯嗯 恩 哦 噢 哈 哈哈 哈哈哈 呵呵 谢谢 谢谢你 多谢 感谢 对 对的 是 是的 是啊 行 可以 ok 没事
    不客气 拜拜 再见 晚安 啊 呀 吧 了 的 知道 明白 了解 收到 厉害 棒 不错"""
)
# jieba tags for names of people, places and organisations (its nz "other proper noun" is too noisy).
NAME_TAGS_ZH = _set("nr nrt nrfg ns nt")
