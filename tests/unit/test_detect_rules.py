"""Cue weighing, turn positions, metrics and the cue-feature classifier, pinned by hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from turnwise.detect.classifier import cross_validate, fit_detector, grouped_folds
from turnwise.detect.cues import Cue
from turnwise.detect.metrics import evaluate
from turnwise.detect.rules import RuleDetector, TurnDecision, detect_messages, user_turns_after_first

pytest.importorskip("jieba")


def test_score_counts_each_kind_once_and_confidence_is_the_logistic():
    detector = RuleDetector({"personal_pronoun": 2.5, "named_entity": -1.0}, bias=-1.0)
    cues = [Cue("personal_pronoun", "he"), Cue("personal_pronoun", "his"), Cue("named_entity", "Miami")]
    # -1.0 + 2.5 (once, not twice) - 1.0 = 0.5; p = 1 / (1 + e^-0.5) = 0.6225
    decision = detector.decide(3, cues)
    assert decision.score == 0.5
    assert decision.dependent
    assert decision.confidence == round(1 / (1 + math.exp(-0.5)), 3) == 0.622
    assert [e["weight"] for e in decision.evidence] == [2.5, 2.5, -1.0]


def test_no_cue_is_standalone_with_the_bias_confidence():
    decision = RuleDetector(bias=-1.0).decide(2, [])
    # p(dependent) = 1 / (1 + e) = 0.269, so the confidence of "standalone" is 0.731
    assert (decision.dependent, decision.confidence, decision.evidence) == (False, 0.731, [])


def test_every_user_turn_after_the_first_is_labelled_at_its_message_position():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about the Nile."},
        {"role": "assistant", "content": "A river in Africa."},
        {"role": "user", "content": "How long is it?"},
        {"role": "assistant", "content": "6,650 km."},
        {"role": "user", "content": "Thanks!"},
    ]
    assert user_turns_after_first(messages) == [3, 5]
    decisions = detect_messages(messages)
    assert [(d.index, d.dependent) for d in decisions] == [(3, True), (5, False)]
    assert decisions[0].evidence[0] == {"cue": "personal_pronoun", "text": "it", "weight": 2.5}


def test_decision_round_trips_through_a_record():
    decision = TurnDecision(3, True, 0.9, [{"cue": "ellipsis", "text": "呢", "weight": 3.0}], 2.0)
    assert TurnDecision.from_dict(decision.to_dict()) == decision


def test_metrics_by_hand():
    gold = [True, True, True, False, False]
    pred = [True, True, False, True, False]
    report = evaluate(gold, pred)
    # dependent: tp 2, predicted 3, support 3 -> P 2/3, R 2/3, F1 2/3
    # standalone: tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2; macro = (2/3 + 1/2) / 2 = 7/12
    assert report.dependent.f1 == pytest.approx(2 / 3)
    assert report.standalone.precision == pytest.approx(0.5)
    assert report.macro_f1 == pytest.approx(7 / 12)


def test_always_dependent_gets_zero_standalone_f1():
    gold = [True] * 77 + [False] * 23
    report = evaluate(gold, [True] * 100)
    assert report.dependent.f1 == pytest.approx(2 * 0.77 / 1.77)  # 0.870
    assert report.standalone.f1 == 0.0
    assert report.macro_f1 == pytest.approx(0.435, abs=1e-3)


def test_classifier_learns_the_sign_of_each_cue():
    pron, name = [Cue("personal_pronoun", "it")], [Cue("named_entity", "Paris")]
    cues = [pron] * 30 + [name] * 30 + [[]] * 10
    labels = [True] * 28 + [False] * 2 + [False] * 27 + [True] * 3 + [False] * 10
    detector = fit_detector(cues, labels)
    assert detector.weights["personal_pronoun"] > 1.0 > 0 > detector.weights["named_entity"]
    assert detector.score(pron) > 0 > detector.score(name)


def test_folds_keep_each_dialogue_in_one_fold():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e"]
    folds = grouped_folds(groups, k=3)
    assert sorted(i for f in folds for i in f) == list(range(len(groups)))
    for fold in folds:
        inside = {groups[i] for i in fold}
        assert all(groups[j] not in inside for other in folds if other is not fold for j in other)
    cues = [[Cue("personal_pronoun", "it")], []] * 10
    assert cross_validate(cues, [True, False] * 10, [str(i // 2) for i in range(20)], k=5) == [True, False] * 10
