"""`turnwise detect` + `turnwise capo` on simulated dialogues with a tiny local model: pairs of all three
strategies that `datasets`, turnwise's trl-pref reader and `turnwise train dpo` take as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.data.formats import read_records
from turnwise.data.formats_chat import read_sharegpt
from turnwise.data.schema import PreferencePair
from turnwise.quickstart.world import toy_dialogues
from turnwise.records import make_record, read_stage_output

pytest.importorskip("torch")
pytest.importorskip("jieba")
pytestmark = pytest.mark.integration


def simulated_dialogues(path: Path, n: int = 3) -> Path:
    """Dialogues in the layout `turnwise simulate` writes (records with a status), one of them filtered."""
    lines = []
    for i, raw in enumerate(toy_dialogues(n + 1)):
        conv = read_sharegpt(raw, raw["id"])
        status, reason = ("ok", None) if i < n else ("filtered", "2 turns < min_turns 3")
        lines.append(json.dumps(make_record(conv.id, status, {"messages": conv.messages}, reason=reason,
                                            meta={"lang": "en", "finished_by": "turns"})))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: object) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, tiny_model_dir) -> Path:
    tmp = tmp_path_factory.mktemp("capo")
    data = simulated_dialogues(tmp / "dialogues.jsonl")
    cli("detect", data, tmp / "detections.jsonl")
    cli("capo", data, tmp / "pairs.jsonl", "--model", tiny_model_dir, "--detections", tmp / "detections.jsonl",
        "--max-tokens", 12, "--cache", tmp / "cache.sqlite")
    return tmp / "pairs.jsonl"


def test_pairs_of_all_three_strategies(pairs):
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert {row["meta"]["strategy"] for row in rows} == {"neglect", "hallucination", "misunderstanding"}
    assert {row["meta"]["source_id"] for row in rows} == {"toy-000", "toy-001", "toy-002"}  # toy-003 was filtered
    for row in rows:
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
    records = read_stage_output(pairs.with_name("pairs.records.jsonl"))
    assert sum(r["status"] == "ok" for r in records) >= len(rows)
    manifest = json.loads(pairs.with_name("pairs.manifest.json").read_text())
    assert manifest["pairs"]["written"] == len(rows) and manifest["counts"]["input_not_ok"] == 1


def test_read_as_preference_pairs_by_turnwise_and_datasets(pairs):
    items, report = read_records(pairs)
    read = list(items)  # the report fills in as the items are read
    assert report.fmt == "trl-pref" and read and all(isinstance(p, PreferencePair) for p in read)
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files=str(pairs), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)


def test_a_rerun_is_free(pairs, tiny_model_dir, capsys):
    data = pairs.with_name("dialogues.jsonl")
    before = pairs.read_text(encoding="utf-8")
    cli("capo", data, pairs, "--model", tiny_model_dir, "--detections", pairs.with_name("detections.jsonl"),
        "--max-tokens", 12, "--cache", pairs.with_name("cache.sqlite"))
    assert "(0 new)" in " ".join(capsys.readouterr().err.split())  # the console wraps lines at its width
    assert pairs.read_text(encoding="utf-8") == before


def test_train_dpo_takes_the_pairs_as_they_are(pairs, tiny_model_dir, tmp_path):
    pytest.importorskip("trl")
    from turnwise.config import load_config
    from turnwise.train.configs import DPOTrainConfig
    from turnwise.train.dpo import train_dpo

    settings = {"data": str(pairs), "model": str(tiny_model_dir), "output": str(tmp_path / "dpo"), "max_steps": 2,
                "per_device_train_batch_size": 2, "max_rows": 4, "logging_steps": 1, "max_length": 512,
                "gradient_checkpointing": False, "trl_args": {"disable_tqdm": True}}
    result = train_dpo(load_config(DPOTrainConfig, overrides=settings))
    assert result.log_history and "loss" in result.log_history[0]
