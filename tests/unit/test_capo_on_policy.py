"""On-policy, verified CaPO negatives: the policy's own wrong answers with the true history, labelled by kind of
error; and every strategy drops a rejected answer the check passes. Expectations worked out by hand."""

from __future__ import annotations

import pytest

from turnwise.capo.stage import CapoConfig, run_capo
from turnwise.capo.strategies import CapoModels
from turnwise.data.schema import Conversation
from turnwise.detect.rules import TurnDecision
from turnwise.errors import ConfigError
from turnwise.models.base import Completion, GenerationSettings, Usage
from turnwise.quickstart.world import error_category
from turnwise.records import RecordStore, read_stage_output

DIALOGUE = [
    {"role": "user", "content": "Tell me about the Nile."},
    {"role": "assistant", "content": "The Nile is a river in Africa."},
    {"role": "user", "content": "And the Amazon?"},
    {"role": "assistant", "content": "The Amazon is a river in South America."},
    {"role": "user", "content": "How long is it?"},
    {"role": "assistant", "content": "The Amazon is 6,400 km long."},
]
META = {"references": ["the Nile: Africa", "the Amazon: South America", "the Amazon: 6,400 km long"]}
TURN = [TurnDecision(4, True, 0.99)]  # "How long is it?": the third user turn, reference "the Amazon: 6,400 km long"


class Sampler:
    """A policy whose samples for a prompt are given in order; records what it was asked."""

    backend, model = "fake", "policy"

    def __init__(self, samples: list[str]):
        self.samples, self.calls = samples, []

    async def chat(self, conversations, settings: GenerationSettings) -> list[Completion]:
        self.calls.append((conversations, settings))
        return [Completion(texts=self.samples[: settings.n], finish_reasons=["stop"] * settings.n, usage=Usage(1, 1))
                for _ in conversations]


async def run(tmp_path, replies, **config):
    policy = Sampler(replies)
    settings = {"check": "turnwise.quickstart.world:check_answer", "mix": {"on_policy": 1}, **config}
    with RecordStore(tmp_path / "pairs.records.jsonl") as store:
        await run_capo([Conversation("d", DIALOGUE, meta=META)], store, CapoConfig(**settings), CapoModels(policy),
                       detections={"d": TURN})
    return policy, {r["id"]: r for r in read_stage_output(tmp_path / "pairs.records.jsonl")}


async def test_the_first_failing_sample_with_the_true_history_is_rejected(tmp_path):
    samples = ["The Amazon is 6,400 km long.", "The Nile is 6,650 km long.", "The Volga is 3,530 km long."]
    policy, records = await run(tmp_path, samples, samples=3,
                                categorize="turnwise.quickstart.world:error_category")
    [(conversations, settings)] = policy.calls
    assert conversations == [DIALOGUE[:5]] and settings.n == 3  # the true history, N samples in one call
    record = records["d:4:on_policy"]
    assert record["status"] == "ok"
    assert record["chosen"][0]["content"] == "The Amazon is 6,400 km long."  # the dialogue's (gold) answer
    assert record["rejected"][0]["content"] == "The Nile is 6,650 km long."  # sample 0 passes; sample 1 is first wrong
    assert record["meta"]["context"] == {"samples": 3, "passing": 1, "category": "misunderstanding"}


async def test_a_turn_the_policy_always_gets_right_has_no_pair(tmp_path):
    _, records = await run(tmp_path, ["The Amazon is 6,400 km long.", "the AMAZON is 6,400 km long"], samples=2)
    record = records["d:4:on_policy"]
    assert record["status"] == "filtered" and "all 2 samples pass the check" in record["reason"]


@pytest.mark.parametrize(("answer", "category"), [
    ("The Nile is 6,650 km long.", "misunderstanding"),             # the other entity in play
    ("The Volga is 3,530 km long.", "neglect_or_hallucination"),     # an entity the dialogue never named
    ("It is 6,400 km long.", "no_referent"),                         # no entity: whom does it mean?
    ("The Amazon is 7,000 km long.", "fact"),                        # the right entity, a wrong fact
    ("The Amazon is 6,400 km long.", "right"),
])
def test_error_categories_by_hand(answer, category):
    assert error_category(answer, "the Amazon: 6,400 km long", DIALOGUE[:4]) == category


async def test_every_strategy_drops_a_rejected_answer_the_check_passes(tmp_path):
    # neglect answers "How long is it?" alone; a policy that happens to say the right thing gives no negative
    _, records = await run(tmp_path, ["The Amazon is 6,400 km long."], mix={"neglect": 1})
    record = records["d:4:neglect"]
    assert record["status"] == "filtered" and record["reason"] == "the rejected answer passes the check: it is right"
    assert record["raw"] == "The Amazon is 6,400 km long."
    _, records = await run(tmp_path / "wrong", ["The Nile is 6,650 km long."], mix={"neglect": 1})
    assert records["d:4:neglect"]["status"] == "ok"


def test_on_policy_needs_a_check():
    with pytest.raises(ConfigError, match="needs a check"):
        CapoConfig(mix={"on_policy": 1})
    assert "on_policy" not in {k for k, v in CapoConfig().mix.items() if v > 0}  # not in Parrot's default mix
