"""MultiChallenge: the 273 items read, the published responses scored by a scripted YES/NO judge end to end,
pass rates per axis with any-of-N and all-of-N pinned by hand, and bad input named by file, line and rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.errors import InputError
from turnwise.eval.benchmarks import load_benchmark
from turnwise.eval.judge import EvalJudgeConfig, grade_record
from turnwise.eval.multichallenge import load_multichallenge, read_responses, summarize
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.records import read_stage_output
from turnwise.testing.cli import exit_code as run
from turnwise.testing.fake import FakeChatModel

SCRIPTED = ["--judge-backend", "turnwise.eval.scripted:ScriptedEvalJudgeModel", "--judge-model", "scripted"]
AXES = {"INSTRUCTION_RETENTION": 69, "INFERENCE_MEMORY": 113, "RELIABLE_VERSION_EDITING": 41, "SELF_COHERENCE": 50}
ITEM = {"QUESTION_ID": "q1", "AXIS": "INFERENCE_MEMORY", "TARGET_QUESTION": "Does it avoid nuts?",
        "PASS_CRITERIA": "YES",
        "CONVERSATION": [{"role": "user", "content": "I am allergic to nuts."},
                         {"role": "assistant", "content": "Noted."},
                         {"role": "user", "content": "Suggest a dessert."}]}



def test_all_273_items_are_read_with_their_axes(shared_data: Path) -> None:
    items = load_benchmark(shared_data / "multichallenge" / "benchmark_questions.jsonl")
    assert len(items) == 273 and {i.benchmark for i in items} == {"multichallenge"}
    assert {axis: sum(i.category == axis for i in items) for axis in AXES} == AXES
    for item in items:
        assert item.history == "gold" and item.judged == [len(item.turns)]
        assert item.meta["pass_criteria"] in ("YES", "NO") and item.meta["target_question"]


def test_an_item_is_the_given_history_and_its_last_turn(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(ITEM) + "\n")
    [item] = load_multichallenge(path)
    assert item.turns == ["I am allergic to nuts.", "Suggest a dessert."] and item.gold == ["Noted.", None]
    assert item.prefix(2)[-1] == {"role": "user", "content": "Suggest a dessert."}


@pytest.mark.parametrize(("change", "rule"), [
    ({"PASS_CRITERIA": "MAYBE"}, "'PASS_CRITERIA' must be YES or NO"),
    ({"CONVERSATION": ITEM["CONVERSATION"][:2]}, "CONVERSATION must end with a user turn"),
    ({"TARGET_QUESTION": ""}, "'TARGET_QUESTION' must be a non-empty string"),
])
def test_a_malformed_item_is_named_by_file_line_and_rule(tmp_path: Path, change: dict, rule: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({**ITEM, "QUESTION_ID": "q0"}) + "\n" + json.dumps({**ITEM, **change}) + "\n")
    with pytest.raises(InputError) as err:
        load_multichallenge(path)
    assert str(err.value).startswith(f"{path}:2: {rule}")


def test_a_response_for_an_unknown_item_is_named(tmp_path: Path) -> None:
    questions, responses = tmp_path / "benchmark_questions.jsonl", tmp_path / "responses_m.jsonl"
    questions.write_text(json.dumps(ITEM) + "\n")
    responses.write_text(json.dumps({"QUESTION_ID": "q1", "RESPONSE": ["Sorbet."]}) + "\n"
                         + json.dumps({"QUESTION_ID": "zz", "RESPONSE": ["Pie."]}) + "\n")
    with pytest.raises(InputError, match=r"responses_m.jsonl:2: QUESTION_ID 'zz' is not in the benchmark"):
        read_responses(responses, load_multichallenge(questions))


def test_pass_rates_per_axis_with_any_and_all_of_n() -> None:
    """Axis X: item a passes 1 of 2 attempts, item b 2 of 2 -> 3/4 of attempts, any 2/2, all 1/2. Axis Y: item c
    fails its one judged attempt; its other attempt has no verdict and is not counted. Overall = mean of axes."""
    def record(item: str, k: int, axis: str, score: float | None) -> dict:
        return {"id": f"{item}#{k}", "category": axis, "meta": {"item": item, "attempt": k},
                "scores": [{"turn": 2, "score": score}]}
    summary = summarize([record("a", 1, "X", 1.0), record("a", 2, "X", 0.0), record("b", 1, "X", 1.0),
                         record("b", 2, "X", 1.0), record("c", 1, "Y", 0.0), record("c", 2, "Y", None)])
    x, y = summary["axes"]["X"], summary["axes"]["Y"]
    assert (x["attempts"]["rate"], x["any"]["rate"], x["all"]["rate"]) == (0.75, 1.0, 0.5)
    assert (y["attempts"]["rate"], y["any"]["rate"], y["all"]["rate"]) == (0.0, 0.0, 0.0)
    assert summary["overall"] == {"attempts": 0.375, "any": 0.5, "all": 0.25}
    assert summary["items_passing"]["any"] == {"rate": 2 / 3, "n": 3} and summary["attempts"] == 2


async def test_the_verdict_must_equal_the_criteria_and_an_unreadable_one_is_kept(tmp_path: Path) -> None:
    questions, responses = tmp_path / "benchmark_questions.jsonl", tmp_path / "responses_m.jsonl"
    questions.write_text(json.dumps(ITEM) + "\n" + json.dumps({**ITEM, "QUESTION_ID": "q2", "PASS_CRITERIA": "NO"})
                         + "\n")
    responses.write_text(json.dumps({"QUESTION_ID": "q1", "RESPONSE": ["Sorbet.", "Walnut cake."]}) + "\n"
                         + json.dumps({"QUESTION_ID": "q2", "RESPONSE": "Sorbet."}) + "\n")
    answers = read_responses(responses, load_multichallenge(questions))
    assert [a["id"] for a in answers] == ["q1#1", "q1#2", "q2#1"]

    def reply(messages: list) -> str:
        prompt = messages[-1]["content"]
        assert "Does it avoid nuts?" in prompt and "Suggest a dessert." not in prompt  # the response alone
        return "It has nuts, I think" if "Walnut" in prompt else "No nuts.\n[[YES]]"

    judge = Judge(FakeChatModel(reply), RetryPolicy(attempts=2))
    graded = [await grade_record(a, judge, EvalJudgeConfig()) for a in answers]
    assert [(g["scores"][0]["score"], g["status"]) for g in graded] == [(1.0, "ok"), (None, "failed"), (0.0, "ok")]
    failed = graded[1]["scores"][0]
    assert failed["failure"] == "judge" and "no [[verdict]]" in failed["reason"] and failed["attempts"] == 2
    assert graded[2]["scores"][0]["verdict"] == "YES" and graded[2]["meta"]["item"] == "q2"


@pytest.mark.parametrize("model", ["gpt-4o-2024-08-06_responses", "llama-3-2-3b-instruct", "qwen2-5_14b"])
def test_the_published_responses_are_scored_end_to_end(shared_data: Path, tmp_path: Path, model: str,
                                                         capsys) -> None:
    source = shared_data / "multichallenge" / f"responses_{model}.jsonl"
    assert run("eval", "judge", str(source), str(tmp_path / "j.jsonl"), *SCRIPTED) == 0
    judged = read_stage_output(tmp_path / "j.jsonl")  # not splitlines(): responses hold U+2028
    assert len(judged) == 273 and all(r["status"] == "ok" for r in judged)
    assert run("eval", "report", str(tmp_path / "j.jsonl"), "--out", str(tmp_path / "report")) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    [summary] = report["single"]
    counted = {axis: row["any"]["n"] for axis, row in summary["multichallenge"]["axes"].items()}
    assert counted == AXES and summary["multichallenge"]["judged_items"] == 273
    assert "| **overall (mean of axes)** | 273 |" in (tmp_path / "report" / "report.md").read_text()


def test_an_openai_compatible_judge_is_the_same_command(shared_data: Path, tmp_path: Path) -> None:
    """The scripted judge behind the scripted OpenAI-compatible server, reached with --judge-base-url: the same
    verdicts as in-process, every item judged over HTTP."""
    from turnwise.eval.scripted import ScriptedEvalJudge
    from turnwise.testing.scripted_runner import serve_in_thread
    from turnwise.testing.scripted_server import ServerConfig

    source = shared_data / "multichallenge" / "responses_llama-3-2-3b-instruct.jsonl"
    assert run("eval", "judge", str(source), str(tmp_path / "here.jsonl"), *SCRIPTED) == 0
    config = ServerConfig(latency_ms=1, jitter_ms=1, script=ScriptedEvalJudge().server_script)
    with serve_in_thread(config) as server:
        assert run("eval", "judge", str(source), str(tmp_path / "http.jsonl"), "--judge-model", "scripted",
                   "--judge-base-url", server.base_url, "--no-cache") == 0
        served = server.stats()["served"]
    here, http = read_stage_output(tmp_path / "here.jsonl"), read_stage_output(tmp_path / "http.jsonl")
    assert served == len(http) == 273 and {r["status"] for r in http} == {"ok"}
    verdicts = {r["id"]: r["scores"][0]["score"] for r in here}
    assert {r["id"]: r["scores"][0]["score"] for r in http} == verdicts


def test_responses_without_their_questions_are_one_error_line(tmp_path: Path, capsys) -> None:
    responses = tmp_path / "responses_m.jsonl"
    responses.write_text(json.dumps({"QUESTION_ID": "q1", "RESPONSE": ["Sorbet."]}) + "\n")
    assert run("eval", "judge", str(responses), str(tmp_path / "j.jsonl"), *SCRIPTED) == 2
    assert "need the benchmark's questions" in capsys.readouterr().err
