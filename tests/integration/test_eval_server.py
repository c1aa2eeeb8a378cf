"""`eval run`'s core over HTTP: the OpenAI-compatible backend plays the evaluated model and the judge against
the scripted server, with 20% injected faults; every dialogue ends answered and judged, none lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnwise.eval.answer import AnswerConfig
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig
from turnwise.eval.pipeline import run_eval
from turnwise.eval.scripted import ScriptedEvalJudge
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.models.base import ModelSpec, load_model
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig

pytestmark = pytest.mark.integration

TURNS = ["Plan a day in Kyoto.", "Make it cheaper.", "Swap the temple for a museum.", "What did that save?"]


async def test_answer_and_judge_over_http_with_faults(tmp_path: Path) -> None:
    judge_script = ScriptedEvalJudge(rate=lambda p: float(p.turn + 5))
    config = ServerConfig(latency_ms=3, jitter_ms=2, fault_rate=0.2, fault_kinds=("429", "500", "malformed", "drop"),
                          retry_after_s=0.01, script=judge_script.server_script)
    items = [EvalItem(f"d{i}", "turns", "travel" if i % 2 else "food", [f"[{i}] {t}" for t in TURNS], [1, 2, 3, 4])
             for i in range(12)]
    with serve_in_thread(config) as server:
        spec = ModelSpec(model="scripted", backend="openai", base_urls=[server.base_url], concurrency=8,
                         max_retries=10, backoff_s=0.01, timeout_s=10)
        cache = ResponseCache(tmp_path / "cache.sqlite")
        model, judge_model = CachedChatModel(load_model(spec), cache), CachedChatModel(load_model(spec), cache)
        judge = Judge(judge_model, RetryPolicy(attempts=2))
        try:
            with RecordStore(tmp_path / "a.jsonl") as answers, RecordStore(tmp_path / "j.jsonl") as judgements:
                totals = await run_eval(items, model, judge, answers, judgements, AnswerConfig(name="scripted"),
                                        EvalJudgeConfig())
        finally:
            await model.aclose()
            await judge_model.aclose()
            cache.close()
        assert server.stats()["faults"]  # faults were injected and retried
    answers = read_stage_output(tmp_path / "a.jsonl")
    judged = read_stage_output(tmp_path / "j.jsonl")
    assert sorted(r["id"] for r in answers) == sorted(r["id"] for r in judged) == sorted(i.id for i in items)
    assert {r["status"] for r in answers + judged} == {"ok"}
    assert answers[0]["answers"][3] == f"answer to: {answers[0]['turns'][3]}"
    assert all([e["score"] for e in r["scores"]] == [6.0, 7.0, 8.0, 9.0] for r in judged)
    assert totals.answer.cost.calls == totals.judge.cost.calls == 48
    assert totals.answer.cost.attempts > 48 or totals.judge.cost.attempts > 48  # retries were paid for
