"""The quickstart's toy world: dialogues that refer back, splits that keep entity pairs apart, a check that
wants the entity the user meant, and result tables computed by hand."""

from __future__ import annotations

import random

import pytest

from turnwise.quickstart.results import results_html, results_markdown, seeds_markdown
from turnwise.quickstart.world import (
    ENTITIES,
    KINDS,
    TURNS,
    check_answer,
    dialogue_turns,
    outcomes,
    toy_dialogues,
    toy_splits,
)

BY_NAME = {e.name: k for k, e in enumerate(ENTITIES)}


def test_the_check_wants_the_entity_the_user_meant():
    assert check_answer("THE NILE is 6,650 km long.", "the Nile: 6,650 km")
    assert check_answer("Mount Kenya is in Africa.", "Mount Kenya: Africa")
    assert not check_answer("It is 6,650 km long.", "the Nile: 6,650 km")  # whom does it mean?
    assert not check_answer("The Congo is in Africa.", "Mount Kenya: Africa")  # right continent, wrong entity
    assert not check_answer("The Nile is 6650 km long.", "the Nile: 6,650 km")
    assert not check_answer("Mount Kenya is in Africa.", "Mount Kenya: mountain | Africa")  # a fact missing
    assert not check_answer("Mount Kenya, unlike Kilimanjaro, is in Africa.", "Mount Kenya: Africa")


def test_every_gold_answer_passes_its_own_check_and_kinds_are_labelled():
    splits = toy_splits(60, 20, seed=3, n_prefs=20)
    for rows in splits.values():
        for d in rows:
            answers = [t["value"] for t in d["conversations"] if t["from"] == "gpt"]
            assert len(answers) == len(d["meta"]["references"]) == len(d["meta"]["turn_kinds"]) == TURNS
            assert all(check_answer(a, r) for a, r in zip(answers, d["meta"]["references"], strict=True))
            assert d["meta"]["turn_kinds"][0] == "standalone" and set(d["meta"]["turn_kinds"]) <= set(KINDS)


def test_references_follow_the_dialogue():
    rng = random.Random(0)
    nile, fuji, volga = (ENTITIES[BY_NAME[n]] for n in ("the Nile", "Fuji", "the Volga"))
    seen = set()
    for _ in range(300):
        turns = dialogue_turns([nile, fuji, volga], rng)
        order, last = [], None
        for question, _answer, reference, kind in turns:
            meant = reference.split(": ")[0]
            if kind in ("standalone", "ellipsis") and meant not in order:
                order.append(meant)  # a new entity, named in the question
                assert meant in question or meant.removeprefix("the ") in question
            elif kind == "pronoun":
                assert meant == last and " it" in question
            elif kind == "ordinal":
                index = ("the first one", "the second one", "the third one").index(
                    next(o for o in ("the first one", "the second one", "the third one") if o in question))
                assert meant == order[index]
            elif kind == "other":
                assert len(order) == 2 and meant == next(e for e in order if e != last)
            seen.add(kind)
            last = meant
    assert seen == set(KINDS)


def test_splits_keep_entity_pairs_apart():
    splits = toy_splits(200, 60, seed=1, n_prefs=100)

    def pairs(rows, opening_only=False):
        out = set()
        for d in rows:
            names = d["meta"]["entities"][:2] if opening_only else d["meta"]["entities"]
            ids = [BY_NAME[n] for n in names]
            out |= {frozenset((a, b)) for a in ids for b in ids if a != b}
        return out

    held, prefs = pairs(splits["held_out"], True), pairs(splits["prefs"], True)
    assert held and prefs and not held & prefs
    assert not pairs(splits["train"]) & (held | prefs)  # SFT never puts a held-out or preference pair together
    assert not pairs(splits["prefs"]) & held
    assert toy_splits(200, 60, seed=1, n_prefs=100) == splits  # seeded
    assert splits["dev"] == []
    with_dev = toy_splits(200, 60, seed=1, n_prefs=100, n_dev=40)
    dev = pairs(with_dev["dev"], True)
    assert dev and not dev & (pairs(with_dev["held_out"], True) | pairs(with_dev["prefs"], True))  # apart from test
    assert len(dev) <= round(120 * 0.1)  # 10% of the 120 unordered pairs
    assert not pairs(with_dev["train"]) & dev and not pairs(with_dev["prefs"]) & dev  # no training saw a dev pair
    assert with_dev["held_out"] == splits["held_out"]  # the test split does not move when a dev split is added
    assert toy_dialogues(3, seed=5) == toy_dialogues(3, seed=5)


def test_teacher_forced_prompts_carry_the_gold_history_and_come_back_together():
    from turnwise.data.schema import Conversation
    from turnwise.quickstart.world import teacher_forced_outcomes, teacher_forced_prompts

    gold = ["The Nile is a river in Africa.", "The Nile is 6,650 km long.", "Fuji is 3,776 m high."]
    messages = [m for q, a in zip(["Tell me about the Nile.", "How big is it?", "And Fuji?"], gold, strict=True)
                for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    meta = {"references": ["the Nile: river | Africa", "the Nile: 6,650 km", "Fuji: 3,776 m"],
            "turn_kinds": ["standalone", "pronoun", "ellipsis"]}
    prompts = teacher_forced_prompts([Conversation("d", messages, meta=meta)])
    assert [p.id for p in prompts] == ["d/t0", "d/t1", "d/t2"]
    assert prompts[2].messages == messages[:5] and prompts[2].meta["references"] == ["Fuji: 3,776 m"]
    answers = ["The Nile is a river in Africa.", "Fuji is 3,776 m high.", "Fuji is 3,776 m high."]
    records = [{"id": p.id, "status": "ok", "meta": p.meta,
                "messages": [*p.messages, {"role": "assistant", "content": a}]}
               for p, a in zip(reversed(prompts), reversed(answers), strict=True)]  # any order
    records[0] = {**records[0], "status": "error", "messages": prompts[2].messages}  # the last turn unanswered
    assert teacher_forced_outcomes(records) == {"d": [("standalone", True), ("pronoun", False), ("ellipsis", False)]}


def test_error_counts_judge_each_wrong_dependent_turn_by_the_entity_it_names():
    from turnwise.quickstart.world import error_counts

    kinds = ["standalone", "pronoun", "ellipsis", "pronoun", "other", "ordinal"]
    refs = ["the Nile: river | Africa", "the Nile: 6,650 km", "Fuji: 3,776 m", "Fuji: Asia", "the Nile: Africa",
            "the Nile: Africa"]
    answers = ["The Congo is a river in Africa.",   # standalone: not counted
               "The Congo is 4,700 km long.",        # the Congo was named earlier (its own answer): misunderstanding
               "Fuji is 3,776 m high.",              # right
               "Denali is in North America.",        # never mentioned: neglect or hallucination
               "It is in Africa.",                   # no entity named
               "The Nile is in Asia."]               # the right entity, a wrong fact
    assert error_counts([_record("a", kinds, answers, refs)]) == {
        "misunderstanding": 1, "neglect_or_hallucination": 1, "no_referent": 1, "fact": 1}
    short = _record("b", kinds[:3], answers[:1], refs[:3])  # two dependent turns never answered
    assert error_counts([short])["no_referent"] == 2


def test_the_oracle_reads_every_question_the_world_asks_and_answers_as_the_gold_does():
    import asyncio

    from turnwise.models.base import GenerationSettings, ModelSpec
    from turnwise.quickstart.world import OracleModel, oracle_turns

    dialogues = toy_dialogues(150, seed=7) + toy_dialogues(50, seed=8, world="invented")
    for d in dialogues:
        messages = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]}
                    for t in d["conversations"]]
        turns = oracle_turns(messages)
        assert [t[0] for t in turns] == [m["content"] for m in messages if m["role"] == "assistant"]
        assert [t[1] for t in turns] == d["meta"]["references"] and [t[2] for t in turns] == d["meta"]["turn_kinds"]
    # by hand: the oracle reads the questions, whatever the assistant answered
    asked = [{"role": "user", "content": "Tell me about Fuji."}, {"role": "assistant", "content": "No idea."},
             {"role": "user", "content": "What about the Nile?"}, {"role": "assistant", "content": "?"},
             {"role": "user", "content": "Where is the other one?"}]
    assert oracle_turns(asked) == [("Fuji is a mountain in Asia.", "Fuji: mountain | Asia", "standalone"),
                                   ("The Nile is a river in Africa.", "the Nile: river | Africa", "ellipsis"),
                                   ("Fuji is in Asia.", "Fuji: Asia", "other")]
    assert oracle_turns([{"role": "user", "content": "How big is it?"}]) is None  # no one in play yet
    assert oracle_turns([{"role": "user", "content": "Tell me a joke."}]) is None
    model = OracleModel(ModelSpec("toy-world", backend="turnwise.quickstart.world:OracleModel"))
    right, wrong = asyncio.run(model.chat([asked, [{"role": "user", "content": "Tell me a joke."}]],
                                          GenerationSettings(n=2)))
    assert right.texts == ["Fuji is in Asia."] * 2 and not wrong.ok and "Tell me a joke." in wrong.error


def test_named_dialogues_ask_the_same_things_by_name():
    named = toy_splits(40, 10, seed=2, n_named=40)["named"]
    assert len(named) == 40
    for d in named:
        assert set(d["meta"]["turn_kinds"]) == {"standalone"}
        questions = [t["value"] for t in d["conversations"] if t["from"] == "human"]
        for question, reference in zip(questions, d["meta"]["references"], strict=True):
            entity = reference.split(": ")[0]
            assert entity in question or entity[0].upper() + entity[1:] in question  # every question names it
        answers = [t["value"] for t in d["conversations"] if t["from"] == "gpt"]
        assert all(check_answer(a, r) for a, r in zip(answers, d["meta"]["references"], strict=True))


def _record(rid, kinds, answers, references):
    messages = [m for a in answers for m in ({"role": "user", "content": "q"}, {"role": "assistant", "content": a})]
    return {"id": rid, "messages": messages, "meta": {"references": references, "turn_kinds": kinds}}


def test_tables_match_a_hand_count():
    kinds = ["standalone", "pronoun", "ellipsis"]
    refs = ["the Nile: Africa", "the Nile: 6,650 km", "Fuji: 3,776 m"]
    good = _record("a", kinds, ["The Nile is in Africa.", "The Nile is 6,650 km long.", "Fuji is 3,776 m high."], refs)
    bad = _record("b", kinds, ["The Nile is in Africa.", "Fuji is 3,776 m high."], refs)  # turn 3 never answered
    first = {"A": outcomes([good, bad]), "B": outcomes([good, good | {"id": "b"}])}
    table, numbers = results_markdown(first)
    assert numbers["A"]["standalone"] == 1.0 and numbers["A"]["dependent"] == 0.5
    assert numbers["A"]["counts"]["dependent"] == [2, 4] and numbers["A"]["pronoun"] == 0.5
    assert numbers["A"]["by_turn"] == [1.0, 0.5, 0.5] and numbers["A"]["ordinal"] is None
    assert numbers["changes"] == {"model": "B", "against": "A", "fixed": 2, "broken": 0}
    assert "| A | 100% (2/2) | 50% (2/4) |" in table
    second = {"A": outcomes([good, good | {"id": "b"}]), "B": outcomes([good, good | {"id": "b"}])}
    over, summary = seeds_markdown([numbers, results_markdown(second)[1]], against="A")
    assert summary["models"]["A"]["dependent"] == {"mean": 75.0, "sd": pytest.approx(35.36, abs=0.01)}
    assert summary["models"]["B"]["dependent_vs_A"] == [50.0, 0.0]
    assert "| A | 100.0 ± 0.0 | 75.0 ± 35.4 |" in over and "- B: +50.0, +0.0" in over
    page = results_html([numbers], against="B")
    assert 'id="turns-toy"' in page and 'id="kinds-toy"' in page and 'data-label="B"' in page
    assert ">accuracy (%)</text>" in page and "Dependent turns against B" in page
    kinds = page[page.index('id="kinds-toy"'):]
    assert ">ellipsis</text>" in kinds and ">dependent</text>" not in kinds  # the radar's axes: kinds of turn
    assert "<li>A: -50.0</li>" in page and "<li>B:" not in page  # the per-seed differences to B


def test_paired_comparisons_pool_seeds_and_decide_the_verdict_from_the_statistics():
    from turnwise.quickstart.results import paired_comparisons, paired_html, paired_markdown
    from turnwise.quickstart.run import CAPO, MATCHED, MATCHED_ON_POLICY, MATCHED_ROUND_2, VARIANTS, verdict

    ON_POLICY, ROUND_2 = VARIANTS[1][0], VARIANTS[2][0]

    s, p = "standalone", "pronoun"
    # two seeds, the same dialogue id in each (pooled as different dialogues); per turn [kind, right]
    seed0 = {MATCHED: {"d": [[s, True], [p, False], [p, False]]}, CAPO: {"d": [[s, True], [p, True], [p, True]]}}
    seed1 = {MATCHED: {"d": [[s, True], [p, True], [p, False]]}, CAPO: {"d": [[s, False], [p, True], [p, True]]}}
    comparisons = paired_comparisons([seed0, seed1], [MATCHED, "absent"], resamples=500)
    assert list(comparisons) == [MATCHED]  # a baseline no seed evaluated is skipped
    row = comparisons[MATCHED][CAPO]
    # dependent: CaPO 4/4, matched 1/4 -> +75 points; discordant 3 vs 0 -> p = 2/8
    assert (row["dependent"]["diff"], row["dependent"]["a_only"], row["dependent"]["b_only"]) == (75.0, 3, 0)
    assert row["dependent"]["p"] == pytest.approx(0.25) and row["dependent"]["clusters"] == 2
    # standalone: 1/2 vs 2/2 -> -50 points
    assert row["standalone"]["diff"] == -50.0
    text = verdict(comparisons)
    assert text.startswith("Goal: a CaPO variant ≥ +5 points over its matched baseline on dependent turns with p < "
                           "0.01/1, standalone ≥ −1: not met.")  # p = 0.25 and -50 standalone: not met
    assert f"- {CAPO} vs {MATCHED}: +75.0 points on dependent turns" in text
    assert "| SFT + CaPO-DPO | +75.0 [" in paired_markdown(comparisons, 2) and "| 0.250 |" in paired_markdown(
        comparisons, 2)
    assert "<td>0.250</td>" in paired_html(comparisons, 2)
    met = {MATCHED: {CAPO: {"dependent": {"diff": 6.0, "low": 2.0, "high": 10.0, "p": 0.004},
                            "standalone": {"diff": -0.5, "low": -2.0, "high": 1.0, "p": 0.7}}}}
    assert f"met by {CAPO}." in verdict(met) and "not met" not in verdict(met)
    close = {MATCHED: {CAPO: {**met[MATCHED][CAPO], "dependent": {**met[MATCHED][CAPO]["dependent"], "p": 0.02}}}}
    assert "not met" in verdict(close)  # the gain without significance is not enough
    # three variants, each against its own matched baseline: p must be under 0.01/3 for one of them
    three = {**met, MATCHED_ON_POLICY: {ON_POLICY: met[MATCHED][CAPO]},
             MATCHED_ROUND_2: {ROUND_2: met[MATCHED][CAPO]}}
    assert "p < 0.01/3" in verdict(three) and "not met" in verdict(three)  # 0.004 > 0.0033
    three[MATCHED_ROUND_2][ROUND_2] = {**met[MATCHED][CAPO], "dependent": {**met[MATCHED][CAPO]["dependent"],
                                                                           "p": 0.001}}
    assert f"met by {ROUND_2}." in verdict(three)


def test_another_recipe_needs_a_toy_eval_stage_named_eval(tmp_path):
    from turnwise.errors import ConfigError
    from turnwise.quickstart.run import run_quickstart

    recipe = tmp_path / "r.yaml"
    recipe.write_text("description: d\nstages:\n  - {name: data, kind: toy_data}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a stage named eval of kind toy_eval"):
        run_quickstart(tmp_path / "out", seeds=[0], recipe=recipe)
    assert not (tmp_path / "out").exists()  # refused before anything ran
