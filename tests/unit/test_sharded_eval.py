"""Sharded evaluation: the splitter (coverage, the question last, numbers kept), the checker, the paper's aptitude
and unreliability pinned by hand, and the command end to end with a scripted model (resumable)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from turnwise.errors import InputError
from turnwise.eval.sharded import (
    extract_answer,
    is_correct,
    numbers,
    percentile,
    read_gsm8k,
    split_math,
    split_sentences,
    summarize,
    user_turns,
)
from turnwise.records import read_stage_output
from turnwise.testing.cli import exit_code as run

SCRIPTED = ["--backend", "turnwise.eval.scripted:ScriptedEvalJudgeModel", "--model", "scripted"]



def test_a_word_problem_is_split_into_its_facts_then_its_question() -> None:
    text = "Mr. Lee has 3.5 kg of rice. How much is left after he uses 1,200 g? He cooks twice a day."
    assert split_sentences(text) == ["Mr. Lee has 3.5 kg of rice.", "How much is left after he uses 1,200 g?",
                                     "He cooks twice a day."]
    assert split_math(text) == ["Mr. Lee has 3.5 kg of rice.", "He cooks twice a day.",
                                "How much is left after he uses 1,200 g?"]
    assert split_math("Compute 2 + 2.") == ["Compute 2 + 2."]


def test_every_gsm8k_problem_keeps_its_text_and_numbers_with_the_question_last(shared_data: Path) -> None:
    tasks = read_gsm8k(shared_data / "gsm8k" / "test.jsonl")
    assert len(tasks) == 1319
    for task in tasks:
        joined = "".join(task.shards)
        assert Counter("".join(joined.split())) == Counter("".join(task.instruction.split())), task.id
        assert Counter(n for shard in task.shards for n in numbers(shard)) == Counter(numbers(task.instruction)), \
            task.id
        asks = [s for s in task.shards if "?" in s]
        assert not asks or task.shards[-1] == asks[-1], task.id
    assert tasks[0].reference == "18" and sum(len(t.shards) > 1 for t in tasks) > 1250


def test_the_three_settings_say_the_same_thing_in_one_turn_or_several() -> None:
    [task] = read_gsm8k_lines([{"question": "A has 2. B has 3. How many in all?", "answer": "2+3=5\n#### 5"}])
    assert user_turns(task, "full") == ["A has 2. B has 3. How many in all?"]
    assert user_turns(task, "concat") == ["- A has 2.\n- B has 3.\n- How many in all?"]
    assert user_turns(task, "sharded") == ["A has 2.", "B has 3.", "How many in all?"]


def read_gsm8k_lines(rows: list[dict], tmp: Path | None = None) -> list:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return read_gsm8k(path)


def test_a_line_without_its_checkable_answer_is_named(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"question": "Q?", "answer": "#### 1"}) + "\n" + json.dumps({"question": "Q?",
                                                                                          "answer": "5"}) + "\n")
    with pytest.raises(InputError, match=r"test.jsonl:2: 'answer' must be a string ending with '#### <number>'"):
        read_gsm8k(path)


@pytest.mark.parametrize(("reply", "found"), [("So she makes $18 a day.", "18"),
                                              ("The answer is 1,200. Done in 2 steps", "1200"),
                                              ("16 - 3 = 13\n#### 13", "13"), ("I cannot tell.", None)])
def test_the_final_number_is_the_answer(reply: str, found: str | None) -> None:
    assert extract_answer(reply) == found


def test_the_checker_compares_numbers() -> None:
    assert is_correct("18.0", "18") and is_correct("1200", "1200") and not is_correct("17", "18")
    assert not is_correct(None, "18")


def test_aptitude_and_unreliability_by_hand() -> None:
    """Task a scores [1, 0]: P90 = 0 + 0.9 * 1 = 0.9, P10 = 0.1, unreliability 0.8, accuracy 0.5. Task b scores
    [1, 1]: 1, 1, 0, 1. Means over the two tasks: accuracy 0.75, aptitude 0.95, unreliability 0.4."""
    assert percentile([0, 0, 1], 90) == pytest.approx(0.8) and percentile([0, 0, 1], 10) == 0
    def record(task: str, sample: int, score: float, correct: list[bool]) -> dict:
        return {"task": task, "setting": "sharded", "sample": sample, "score": score, "correct": correct}
    summary = summarize([record("a", 0, 1.0, [False, True]), record("a", 1, 0.0, [False, False]),
                         record("b", 0, 1.0, [True, True]), record("b", 1, 1.0, [False, True])])
    row = summary["settings"]["sharded"]
    assert row["accuracy"]["mean"] == pytest.approx(0.75) and row["aptitude"]["mean"] == pytest.approx(0.95)
    assert row["unreliability"]["mean"] == pytest.approx(0.4)
    assert summary["sharded_accuracy_by_turn"] == {1: 0.25, 2: 0.75}
    assert summary["sharded_runs_by_turn"] == {1: 4, 2: 4}


def test_the_command_runs_every_setting_and_resumes(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharded.jsonl"
    args = ["eval", "sharded", str(shared_data / "gsm8k" / "test.jsonl"), str(out), *SCRIPTED, "--limit", "4",
            "--samples", "2"]
    assert run(*args) == 0
    records = read_stage_output(out)
    assert len(records) == 4 * 3 * 2 and {r["setting"] for r in records} == {"full", "concat", "sharded"}
    sharded = [r for r in records if r["setting"] == "sharded"]
    assert all(len(r["answers"]) == len(r["turns"]) > 1 for r in sharded)
    report = (tmp_path / "sharded.sharded.md").read_text()
    assert "| full | 4 | 2 |" in report and "unreliability" in report
    assert run(*args) == 0 and len(read_stage_output(out)) == 24  # nothing asked twice
    assert run("eval", "report", str(out), "--out", str(tmp_path / "report")) == 0  # beside judged benchmarks
    summary = json.loads((tmp_path / "report" / "report.json").read_text())["sharded"]
    assert [s["model"] for s in summary] == ["scripted"] and summary[0]["settings"]["full"]["samples"] == 2
    assert "### sharded evaluation: scripted" in (tmp_path / "report" / "report.md").read_text()
    assert '<svg id="turns-sharded"' in (tmp_path / "report" / "report.html").read_text()
    assert run("eval", "sharded", str(shared_data / "gsm8k" / "test.jsonl"), str(out), *SCRIPTED,
               "--settings", "full,everything") == 2


async def test_a_simulator_says_the_shards_in_its_words_and_one_that_drops_a_number_is_said_verbatim() -> None:
    from turnwise.eval.sharded import ShardedConfig, ShardedTask, run_one
    from turnwise.testing.fake import FakeChatModel

    task = ShardedTask("t", "Ann has 3 cats. Bob has 4 dogs. How many pets in all?",
                       ("Ann has 3 cats.", "Bob has 4 dogs.", "How many pets in all?"), "7")

    def simulate(messages: list) -> str:
        piece = messages[-1]["content"].split("Piece of information: ")[1].split("\n")[0]
        return {"Ann has 3 cats.": "So, Ann owns 3 cats.", "Bob has 4 dogs.": "Bob has some dogs.",
                "How many pets in all?": "How many pets are there altogether?"}[piece]

    assistant = FakeChatModel(lambda messages: f"So far I count {len(messages) // 2 * 3 + 1}.")
    record = await run_one(task, "sharded", 0, assistant, ShardedConfig().generation, "fake", FakeChatModel(simulate))
    assert record["turns"] == ["So, Ann owns 3 cats.", "Bob has 4 dogs.", "How many pets are there altogether?"]
    assert record["verbatim_fallbacks"] == 1 and record["meta"]["simulator_cost"]["calls"] == 3
    assert record["extracted"] == ["1", "4", "7"] and record["score"] == 1.0


async def test_an_llm_split_is_kept_only_when_verified() -> None:
    """Task a: a good split the sharder solves again -> kept. Task b: a split that drops "4" -> the rule's. Task c:
    a split whose concatenation the sharder gets wrong -> the rule's. Task d: no '- ' lines -> the rule's."""
    from turnwise.eval.sharded import ShardedTask, shard_with_model, split_math
    from turnwise.models.base import GenerationSettings
    from turnwise.testing.fake import FakeChatModel

    texts = {"a": "Ann has 3 cats and Bob has 4 dogs. How many pets in all?",
             "b": "Cy has 3 cats and Di has 4 dogs. How many pets in all?",
             "c": "Ed has 3 cats and Fa has 4 dogs. How many pets in all?",
             "d": "Gu has 3 cats and Ho has 4 dogs. How many pets in all?"}
    tasks = [ShardedTask(k, t, tuple(split_math(t)), "7") for k, t in texts.items()]
    splits = {"Ann": "- Ann has 3 cats.\n- Bob has 4 dogs.\n- How many pets in all?",
              "Cy": "- Cy has 3 cats.\n- Di has dogs.\n- How many pets in all?",
              "Ed": "- Ed has 3 cats.\n- Fa has 4 dogs.\n- How many pets in all?", "Gu": "Gu has 3 cats."}

    def sharder(messages: list) -> str:
        text = messages[-1]["content"]
        if text.startswith("Split the problem"):
            return splits[text.split("Problem: ")[1].split()[0]]
        return "The answer is 6." if text.startswith("Ed") else "The answer is 7."

    out, counts, cost = await shard_with_model(tasks, FakeChatModel(sharder), GenerationSettings(temperature=0))
    assert out[0].shards == ("Ann has 3 cats.", "Bob has 4 dogs.", "How many pets in all?")
    assert [t.shards for t in out[1:]] == [t.shards for t in tasks[1:]]
    assert counts == {"kept": 1, "by rule instead": {"a number lost": 1, "the shards no longer give the answer": 1,
                                                     "unparsable": 1}}
    assert cost.calls == 4 + 2
