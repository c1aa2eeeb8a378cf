"""The capo stage: one record per pair, near-duplicates and duplicates dropped and counted, mix, resume, export."""

from __future__ import annotations

import json

import pytest

from turnwise.capo.export import export_pairs
from turnwise.capo.stage import CapoConfig, run_capo
from turnwise.capo.strategies import PARROT, CapoModels
from turnwise.capo.tasks import PairTask, parse_mix, selected_strategies
from turnwise.data.formats import read_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.detect.rules import TurnDecision
from turnwise.errors import ConfigError
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel

pytest.importorskip("jieba")

NILE = [
    {"role": "user", "content": "Tell me about the Nile."},
    {"role": "assistant", "content": "The Nile is a river in Africa."},
    {"role": "user", "content": "How long is it?"},
    {"role": "assistant", "content": "It is 6,650 km long."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You're welcome."},
]
BOOK = [
    {"role": "user", "content": "Recommend a book about whales."},
    {"role": "assistant", "content": "Moby-Dick."},
    {"role": "user", "content": "Who wrote it?"},
    {"role": "assistant", "content": "Herman Melville."},
]


def describe(conv):
    """A reply that tells the contexts apart: how many messages were seen and the first of them."""
    return f"{len(conv)} messages, starting with {conv[0]['content']!r}"


async def run(tmp_path, convs, config=None, models=None, **kwargs):
    models = models or CapoModels(FakeChatModel(describe))
    with RecordStore(tmp_path / "pairs.records.jsonl") as store:
        result = await run_capo(convs, store, config or CapoConfig(), models, **kwargs)
    return result, {r["id"]: r for r in read_stage_output(tmp_path / "pairs.records.jsonl")}


async def test_three_pairs_per_dependent_turn_in_trl_layout(tmp_path):
    result, records = await run(tmp_path, [Conversation("nile", NILE), Conversation("book", BOOK)])
    assert sorted(records) == sorted(f"{d}:2:{s}" for d in ("nile", "book") for s in PARROT)  # "Thanks!" skipped
    pair = records["nile:2:neglect"]
    assert pair["status"] == "ok"
    assert pair["prompt"] == NILE[:3]
    assert pair["chosen"] == [{"role": "assistant", "content": "It is 6,650 km long."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "1 messages, starting with 'How long is it?'"}]
    meta = pair["meta"]
    assert (meta["strategy"], meta["source_id"], meta["turn_index"], meta["chosen_from"]) == (
        "neglect", "nile", 2, "dialogue")
    assert meta["detection"]["evidence"][0]["cue"] == "personal_pronoun"
    assert records["book:2:misunderstanding"]["meta"]["context"]["other_id"] == "nile"
    assert result.ok_by_strategy == dict.fromkeys(PARROT, 2)


async def test_rejected_equal_or_nearly_equal_to_chosen_is_dropped_and_counted(tmp_path):
    model = FakeChatModel(lambda conv: "It is 6,650 km long!" if len(conv) == 1 else "It is 6,650 km long, yes.")
    result, records = await run(tmp_path, [Conversation("nile", NILE), Conversation("book", BOOK)],
                                models=CapoModels(model), config=CapoConfig(mix={"neglect": 1, "misunderstanding": 1}))
    assert (records["nile:2:neglect"]["status"], records["nile:2:neglect"]["reason"]) == (
        "filtered", "rejected equals chosen")  # punctuation and case do not count
    near = records["nile:2:misunderstanding"]
    assert (near["status"], near["reason"]) == ("filtered", "rejected nearly equals chosen")
    assert near["meta"]["similarity"] >= 0.9 and near["raw"] == "It is 6,650 km long, yes."
    assert result.statuses == {"filtered": 2, "ok": 2}  # the book's answers are far from "Herman Melville."


async def test_two_strategies_writing_the_same_answer_keep_one(tmp_path):
    _, records = await run(tmp_path, [Conversation("nile", NILE), Conversation("book", BOOK)],
                           models=CapoModels(FakeChatModel()))  # echoes the turn, whatever the context
    statuses = {k: (r["status"], r.get("reason")) for k, r in records.items() if k.startswith("nile")}
    assert statuses == {"nile:2:neglect": ("ok", None),
                        "nile:2:hallucination": ("filtered", "duplicate of the neglect negative"),
                        "nile:2:misunderstanding": ("filtered", "duplicate of the neglect negative")}


async def test_a_turn_without_an_answer_needs_a_chosen_model(tmp_path):
    convs = [Conversation("open", NILE[:3]), Conversation("book", BOOK)]
    _, records = await run(tmp_path / "own", convs, config=CapoConfig(mix={"neglect": 1}))
    assert (records["open:2:neglect"]["status"], records["open:2:neglect"]["reason"]) == (
        "filtered", "no answer in the dialogue")
    chosen = FakeChatModel(lambda conv: "The Nile is about 6,650 km long.", model="strong")
    models = CapoModels(FakeChatModel(describe), chosen=chosen)
    _, records = await run(tmp_path / "model", convs, config=CapoConfig(mix={"neglect": 1}), models=models)
    assert chosen.seen[0] == NILE[:3]  # the full history
    assert records["open:2:neglect"]["chosen"][0]["content"] == "The Nile is about 6,650 km long."
    assert records["open:2:neglect"]["meta"]["chosen_from"] == "model:strong"


async def test_detections_decide_the_turns(tmp_path):
    detections = {"nile": [TurnDecision(4, True, 0.99, [{"cue": "judge"}])]}
    _, records = await run(tmp_path, [Conversation("nile", NILE), Conversation("book", BOOK)],
                           config=CapoConfig(mix={"neglect": 1}), detections=detections)
    assert list(records) == ["nile:4:neglect"]  # book has no detection record: no tasks


async def test_a_rerun_resumes_and_calls_nothing(tmp_path):
    convs = [Conversation("nile", NILE), Conversation("book", BOOK)]
    await run(tmp_path, convs)
    model = FakeChatModel(describe)
    result, records = await run(tmp_path, convs, models=CapoModels(model))
    assert (result.records, model.seen, len(records)) == (0, [], 6)


async def test_export_writes_unique_ok_pairs_that_the_trl_pref_reader_reads(tmp_path):
    convs = [Conversation("nile", NILE), Conversation("nile-copy", NILE), Conversation("book", BOOK)]
    await run(tmp_path, convs, config=CapoConfig(mix={"neglect": 1}))
    report = export_pairs(tmp_path / "pairs.records.jsonl", tmp_path / "pairs.jsonl")
    assert (report.written, report.duplicates) == (2, 1)  # the copy's pair repeats the original's
    items, _ = read_records(tmp_path / "pairs.jsonl", "trl-pref")
    pairs = list(items)
    assert all(isinstance(p, PreferencePair) for p in pairs)
    assert pairs[0].meta["strategy"] == "neglect"
    row = json.loads((tmp_path / "pairs.jsonl").read_text().splitlines()[0])
    assert set(row) == {"id", "prompt", "chosen", "rejected", "meta"}


def test_mix_ratios_select_strategies_in_proportion():
    assert parse_mix("neglect=2, hallucination=1", PARROT) == {"neglect": 2.0, "hallucination": 1.0,
                                                                   "misunderstanding": 0.0}
    mix = parse_mix("neglect=2,hallucination=1,misunderstanding=1", PARROT)
    decision = TurnDecision(2, True, 0.9)
    tasks = [PairTask(f"d{i}", 2, tuple(NILE[:3]), "x", decision, "en") for i in range(600)]
    counts = {s: sum(s in selected_strategies(t, mix, seed=0) for t in tasks) for s in PARROT}
    assert counts["neglect"] == 600
    assert 240 < counts["hallucination"] < 360 and 240 < counts["misunderstanding"] < 360
    assert selected_strategies(tasks[0], mix, 0) == selected_strategies(tasks[0], mix, 0)


@pytest.mark.parametrize("text", ["neglect=-1", "sarcasm=1", "neglect=x", "neglect=0"])
def test_bad_mixes_are_config_errors(text):
    with pytest.raises(ConfigError):
        parse_mix(text, PARROT)


def test_bad_modes_are_config_errors():
    with pytest.raises(ConfigError):
        CapoConfig(modes={"neglect": "shuffle"})


async def test_duplicate_dialogue_ids_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="duplicate conversation id 'nile'"):
        await run(tmp_path, [Conversation("nile", NILE), Conversation("nile", BOOK)])
