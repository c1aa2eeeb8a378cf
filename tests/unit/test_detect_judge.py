"""The LLM judge (strict verdicts, failures recorded) and the resumable detect stage and command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.data.schema import Conversation
from turnwise.detect.judge import JudgeConfig, VerdictError, apply_verdict, judge_decisions, parse_verdict
from turnwise.detect.rules import TurnDecision, detect_messages
from turnwise.detect.stage import DetectConfig, run_detect
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel

pytest.importorskip("jieba")

MESSAGES = [
    {"role": "user", "content": "Tell me about the Nile."},
    {"role": "assistant", "content": "It is a river in Africa."},
    {"role": "user", "content": "How long is it?"},
    {"role": "assistant", "content": "6,650 km."},
    {"role": "user", "content": "Is Mont Blanc in France?"},
]


@pytest.mark.parametrize(("text", "verdict"), [
    ("The turn uses 'it'.\nVerdict: dependent", True),
    ("Fine alone.\n\nverdict: Standalone\n", False),
    ("**Verdict:** dependent", True),
])
def test_verdict_parses_from_the_last_line(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("text", [
    "",
    "dependent",
    "Verdict: dependent\nI think so.",  # not the last line
    "Verdict: standalone\nVerdict: dependent",  # two verdicts
    "Verdict: maybe",
    "Verdict: dependent or standalone",
])
def test_anything_else_is_a_verdict_error(text):
    with pytest.raises(VerdictError):
        parse_verdict(text)


def test_the_verdict_adds_its_weight_to_the_cue_score():
    decision = TurnDecision(2, True, 0.818, [], 1.5)
    overturned = apply_verdict(decision, False, 5.0, "Verdict: standalone")
    # 1.5 - 5.0 = -3.5 -> standalone with confidence 1 - 1/(1 + e^3.5) = 0.971
    assert (overturned.dependent, overturned.score, overturned.confidence) == (False, -3.5, 0.971)
    assert overturned.decided_by == "judge"
    assert overturned.evidence[-1]["agrees"] is False


async def test_judge_sees_history_and_turn_and_failures_keep_the_cue_decision():
    decisions = detect_messages(MESSAGES)  # turn 2 dependent ("it"), turn 4 standalone (a name)
    replies = {"How long is it?": "Verdict: dependent", "Is Mont Blanc in France?": "not sure"}

    def reply(conv):
        prompt = conv[-1]["content"]
        return next(v for k, v in replies.items() if f"[user] {k}" in prompt.split("latest message:")[1])

    judge = FakeChatModel(reply)
    outcome = await judge_decisions(MESSAGES, decisions, judge, JudgeConfig(judge_on="all"), "en")
    assert len(judge.seen) == 2
    assert "[assistant] It is a river in Africa." in judge.seen[0][0]["content"]
    first, second = outcome.decisions
    assert (first.dependent, first.decided_by) == (True, "judge")
    assert (second.dependent, second.decided_by) == (False, "cues")
    assert second.evidence[-1]["raw"] == "not sure"
    assert outcome.failures == [{"index": 4, "reason": second.evidence[-1]["error"], "raw": "not sure"}]


async def test_judge_on_dependent_asks_only_about_cue_positives():
    judge = FakeChatModel(lambda conv: "Verdict: standalone")
    outcome = await judge_decisions(MESSAGES, detect_messages(MESSAGES), judge, JudgeConfig(), "en")
    assert len(judge.seen) == 1
    assert [d.dependent for d in outcome.decisions] == [False, False]


async def test_stage_writes_one_record_per_conversation_and_resumes(tmp_path):
    convs = [Conversation("a", MESSAGES[:3]), Conversation("b", MESSAGES[:1]), Conversation("c", MESSAGES)]
    judge = FakeChatModel(lambda conv: None if "Mont Blanc" in conv[-1]["content"] else "Verdict: dependent")
    config = DetectConfig(judge=JudgeConfig(judge_on="all"))
    with RecordStore(tmp_path / "det.jsonl") as store:
        result = await run_detect(convs, store, config, judge)
    records = {r["id"]: r for r in read_stage_output(tmp_path / "det.jsonl")}
    assert (records["a"]["status"], [t["index"] for t in records["a"]["turns"]]) == ("ok", [2])
    assert (records["b"]["status"], records["b"]["reason"]) == ("filtered", "no user turn after the first")
    assert records["c"]["status"] == "failed" and "judge: call failed" in records["c"]["reason"]
    assert (result.turns, result.judged, result.judge_failures) == (3, 2, 1)
    with RecordStore(tmp_path / "det.jsonl", retry_failed=True) as store:
        again = await run_detect(convs, store, DetectConfig(), None)
    assert again.records == 1  # only the failed one, now with cues alone
    assert {r["id"]: r["status"] for r in read_stage_output(tmp_path / "det.jsonl")}["c"] == "ok"


async def test_an_input_records_own_cost_is_not_counted_as_detection_cost(tmp_path):
    """Simulated dialogues carry `meta.cost` as {user, assistant}; detection without a judge paid nothing."""
    simulated = {"user": {"calls": 3}, "assistant": {"calls": 4}}
    convs = [Conversation("s", MESSAGES, meta={"cost": simulated, "turns": 2})]
    with RecordStore(tmp_path / "det.jsonl") as store:
        result = await run_detect(convs, store, DetectConfig(), None)
    [record] = read_stage_output(tmp_path / "det.jsonl")
    assert record["meta"]["cost"]["calls"] == 0 and record["meta"]["turns"] == 2
    assert result.cost.calls == 0


def test_detect_command_without_a_model(tmp_path: Path, capsys):
    data = tmp_path / "dialogues.jsonl"
    data.write_text(json.dumps({"id": "x", "messages": MESSAGES}) + "\n" + json.dumps(
        {"id": "y", "messages": [{"role": "user", "content": "西安天气"}, {"role": "assistant", "content": "晴"},
                                 {"role": "user", "content": "明天呢"}]}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["detect", str(data), str(tmp_path / "out.jsonl")])
    assert exc.value.code in (0, None)
    records = {r["id"]: r for r in read_stage_output(tmp_path / "out.jsonl")}
    assert [t["dependent"] for t in records["x"]["turns"]] == [True, False]
    assert (records["y"]["lang"], records["y"]["turns"][0]["dependent"]) == ("zh", True)
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["turns"] == {"labelled": 3, "dependent": 2, "judged": 0, "judge_failures": 0}


def test_judge_templates_name_the_paper():
    root = Path(__file__).resolve().parents[2] / "src" / "turnwise" / "templates" / "detect"
    for lang in ("en", "zh"):
        head = (root / f"judge.{lang}.jinja").read_text(encoding="utf-8").splitlines()[:3]
        assert any("2310.07301" in line for line in head)
