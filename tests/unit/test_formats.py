"""Every format read and written with small hand-written records and literal expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.data.formats import FORMATS, convert_file, detect_format, read_records, write_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.errors import ConfigError, InputError, SchemaError

SYS = {"role": "system", "content": "Be brief."}
U1 = {"role": "user", "content": "Name a prime."}
A1 = {"role": "assistant", "content": "7"}
U2 = {"role": "user", "content": "A bigger one?"}
A2 = {"role": "assistant", "content": "11"}


def read(fmt: str, record: dict) -> Conversation | PreferencePair:
    return FORMATS[fmt].read(record, "file-1")


def write(fmt: str, item: Conversation | PreferencePair) -> dict:
    return FORMATS[fmt].write(item)


def jsonl(tmp_path: Path, name: str, *records: dict | str) -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------- openai, trl-sft


def test_openai_read_joins_text_parts_and_keeps_extra_keys_in_meta():
    record = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Name "}, {"type": "text", "text": "a prime."}]},
            {"role": "assistant", "content": "7", "name": "bot"},
        ],
        "id": 12,
        "source": "hand",
        "meta": {"model": "m"},
        "followups": ["A bigger one?"],
    }
    assert read("openai", record) == Conversation("12", [U1, A1], ["A bigger one?"], {"source": "hand", "model": "m"})


def test_openai_read_uses_the_default_id_and_rejects_images():
    assert read("openai", {"messages": [U1]}) == Conversation("file-1", [U1])
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    with pytest.raises(SchemaError, match="message 0 has a content part of type 'image_url'; only text parts"):
        read("openai", image)


def test_openai_write_leaves_out_empty_followups_and_meta():
    assert write("openai", Conversation("c", [SYS, U1, A1])) == {"id": "c", "messages": [SYS, U1, A1]}
    conv = Conversation("c", [U1], ["More?"], {"k": 1})
    assert write("openai", conv) == {"id": "c", "messages": [U1], "followups": ["More?"], "meta": {"k": 1}}
    assert read("openai", write("openai", conv)) == conv


def test_trl_sft_always_writes_meta_and_needs_a_finished_conversation():
    assert write("trl-sft", Conversation("c", [U1, A1])) == {"id": "c", "messages": [U1, A1], "meta": {}}
    with pytest.raises(SchemaError, match="ends with a user turn, not an answer"):
        write("trl-sft", Conversation("c", [U1, A1, U2]))
    with pytest.raises(SchemaError, match="has 1 follow-up turns still to be asked"):
        write("trl-sft", Conversation("c", [U1, A1], ["Why?"]))
    assert read("trl-sft", {"id": "c", "messages": [U1, A1], "meta": {}}) == Conversation("c", [U1, A1])


# ----------------------------------------------------------------------------------- sharegpt


def test_sharegpt_read_maps_from_case_insensitively_and_takes_the_system_key():
    record = {"id": "s1", "system": "Be brief.", "conversations": [
        {"from": "Human", "value": "Name a prime."}, {"from": "GPT", "value": "7"},
        {"from": "user", "value": "A bigger one?"}, {"from": "chatgpt", "value": "11"}]}
    assert read("sharegpt", record) == Conversation("s1", [SYS, U1, A1, U2, A2])
    assert read("sharegpt", {"system": "", "conversations": [{"from": "human", "value": "hi"}]}).messages == [
        {"role": "user", "content": "hi"}]


def test_sharegpt_write_uses_human_gpt_system():
    assert write("sharegpt", Conversation("s1", [SYS, U1, A1], meta={"lang": "en"})) == {
        "id": "s1",
        "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Name a prime."},
                          {"from": "gpt", "value": "7"}],
        "meta": {"lang": "en"},
    }


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        ({"conversations": [{"from": "tool", "value": "x"}]}, "conversations[0] has unknown 'from' value 'tool'"),
        ({"conversations": [{"from": "human"}]}, "conversations[0] has no 'value'"),
        ({"conversations": "hi"}, "'conversations' must be an array, got a string"),
        ({"system": "S", "conversations": [{"from": "system", "value": "T"}, {"from": "human", "value": "x"}]},
         "the system prompt is given twice"),
    ],
)
def test_sharegpt_errors(record, rule):
    with pytest.raises(SchemaError, match=rule.replace("[", r"\[").replace("]", r"\]")):
        read("sharegpt", record)


# ----------------------------------------------------------------------------------- alpaca


def test_alpaca_read_joins_instruction_and_input_after_the_history():
    record = {"instruction": "A bigger one?", "input": "Under 20.", "output": "11", "system": "Be brief.",
              "history": [["Name a prime.", "7"]]}
    expected = [SYS, U1, A1, {"role": "user", "content": "A bigger one?\n\nUnder 20."}, A2]
    assert read("alpaca", record) == Conversation("file-1", expected)
    assert read("alpaca", {"instruction": "Name a prime.", "input": "", "output": "7"}).messages == [U1, A1]


def test_alpaca_write_puts_earlier_pairs_in_history():
    assert write("alpaca", Conversation("a1", [SYS, U1, A1, U2, A2])) == {
        "id": "a1", "instruction": "A bigger one?", "input": "", "output": "11", "system": "Be brief.",
        "history": [["Name a prime.", "7"]],
    }
    assert write("alpaca", Conversation("a2", [U1, A1])) == {"id": "a2", "instruction": "Name a prime.",
                                                             "input": "", "output": "7"}


def test_alpaca_errors():
    with pytest.raises(SchemaError, match="ends with a user turn"):
        write("alpaca", Conversation("a", [U1]))
    with pytest.raises(SchemaError, match="missing key 'output'"):
        read("alpaca", {"instruction": "x"})
    with pytest.raises(SchemaError, match=r"history\[0\] must be a \[user, assistant\] pair"):
        read("alpaca", {"instruction": "x", "output": "y", "history": [["only one"]]})


# ----------------------------------------------------------------------------------- mt-bench

MT_BENCH = {"question_id": 81, "category": "writing", "turns": ["Name a prime.", "A bigger one?"],
            "reference": ["7", "11"]}


def test_mt_bench_read_keeps_the_second_turn_as_a_followup():
    assert read("mt-bench", MT_BENCH) == Conversation(
        "81", [U1], ["A bigger one?"], {"question_id": 81, "category": "writing", "reference": ["7", "11"]})


def test_mt_bench_write_is_the_reverse():
    assert write("mt-bench", read("mt-bench", MT_BENCH)) == MT_BENCH
    assert write("mt-bench", Conversation("7", [SYS, U1], ["A bigger one?"])) == {
        "question_id": 7, "turns": ["Name a prime.", "A bigger one?"], "system": "Be brief."}


def test_mt_bench_cannot_hold_answers():
    with pytest.raises(SchemaError, match="has assistant answers and mt-bench holds questions only"):
        write("mt-bench", Conversation("7", [U1, A1]))
    with pytest.raises(SchemaError, match=r"turns\[1\] must be a string, got a number"):
        read("mt-bench", {"question_id": 1, "turns": ["a", 2]})


# ----------------------------------------------------------------------------------- mt-bench-101

MT101 = {"task": "GR", "id": 1, "history": [{"user": "Name a prime.", "bot": "7"},
                                             {"user": "A bigger one?", "bot": "11"}]}


def test_mt_bench_101_id_is_task_and_id():
    assert read("mt-bench-101", MT101) == Conversation("GR-1", [U1, A1, U2, A2], meta={"task": "GR", "id": 1})
    assert write("mt-bench-101", read("mt-bench-101", MT101)) == MT101


def test_mt_bench_101_write_from_another_source_and_unanswered_last_turn():
    assert write("mt-bench-101", Conversation("c9", [U1, A1, U2])) == {
        "id": "c9", "history": [{"user": "Name a prime.", "bot": "7"}, {"user": "A bigger one?"}]}
    record = {"task": "CM", "id": 3, "history": [{"user": "Name a prime.", "bot": "7"}, {"user": "A bigger one?"},
                                                  {"user": "And smaller?"}]}
    assert read("mt-bench-101", record) == Conversation("CM-3", [U1, A1, U2], ["And smaller?"],
                                                        {"task": "CM", "id": 3})


def test_mt_bench_101_answers_may_only_be_missing_at_the_end():
    record = {"task": "CM", "id": 3, "history": [{"user": "a"}, {"user": "b", "bot": "c"}]}
    with pytest.raises(SchemaError, match="turn 0 has no answer but turn 1 has one"):
        read("mt-bench-101", record)
    with pytest.raises(SchemaError, match=r"history\[0\].bot must be a string, got a number"):
        read("mt-bench-101", {"task": "CM", "id": 3, "history": [{"user": "a", "bot": 5}]})


# ----------------------------------------------------------------------------------- mt-eval

MT_EVAL = {"question_id": 81, "category": "writing", "conversation": [
    {"user": "Name a prime.", "sys": "7", "id": "81_0"}, {"user": "A bigger one?", "sys": "11", "id": "81_1"}]}


def test_mt_eval_keeps_top_level_and_per_turn_keys():
    conv = read("mt-eval", MT_EVAL)
    assert conv == Conversation("81", [U1, A1, U2, A2], meta={
        "question_id": 81, "category": "writing", "turn_fields": [{"id": "81_0"}, {"id": "81_1"}]})
    assert write("mt-eval", conv) == MT_EVAL


def test_mt_eval_write_from_another_source():
    assert write("mt-eval", Conversation("c1", [U1, A1])) == {
        "id": "c1", "conversation": [{"user": "Name a prime.", "sys": "7"}]}
    with pytest.raises(SchemaError, match=r"conversation\[0\] has no 'user'"):
        read("mt-eval", {"conversation": [{"sys": "7"}]})


# ----------------------------------------------------------------------------------- trl-pref

PAIR = PreferencePair("p1", [U1, A1, U2], "11", "4", {"strategy": "neglect"})
PAIR_ROW = {"id": "p1", "prompt": [U1, A1, U2], "chosen": [A2], "rejected": [{"role": "assistant", "content": "4"}],
            "meta": {"strategy": "neglect"}}


def test_trl_pref_explicit_prompt_round_trip():
    assert write("trl-pref", PAIR) == PAIR_ROW
    assert read("trl-pref", PAIR_ROW) == PAIR


def test_trl_pref_implicit_prompt_is_the_shared_prefix():
    row = {"id": "p1", "chosen": [U1, A1, U2, A2], "rejected": [U1, A1, U2, {"role": "assistant", "content": "4"}],
           "strategy": "neglect"}
    assert read("trl-pref", row) == PAIR


def test_trl_pref_plain_strings():
    row = {"prompt": "Name a prime.", "chosen": "7", "rejected": "8"}
    assert read("trl-pref", row) == PreferencePair("file-1", [U1], "7", "8")
    with pytest.raises(SchemaError, match="plain strings without a 'prompt'"):
        read("trl-pref", {"chosen": "7", "rejected": "8"})
    with pytest.raises(SchemaError, match="'chosen' must hold exactly one assistant message"):
        read("trl-pref", {"prompt": [U1], "chosen": [A1, U2], "rejected": [A1]})


def test_a_pair_written_as_a_conversation_is_prompt_plus_chosen_and_the_reverse_is_refused():
    assert write("openai", PAIR) == {"id": "p1", "messages": [U1, A1, U2, A2], "meta": {"strategy": "neglect"}}
    with pytest.raises(SchemaError, match="a conversation has no rejected answer"):
        write("trl-pref", Conversation("c", [U1, A1]))


# ----------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"messages": []}, "openai"),
        ({"conversations": [], "id": 1}, "sharegpt"),
        ({"instruction": "", "input": "", "output": "", "history": []}, "alpaca"),
        (MT_BENCH, "mt-bench"),
        (MT101, "mt-bench-101"),
        (MT_EVAL, "mt-eval"),
        (PAIR_ROW, "trl-pref"),
        ({"chosen": [], "rejected": []}, "trl-pref"),
    ],
)
def test_detect_format(record, fmt):
    assert detect_format(record) == fmt


def test_detect_format_refuses_to_guess():
    with pytest.raises(SchemaError, match=r"the keys fit several formats \(openai, trl-pref\); name it with --from"):
        detect_format({"messages": [], "chosen": [], "rejected": []})
    with pytest.raises(SchemaError, match=r"cannot tell the format from the keys \['text'\]; name it with --from"):
        detect_format({"text": "hi"})


# ----------------------------------------------------------------------------------- files


def test_read_records_detects_the_format_and_streams(tmp_path):
    path = jsonl(tmp_path, "q.jsonl", MT_BENCH, {**MT_BENCH, "question_id": 82})
    items, report = read_records(path)
    assert [c.id for c in items] == ["81", "82"]
    assert (report.fmt, report.read, report.total) == ("mt-bench", 2, 0)


def test_read_records_raises_at_the_first_invalid_record(tmp_path):
    path = jsonl(tmp_path, "q.jsonl", MT_BENCH, {"question_id": 82, "category": "x"})
    items, _ = read_records(path)
    with pytest.raises(InputError) as exc:
        list(items)
    assert str(exc.value) == f"{path}:2: missing key 'turns' (mt-bench)"


def test_skip_invalid_keeps_the_valid_records_and_counts_by_rule(tmp_path):
    bad_u = {"messages": [U1, U1]}
    empty = {"messages": [{"role": "user", "content": " "}]}
    good, last = {"messages": [U1, A1]}, {"id": "z", "messages": [U2]}
    path = jsonl(tmp_path, "c.jsonl", good, bad_u, "{oops", empty, bad_u, last)
    items, report = read_records(path, "openai", skip_invalid=True)
    assert [c.id for c in items] == ["c-1", "z"]
    assert report.to_dict() == {"path": str(path), "format": "openai", "read": 6, "skipped": 4, "rules": {
        "messages N and N are two user turns in a row (openai)": {"count": 2, "lines": [2, 5]},
        "bad JSON: Expecting property name enclosed in double quotes (column N)": {"count": 1, "lines": [3]},
        "message N (user) has empty content (openai)": {"count": 1, "lines": [4]},
    }}
    assert report.summary() == (
        "read 6, skipped 4: 2 × messages N and N are two user turns in a row (openai) at lines 2, 5; "
        "1 × bad JSON: Expecting property name enclosed in double quotes (column N) at line 3; "
        "1 × message N (user) has empty content (openai) at line 4")


def test_unknown_format_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown format 'chatml' \\(expected one of openai, sharegpt"):
        read_records(tmp_path / "x.jsonl", "chatml")


def test_write_records_names_the_record_that_cannot_be_written(tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError) as exc:
        write_records(out, [Conversation("ok", [U1, A1]), Conversation("open", [U1])], "alpaca")
    assert str(exc.value) == (f"{out}: record 'open' cannot be written as alpaca: "
                              "the conversation ends with a user turn, not an answer")
    assert not out.exists()


def test_convert_file_reports_unwritable_records_with_the_input_line(tmp_path):
    src = jsonl(tmp_path, "in.jsonl", {"messages": [U1, A1]}, {"messages": [U1]})
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"in.jsonl:2: cannot be written as trl-sft: the conversation ends with"):
        convert_file(src, out, "trl-sft")
    assert not out.exists()
    report = convert_file(src, out, "trl-sft", skip_invalid=True)
    assert (report.read, report.written, report.total) == (2, 1, 1)
    assert out.read_text() == json.dumps({"id": "in-1", "messages": [U1, A1], "meta": {}}) + "\n"


def test_convert_pairs_to_sharegpt(tmp_path):
    src = jsonl(tmp_path, "pairs.jsonl", PAIR_ROW)
    out = tmp_path / "out.jsonl"
    convert_file(src, out, "sharegpt")
    assert json.loads(out.read_text()) == {"id": "p1", "conversations": [
        {"from": "human", "value": "Name a prime."}, {"from": "gpt", "value": "7"},
        {"from": "human", "value": "A bigger one?"}, {"from": "gpt", "value": "11"}], "meta": {"strategy": "neglect"}}


@pytest.mark.parametrize(("fmt", "record"), [("mt-bench", MT_BENCH), ("mt-bench-101", MT101), ("mt-eval", MT_EVAL),
                                             ("trl-pref", PAIR_ROW)])
@pytest.mark.parametrize("via", ["openai", "sharegpt"])
def test_round_trip_through_another_format_is_exact(tmp_path, fmt, record, via):
    src = jsonl(tmp_path, "in.jsonl", record)
    convert_file(src, tmp_path / "via.jsonl", via)
    convert_file(tmp_path / "via.jsonl", tmp_path / "back.jsonl", fmt if fmt != "trl-pref" else "openai")
    back = json.loads((tmp_path / "back.jsonl").read_text())
    assert back == (record if fmt != "trl-pref" else write("openai", PAIR))


def test_datasets_reads_trl_outputs(tmp_path):
    datasets = pytest.importorskip("datasets")
    sft, pref = tmp_path / "sft.jsonl", tmp_path / "pref.jsonl"
    write_records(sft, [Conversation("a", [U1, A1]), Conversation("b", [SYS, U1, A1, U2, A2], meta={"k": [1]})],
                  "trl-sft")
    write_records(pref, [PAIR, PreferencePair("p2", [U1], "7", "8")], "trl-pref")
    rows = datasets.load_dataset("json", data_files=str(sft), split="train", cache_dir=str(tmp_path / "cache"))
    assert rows["id"] == ["a", "b"] and rows[1]["messages"] == [SYS, U1, A1, U2, A2]
    rows = datasets.load_dataset("json", data_files=str(pref), split="train", cache_dir=str(tmp_path / "cache"))
    assert rows.column_names == ["id", "prompt", "chosen", "rejected", "meta"]
    assert rows[1]["prompt"] == [U1] and rows[1]["rejected"] == [{"role": "assistant", "content": "8"}]
