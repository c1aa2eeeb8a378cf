"""The multi-turn rollout loop on scripted models: turn order, who speaks, and reward attribution, by hand."""

from __future__ import annotations

import asyncio

import pytest

from turnwise.online.rollout import (
    ModelUser,
    ReplayUser,
    RolloutConfig,
    continue_dialogue,
    discounted_mean,
)
from turnwise.score.verifiable import VerifiableScorer, exact_match
from turnwise.simulate.filters import FilterConfig
from turnwise.testing.fake import FakeChatModel

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"}]
EXACT = VerifiableScorer("exact", exact_match)


def policy_replies(messages):
    """The policy answers ``A<k>`` to the user turn ``Q<k>``, except Q3, which it gets wrong."""
    last = messages[-1]["content"]
    return "wrong" if last == "Q3" else "A" + last[1:]


def run(coro):
    return asyncio.run(coro)


def test_replayed_user_turns_and_per_turn_rewards():
    """K = 3: candidate, then Q2 (reference A2: right), then Q3 (reference A3: the policy says 'wrong')."""
    policy = FakeChatModel(policy_replies)
    meta = {"reference": "A1", "future": [{"content": "Q2", "reference": "A2"}, {"content": "Q3", "reference": "A3"},
                                          {"content": "Q4", "reference": "A4"}]}
    rollout = run(continue_dialogue(PROMPT, "A1", policy=policy, user=ReplayUser(), scorer=EXACT,
                                    cfg=RolloutConfig(turns=3, discount=0.5), meta=meta))
    assert [m["role"] for m in rollout.messages] == ["system", "user", "assistant", "user", "assistant", "user",
                                                     "assistant"]
    assert [m["content"] for m in rollout.messages[2:]] == ["A1", "Q2", "A2", "Q3", "wrong"]
    assert rollout.speakers == ["policy:candidate", "user:replay", "policy", "user:replay", "policy"]
    assert rollout.rewards == [1.0, 1.0, 0.0] and rollout.references == ["A1", "A2", "A3"]
    # (1·1 + 0.5·1 + 0.25·0) / (1 + 0.5 + 0.25)
    assert rollout.reward == pytest.approx(1.5 / 1.75)
    assert rollout.ended_by == "turns"
    # the policy saw each dialogue so far, its candidate included, and never the future
    assert [m["content"] for m in policy.seen[0]] == ["Be brief.", "Q1", "A1", "Q2"]
    assert [m["content"] for m in policy.seen[1]] == ["Be brief.", "Q1", "A1", "Q2", "A2", "Q3"]


def test_a_wrong_candidate_lowers_its_reward_even_when_later_turns_are_right():
    meta = {"reference": "A1", "future": [{"content": "Q2", "reference": "A2"}]}
    right, wrong = (run(continue_dialogue(PROMPT, answer, policy=FakeChatModel(policy_replies), user=ReplayUser(),
                                          scorer=EXACT, cfg=RolloutConfig(turns=2), meta=meta))
                    for answer in ("A1", "B1"))
    assert (right.rewards, wrong.rewards) == ([1.0, 1.0], [0.0, 1.0])
    assert (right.reward, wrong.reward) == (1.0, 0.5)
    first_only = run(continue_dialogue(PROMPT, "B1", policy=FakeChatModel(policy_replies), user=ReplayUser(),
                                       scorer=EXACT, cfg=RolloutConfig(turns=2, discount=0.0), meta=meta))
    assert first_only.reward == 0.0  # γ = 0: the candidate's own turn alone


def test_a_model_user_writes_the_next_turns_from_the_flipped_dialogue():
    """An ask model sees the dialogue with roles flipped (it plays the user) and its reply becomes the user turn;
    without a reference, the later turns are unscored and the candidate's reward is its own."""
    asked = []

    def user_reply(messages):
        asked.append(messages)
        return f"follow-up {len(asked)}"

    simulator = FakeChatModel(user_reply)
    rollout = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(lambda m: "ok"), user=ModelUser(simulator),
                                    scorer=EXACT, cfg=RolloutConfig(turns=3), meta={"reference": "A1"}))
    assert [m["content"] for m in rollout.messages[2:]] == ["A1", "follow-up 1", "ok", "follow-up 2", "ok"]
    assert rollout.speakers == ["policy:candidate", "user:ask:fake", "policy", "user:ask:fake", "policy"]
    assert [m["role"] for m in asked[0] if m["role"] != "system"][-2:] == ["assistant", "user"]  # flipped
    assert asked[0][-1]["content"] == "A1"  # the assistant's answer is what the simulator replies to
    assert rollout.rewards == [1.0, None, None] and rollout.reward == 1.0


def test_the_simulator_ending_the_dialogue_and_a_failed_policy():
    ended = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(policy_replies), user=ReplayUser(),
                                  scorer=EXACT, cfg=RolloutConfig(turns=4), meta={"reference": "A1", "future": []}))
    assert ended.ended_by == "user" and len(ended.messages) == 3 and ended.reward == 1.0
    failed = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(lambda m: None), user=ReplayUser(),
                                   scorer=EXACT, cfg=RolloutConfig(turns=2),
                                   meta={"reference": "A1", "future": [{"content": "Q2", "reference": "A2"}]}))
    assert failed.ended_by == "error" and failed.rewards == [1.0] and failed.speakers[-1] == "user:replay"
    assert failed.end_reason == "turn 2: policy: scripted failure"


def test_simulator_drafts_are_filtered_and_regenerated_and_referenced_by_the_world():
    """Drafts that fail simulate's filters (too short, a repeat) or the check of your own are drawn again; the kept
    turn gets the reference the world's function gives; the rejected drafts are counted in the rollout."""
    drafts = iter(["?", "Q1", "off topic", "Q2", "Q3"])  # turn 2: too short, repeated, off-world, then Q2
    off = lambda text, messages: "off_world" if text == "off topic" else None  # noqa: E731
    user = ModelUser(FakeChatModel(lambda m: next(drafts), model="ask"), regenerations=3,
                     filters=FilterConfig(min_chars=2), reference=lambda messages: "A" + messages[-1]["content"][1:],
                     check=off)
    rollout = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(policy_replies), user=user, scorer=EXACT,
                                    cfg=RolloutConfig(turns=3), meta={"reference": "A1"}))
    assert [m["content"] for m in rollout.messages[2:]] == ["A1", "Q2", "A2", "Q3", "wrong"]
    assert rollout.speakers[1::2] == ["user:ask:ask", "user:ask:ask"]
    assert rollout.references == ["A1", "A2", "A3"] and rollout.rewards == [1.0, 1.0, 0.0]
    assert rollout.rejected == {"too_short": 1, "repeated": 1, "off_world": 1}
    assert rollout.to_record()["rejected_user_turns"] == {"too_short": 1, "repeated": 1, "off_world": 1}


def test_no_draft_passing_the_filters_ends_the_rollout_as_filtered():
    user = ModelUser(FakeChatModel(lambda m: "Q1", model="ask"), regenerations=2,  # always repeats the first turn
                     filters=FilterConfig(min_chars=2))
    rollout = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(policy_replies), user=user, scorer=EXACT,
                                    cfg=RolloutConfig(turns=3), meta={"reference": "A1"}))
    assert (rollout.ended_by, rollout.end_reason) == ("filter", "repeated")
    assert rollout.rejected == {"repeated": 3} and len(rollout.messages) == 3 and rollout.reward == 1.0
    failing = ModelUser(FakeChatModel(lambda m: None, model="ask"))
    broken = run(continue_dialogue(PROMPT, "A1", policy=FakeChatModel(policy_replies), user=failing, scorer=EXACT,
                                   cfg=RolloutConfig(turns=2), meta={"reference": "A1"}))
    assert (broken.ended_by, broken.end_reason) == ("error", "scripted failure")


def test_the_toy_worlds_reference_for_a_simulated_question():
    from turnwise.quickstart.world import oracle_reference

    opened = [{"role": "user", "content": "Tell me about the Nile."},
              {"role": "assistant", "content": "The Nile is a river in Africa."}]
    assert oracle_reference([*opened, {"role": "user", "content": "How big is it?"}]) == "the Nile: 6,650 km"
    assert oracle_reference([*opened, {"role": "user", "content": "And Fuji?"}]) == "Fuji: mountain | Asia"
    assert oracle_reference([*opened, {"role": "user", "content": "Is it nice?"}]) is None


def test_discounted_mean_by_hand():
    assert discounted_mean([1.0, 0.0, 1.0], 1.0) == pytest.approx(2 / 3)
    assert discounted_mean([None, 1.0], 0.5) == 1.0  # an unscored turn does not count
    assert discounted_mean([None, None], 0.9) == 0.0
    with pytest.raises(ValueError, match="turns"):
        RolloutConfig(turns=0)
