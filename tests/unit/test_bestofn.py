"""Best-of-N: the pair-picking rules by hand, and the stage with a fake policy and the scripted judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnwise.bestofn import BestOfNConfig, Candidate, pick_pair, run_bestofn, write_pairs
from turnwise.data.formats import read_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.errors import ConfigError
from turnwise.judge import Judge
from turnwise.judge.scripted import ScriptedJudge
from turnwise.models.base import Completion, GenerationSettings
from turnwise.records import RecordStore, read_stage_output
from turnwise.retrieval import Retriever
from turnwise.score import LongRewardScorer, VerifiableScorer, numeric_match
from turnwise.testing.fake import FakeChatModel


def cands(*totals: float | None, texts: list[str] | None = None) -> list[Candidate]:
    return [Candidate(i, (texts or [f"answer {i}" for i in range(len(totals))])[i], t) for i, t in enumerate(totals)]


def test_best_and_worst() -> None:
    pick = pick_pair(cands(5, 9, 2, 7, 4), min_scored=5)
    assert (pick.chosen, pick.rejected, pick.margin, pick.ok) == (1, 2, 7.0, True)


def test_ties_are_broken_by_sampling_order() -> None:
    # best: 9 at indices 1 and 3 → the first sampled (1); worst: 2 at indices 0 and 4 → the last sampled (4)
    pick = pick_pair(cands(2, 9, 5, 9, 2), min_scored=5)
    assert (pick.chosen, pick.rejected) == (1, 4)


def test_too_few_scored_and_small_margins_are_skipped() -> None:
    assert pick_pair(cands(9, None, 2, None, None, 3), min_scored=5).reason == (
        "only 3 of 6 responses were scored (need 5)")
    assert pick_pair(cands(6, 5.5, 6, 5.5, 6), min_margin=1).reason == "margin 0.50 is below the minimum 1"
    assert pick_pair(cands(6, 6, 6, 6, 6), min_margin=0).reason == (
        "every scored response has the same total: no better and worse answer")
    assert pick_pair(cands(6, 5.5, 6, 5.5, 6), min_margin=0.5).ok


def test_identical_texts_are_never_paired() -> None:
    same = ["Paris.", "Paris.", " Paris. ", "Lyon.", "Paris."]
    pick = pick_pair(cands(9, 1, 8, 5, 2, texts=same), min_scored=5)
    assert (pick.chosen, pick.rejected) == (0, 3)  # index 1 (total 1) says the same as the chosen one
    assert pick_pair(cands(9, 1, 5, texts=["x", "x", "x"]), min_scored=3).reason == (
        "every scored response has the same text")


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        pick_pair(cands(1, 2), min_scored=1)
    with pytest.raises(ConfigError):
        BestOfNConfig(n=4, min_scored=5)


class Policy(FakeChatModel):
    """A fake policy: sample i of a prompt is ``answers[i]``; a prompt containing 'boom' fails."""

    def __init__(self, answers: list[str]):
        super().__init__(model="policy")
        self.answers = answers

    async def chat(self, conversations, settings: GenerationSettings):
        self.seen.extend(conversations)
        if "boom" in conversations[0][-1]["content"]:
            return [Completion(error="server on fire")]
        texts = [self.answers[i % len(self.answers)] for i in range(settings.n)]
        return [Completion(texts=texts, finish_reasons=["stop"] * settings.n)]


PROMPTS = [
    Conversation("p1", [{"role": "user", "content": "What is 6 × 7?"}], meta={"reference": "42"}),
    Conversation("p2", [{"role": "user", "content": "boom"}], meta={"reference": "1"}),
    Conversation("p3", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]),
    Conversation("p4", [{"role": "user", "content": "And 2 + 2?"}]),  # no reference: every answer unscored
]
ANSWERS = ["It is 42.", "Maybe 41.", "", "42, surely.", "I think 40."]


async def test_stage_records_and_pairs(tmp_path: Path) -> None:
    records, pairs = tmp_path / "pairs.records.jsonl", tmp_path / "pairs.jsonl"
    cfg = BestOfNConfig(n=5, min_scored=3, min_margin=1.0, settings=GenerationSettings(max_tokens=32))
    with RecordStore(records) as store:
        totals = await run_bestofn(PROMPTS, Policy(ANSWERS), VerifiableScorer("numeric", numeric_match), store, cfg)
    by_id = {r["id"]: r for r in read_stage_output(records)}
    assert {k: (r["status"], r.get("reason")) for k, r in by_id.items()} == {
        "p1": ("ok", None),
        "p2": ("failed", "sampling failed: server on fire"),
        "p3": ("filtered", "the prompt does not end with a user turn"),
        "p4": ("filtered", "only 0 of 5 responses were scored (need 3)"),
    }
    p1 = by_id["p1"]
    assert (p1["chosen"], p1["rejected"], p1["meta"]["margin"]) == ("It is 42.", "I think 40.", 10.0)
    assert [c["status"] for c in p1["candidates"]] == ["ok", "ok", "empty", "ok", "ok"]
    assert totals.policy.calls == 3 and totals.scoring.responses == 8
    assert write_pairs(records, pairs) == 1
    [pair] = list(read_records(pairs, "trl-pref")[0])
    assert isinstance(pair, PreferencePair) and pair.prompt == PROMPTS[0].messages
    assert pair.meta["scores"] == {"chosen": {"numeric": 10.0, "total": 10.0},
                                   "rejected": {"numeric": 0.0, "total": 0.0}}
    assert pair.meta["candidates"][2] == {"index": 2, "status": "empty", "total": None,
                                          "scores": {"numeric": None, "total": None}}


async def test_longreward_pairs_have_uniform_meta(tmp_path: Path) -> None:
    judge = ScriptedJudge({"helpfulness": lambda r: len(r) % 11, "logicality": 7})
    scorer = LongRewardScorer(Judge(FakeChatModel(judge.reply)), Retriever("bm25"))
    prompts = [Conversation(f"q{i}", [{"role": "user", "content": f"Question {i}?"}]) for i in range(3)]
    answers = ["A.", "A longer answer.", "An even longer answer here.", "Short."]
    records, pairs = tmp_path / "r.jsonl", tmp_path / "pairs.jsonl"
    with RecordStore(records) as store:
        await run_bestofn(prompts, Policy(answers), scorer, store, BestOfNConfig(n=4, min_scored=2))
    assert write_pairs(records, pairs) == 3
    metas = [p.meta for p in read_records(pairs, "trl-pref")[0]]
    shapes = {repr(_shape(m)) for m in metas}
    assert len(shapes) == 1  # same keys and JSON types in every row
    # helpfulness = len(answer) % 11: "Short." 6 (total (6 + 7) / 2 = 6.5) beats "A." 2 (total 4.5)
    assert metas[0]["scores"]["chosen"] == {"helpfulness": 6.0, "logicality": 7.0, "faithfulness": None,
                                            "completeness": None, "total": 6.5}
    assert (metas[0]["chosen_index"], metas[0]["rejected_index"], metas[0]["margin"]) == (3, 0, 2.0)


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "num" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
