"""python bench/eval_overhead.py [--benchmark multichallenge]

How close does `turnwise eval run` (answer and judge MT-Bench, dialogue by dialogue) come to the best any
client could do against the same servers?

The scripted OpenAI-compatible server runs as its own process (this file with ``--serve``): 100 ± 80 ms
per request, 32 requests in service at once, no faults. It plays both the evaluated model (it answers
``answer to: <the last user turn>``) and the judge (:class:`turnwise.eval.scripted.ScriptedEvalJudge`
replies ``Rating: [[x]]``), and it records every request it serves with its service time (deterministic:
a hash of the request body and the seed). The client is the core of `turnwise eval run`
(:func:`turnwise.eval.pipeline.run_eval`) over ``CachedChatModel(OpenAIChatModel)`` for the answerer and
for the judge (each allowed 32 requests in flight, fresh caches: nothing hits), on the 80 two-turn
questions of MT-Bench (``../shared/data/mt_bench/question.jsonl``; a synthetic stand-in of the same shape
when that folder is absent).

The bound. Let a(d, k) be the service time of the answer to turn k of dialogue d and j(d, k) that of
judging it. Answering turn k needs the answer to turn k-1 (the model's own history), and judging turn k
needs the answer to turn k, so no schedule finishes dialogue d before its chain

    chain(d) = max_k ( a(d, 1) + … + a(d, k) + j(d, k) )

and no schedule finishes everything before the server has served every request with 32 at a time:

    bound = max( max_d chain(d),  Σ_d Σ_k (a(d, k) + j(d, k)) / 32 )

Both terms are computed from the service times the server recorded in the same run. No client can reach
the bound exactly: when the last requests are in service, the 32 slots finish at different times (with
20–180 ms service times, the last one about 0.1 s after the average one), so ~1.1 is the floor. The ratio
wall / bound is what the client's shape, the cache, the judge's prompt rendering and the event loop cost;
the target is ratio <= 1.2. Imports and the first compilation of the judge's template happen before the
clock starts; everything else (cache, record files, connections) is timed. For context, the same work
runs as two global phases (`eval answer` over everything, then `eval judge` over everything), each
phase's tail leaving the server part idle.

``--benchmark multichallenge`` runs MultiChallenge's 273 items instead
(``../shared/data/multichallenge/benchmark_questions.jsonl``): each answers its final turn after the given history
and is judged once with the YES/NO rubric prompt, so chain(d) = a(d) + j(d), the rubric call matched to its answer
by the response it judges.

``--process`` also times the command a user types, ``turnwise eval run`` (both roles on the same server,
``--no-cache``), as a whole process from its start to its exit, on the same dialogues and against the same
bound; its ratio is ``process_ratio``. It runs with Python's default bytecode caching after one untimed
two-dialogue run (see ``bench/simulate_overhead.py``). A process pays ~0.5 s of start-up, a large share of
MT-Bench's ~1 s bound, so ``--repeat N`` takes each question N times (turns tagged ``[copy k]``):
``--process --repeat 20 --capacity 64`` is 1,600 dialogues, 6,400 calls, 64 slots, a ~10 s bound, the size
of ``bench/simulate_overhead.py``'s workload.

The last line is key=value pairs for scripts::

    ratio=1.08 wall_s=1.12 bound_s=1.04 chain_s=0.52 calls=320 ... baseline_ratio=1.25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from turnwise.eval.answer import AnswerConfig, run_answer
from turnwise.eval.benchmarks import load_benchmark
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig, run_judge
from turnwise.eval.pipeline import run_eval
from turnwise.eval.scripted import RUBRIC_PROMPT, ScriptedEvalJudge, parse_prompt
from turnwise.judge.core import Judge
from turnwise.models.base import ModelSpec
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.models.openai_http import OpenAIChatModel
from turnwise.prompts import render
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.scripted_runner import stop_process
from turnwise.testing.scripted_server import ScriptedServer, ServerConfig, start

QUESTIONS = Path("../shared/data/mt_bench/question.jsonl")
MULTICHALLENGE = Path("../shared/data/multichallenge/benchmark_questions.jsonl")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Wall time of eval answer+judge against the bound of the call chains.")
    p.add_argument("--capacity", type=int, default=32, help="requests the server serves at once")
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--jitter-ms", type=float, default=80.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", action="store_true", help="skip the two-phase run")
    p.add_argument("--benchmark", choices=["mt-bench", "multichallenge"], default="mt-bench")
    p.add_argument("--repeat", type=int, default=1,
                   help="MT-Bench only: each question N times, each copy's turns tagged (N x 80 dialogues)")
    p.add_argument("--process", action="store_true",
                   help="also time `turnwise eval run` as a whole process on the same dialogues")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process
    args = p.parse_args()
    if args.repeat > 1 and args.benchmark != "mt-bench":
        p.error("--repeat applies to mt-bench only")
    return args


# ------------------------------------------------------------------------------------------ server process


def serve(args: argparse.Namespace) -> None:
    """The scripted server with the eval judge's script and a trace of (messages, service time) per request."""
    from aiohttp import web


    class TracingServer(ScriptedServer):
        def __init__(self, config: ServerConfig):
            super().__init__(config)
            self.trace: list[dict[str, Any]] = []
            self.app.router.add_get("/trace", lambda _: web.json_response(self.trace))
            self.app.router.add_post("/trace/reset", self._reset_trace)

        async def _reset_trace(self, _: Any) -> Any:
            self.trace = []
            return web.json_response({"reset": True})

        def _texts(self, payload: dict[str, Any], n: int, digest: bytes) -> list[str]:
            self.trace.append({"messages": payload["messages"], "latency_s": self.latency_s(digest)})
            return super()._texts(payload, n, digest)

    config = ServerConfig(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, capacity=args.capacity,
                          seed=args.seed, script=ScriptedEvalJudge().server_script)

    async def main() -> None:
        _runner, url = await start(TracingServer(config))
        print(url, flush=True)
        await asyncio.Event().wait()  # until the parent terminates us

    asyncio.run(main())


@contextmanager
def server_process(args: argparse.Namespace) -> Iterator[str]:
    cmd = [sys.executable, __file__, "--serve", "--capacity", str(args.capacity), "--latency-ms",
           str(args.latency_ms), "--jitter-ms", str(args.jitter_ms), "--seed", str(args.seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"server printed {url!r} instead of its URL")
        yield url
    finally:
        stop_process(proc)


def call(root: str, path: str, method: str = "GET") -> Any:
    req = urllib.request.Request(root + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


# ------------------------------------------------------------------------------------------ client


def load_items(benchmark: str = "mt-bench", repeat: int = 1, work: Path | None = None) -> tuple[list, str, Path | None]:
    """The dialogues, their source, and the benchmark file `turnwise eval run` reads (None for the stand-in)."""
    if benchmark == "multichallenge":
        if not MULTICHALLENGE.is_file():
            raise SystemExit(f"no {MULTICHALLENGE} (run from the repository root with ../shared beside it)")
        return load_benchmark(MULTICHALLENGE, "multichallenge"), "multichallenge", MULTICHALLENGE
    if QUESTIONS.is_file():
        path = QUESTIONS
        if repeat > 1:  # copies with tagged turns: each its own dialogue, answers and bound entry
            assert work is not None
            path = work / "questions.jsonl"
            with open(QUESTIONS, encoding="utf-8") as source, open(path, "w", encoding="utf-8") as out:
                for line in source:
                    question = json.loads(line)
                    for copy in range(repeat):
                        out.write(json.dumps({**question, "question_id": f"{question['question_id']}-{copy}",
                                              "turns": [f"{t} [copy {copy}]" for t in question["turns"]]}) + "\n")
        return load_benchmark(path, "mt-bench", references="none"), "mt-bench", path
    cats = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
    items = [EvalItem(str(i), "mt-bench", cats[i % 8], [f"Question {i}: explain topic {i * 7919 % 10007}.",
                                                         "Now rewrite your answer for a child."], [1, 2])
             for i in range(80)]
    return items, "synthetic", None


async def run_client(base_url: str, items: list, pipelined: bool, capacity: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "cache.sqlite")
        models = [CachedChatModel(OpenAIChatModel(ModelSpec(model=name, backend="openai", base_urls=[base_url],
                                                            concurrency=capacity, timeout_s=60)), cache)
                  for name in ("evaluated", "judge")]
        judge = Judge(models[1])
        answers, judgements = RecordStore(Path(tmp) / "a.jsonl"), RecordStore(Path(tmp) / "j.jsonl")
        try:
            if pipelined:
                await run_eval(items, models[0], judge, answers, judgements, AnswerConfig(), EvalJudgeConfig())
            else:
                await run_answer(items, models[0], answers, AnswerConfig())
                await run_judge(read_stage_output(answers.path), judge, judgements, EvalJudgeConfig())
        finally:
            for store in (answers, judgements):
                store.close()
            for model in models:
                await model.aclose()
            cache.close()
        records = read_stage_output(judgements.path)
    scores = [e["score"] for r in records for e in r["scores"]]
    return {"dialogues": len(records), "failed": sum(1 for s in scores if s is None)}


def bound_of(trace: list[dict[str, Any]], capacity: int) -> dict[str, float]:
    """The bound of the module docstring from the server's trace of (messages, service time)."""
    answers: dict[tuple[str, int], float] = {}
    judged: dict[tuple[str, int], float] = {}
    rubric: dict[str, float] = {}  # MultiChallenge: the judged response -> its judge call's time
    replies: dict[str, tuple[str, int]] = {}  # the scripted answer -> its answer call
    for entry in trace:
        messages = entry["messages"]
        judged_response = RUBRIC_PROMPT.search(messages[-1]["content"])
        prompt = parse_prompt(messages[-1]["content"])
        if judged_response is not None:
            rubric[judged_response.group(1)] = entry["latency_s"]
        elif prompt is None:
            users = [m["content"] for m in messages if m["role"] == "user"]
            answers[(users[0], len(users))] = entry["latency_s"]
            replies[f"answer to: {messages[-1]['content']}"] = (users[0], len(users))
        else:
            judged[(prompt.questions[0], prompt.turn)] = entry["latency_s"]
    chains: dict[str, float] = {}
    for (dialogue, turn), j in judged.items():
        upto = sum(a for (d, k), a in answers.items() if d == dialogue and k <= turn)
        chains[dialogue] = max(chains.get(dialogue, 0.0), upto + j)
    for response, j in rubric.items():  # a gold history: the one answer, then its judgement
        key = replies.get(response)
        if key is not None:
            chains[f"{key}"] = max(chains.get(f"{key}", 0.0), answers[key] + j)
    total = sum(e["latency_s"] for e in trace)
    chain = max(chains.values(), default=0.0)
    return {"bound_s": max(chain, total / capacity), "chain_s": chain, "work_s": total / capacity,
            "calls": len(trace), "answer_calls": len(answers), "judge_calls": len(judged) + len(rubric)}


def warm_up() -> None:
    """Compile the judge's templates before the clock starts (a one-off cost of every process, ~10 ms)."""
    render("eval/single", "en", turn=2, questions=["q", "q"], answers=["a", "a"], references=None,
           gold_history=False, focus=None)


def measure(root: str, base_url: str, items: list, pipelined: bool, capacity: int) -> dict[str, Any]:
    call(root, "/trace/reset", "POST")
    call(root, "/stats/reset", "POST")
    cpu0, t0 = time.process_time(), time.perf_counter()
    outcome = asyncio.run(run_client(base_url, items, pipelined, capacity))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    bound = bound_of(call(root, "/trace"), capacity)
    stats = call(root, "/stats")
    return {**outcome, **bound, "wall_s": wall, "ratio": wall / bound["bound_s"],
            "cpu_ms_per_call": 1000 * cpu / max(bound["calls"], 1), "max_in_service": stats["max_in_service"]}


def eval_command(base_url: str, questions: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """``turnwise eval run`` as a user types it, both roles on the scripted server, no cache."""
    extra = ["--references", "none"] if args.benchmark == "mt-bench" else []
    return [sys.executable, "-m", "turnwise.cli.main", "eval", "run", str(questions), str(out), "--model", "evaluated",
            "--base-url", base_url, "--concurrency", str(args.capacity), "--judge-model", "judge",
            "--judge-base-url", base_url, "--judge-concurrency", str(args.capacity), "--no-cache",
            "--max-in-flight", "1024", *extra]


def measure_process(root: str, base_url: str, questions: Path, work: Path, args: argparse.Namespace) -> dict:
    """``turnwise eval run`` timed from its start to its exit, after an untimed two-dialogue run of it.

    Python's default bytecode caching, as :func:`simulate_overhead.process_env` explains.
    """
    from simulate_overhead import process_env  # beside this file, hence on sys.path

    def run(cmd: list[str]) -> None:
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=process_env())
        if done.returncode:
            raise RuntimeError(f"turnwise eval run failed ({done.returncode}): {done.stderr[-2000:]}")

    run([*eval_command(base_url, questions, work / "warm-up" / "report.md", args), "--limit", "2"])
    call(root, "/trace/reset", "POST")
    call(root, "/stats/reset", "POST")
    started = time.perf_counter()
    run(eval_command(base_url, questions, work / "process" / "report.md", args))
    wall = time.perf_counter() - started
    bound = bound_of(call(root, "/trace"), args.capacity)
    return {"dialogues": 0, "failed": 0, **bound, "wall_s": wall, "ratio": wall / bound["bound_s"],
            "cpu_ms_per_call": float("nan"), "max_in_service": call(root, "/stats")["max_in_service"]}


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args)
        return
    with tempfile.TemporaryDirectory(prefix="turnwise-eval-bench-") as tmp:
        run_all(args, Path(tmp))


def run_all(args: argparse.Namespace, work: Path) -> None:
    items, source, questions = load_items(args.benchmark, args.repeat, work)
    warm_up()
    rows: dict[str, dict[str, Any]] = {}
    with server_process(args) as base_url:
        root = base_url.removesuffix("/v1")
        rows["eval run (pipelined)"] = measure(root, base_url, items, True, args.capacity)
        if not args.no_baseline:
            rows["answer, then judge"] = measure(root, base_url, items, False, args.capacity)
        if args.process:
            if questions is None:
                raise SystemExit(f"--process needs the benchmark file ({QUESTIONS}), not the synthetic stand-in")
            rows["turnwise eval run (process)"] = measure_process(root, base_url, questions, work, args)
    print(f"{len(items)} dialogues ({source}); server {args.latency_ms:g} ± {args.jitter_ms:g} ms, "
          f"{args.capacity} in service")
    print(f"{'client':<24}{'wall s':>8}{'bound s':>9}{'chain s':>9}{'work s':>8}{'ratio':>7}{'calls':>7}"
          f"{'cpu ms/call':>13}{'failed':>8}")
    for name, r in rows.items():
        print(f"{name:<24}{r['wall_s']:>8.3f}{r['bound_s']:>9.3f}{r['chain_s']:>9.3f}{r['work_s']:>8.3f}"
              f"{r['ratio']:>7.3f}{r['calls']:>7}{r['cpu_ms_per_call']:>13.3f}{r['failed']:>8}")
    r = next(iter(rows.values()))
    tail = (f"ratio={r['ratio']:.3f} wall_s={r['wall_s']:.3f} bound_s={r['bound_s']:.3f} chain_s={r['chain_s']:.3f} "
            f"work_s={r['work_s']:.3f} calls={r['calls']} dialogues={r['dialogues']} failed={r['failed']} "
            f"client_cpu_ms_per_call={r['cpu_ms_per_call']:.3f} data={source}")
    if "answer, then judge" in rows:
        tail += f" baseline_ratio={rows['answer, then judge']['ratio']:.3f}"
    if "turnwise eval run (process)" in rows:
        tail += f" process_ratio={rows['turnwise eval run (process)']['ratio']:.3f}"
    print(tail)


if __name__ == "__main__":
    main()
