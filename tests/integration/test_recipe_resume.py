"""Kill -9 during simulation or scoring, run the recipe again: it completes, and no finished model call is
paid for twice (the backend logs every call it answers; the second run's calls are all new ones)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from turnwise.records import read_stage_output

pytestmark = pytest.mark.integration

# A slow scripted backend (`backend: fakebackend:SlowModel`): each call it answers is logged, as a hash of what
# it was asked, at the moment it answers (the response cache stores the answer in the same event-loop step).
BACKEND = '''
import asyncio, hashlib, json
from turnwise.models.base import Completion, Usage

class SlowModel:
    def __init__(self, spec):
        self.backend, self.model = "slow", spec.model
        self.delay, self.log = float(spec.options["delay_s"]), spec.options["log"]

    async def chat(self, conversations, settings):
        await asyncio.sleep(self.delay)
        out = []
        with open(self.log, "a") as f:
            for conv in conversations:
                key = hashlib.sha256(json.dumps([self.model, conv, settings.to_dict()], sort_keys=True).encode())
                digest = key.hexdigest()
                f.write(self.model + " " + digest + "\\n")
                texts = [self.reply(conv, digest, i) for i in range(settings.n)]
                out.append(Completion(texts=texts, finish_reasons=["stop"] * settings.n, usage=Usage(5, 5)))
        return out

    def reply(self, conv, digest, i):
        if self.model == "judge":
            return "The answer is fine. Rating: [[%d]]" % (int(digest[i:i + 2], 16) % 11)
        if self.model == "user":
            return "Then what about item %s, and why does it matter here?" % digest[:10]
        return "Answer %s: it is the one you asked about." % digest[i:i + 10]

    async def aclose(self):
        pass
'''

RECIPE = """
description: kill -9 and resume
out_dir: {out}
models:
  user: {{model: user, backend: "fakebackend:SlowModel", options: {{delay_s: 0.03, log: {log}}}}}
  assistant: {{model: assistant, backend: "fakebackend:SlowModel", options: {{delay_s: 0.03, log: {log}}}}}
  judge: {{model: judge, backend: "fakebackend:SlowModel", options: {{delay_s: 0.03, log: {log}}}}}
stages:
  - {{name: data, kind: toy_data, settings: {{train_dialogues: 40, held_out: 2}}}}
  - name: simulate
    kind: simulate
    inputs: {{seeds: "data:train"}}
    models: {{user: user, assistant: assistant}}
    settings: {{turns: 4, lang: en, max_in_flight: 4}}
  - name: bestofn
    kind: bestofn
    inputs: {{dialogues: simulate}}
    models: {{policy: assistant, judge: judge}}
    settings: {{prompts: last, n: 3, min_scored: 2, min_margin: 0.5, max_in_flight: 4, scorer: [longreward],
               retriever: bm25, longreward: {{dimensions: [helpfulness, logicality]}}}}
"""


def _run(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "turnwise.cli.main", "run", str(tmp_path / "r.yaml")], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _records(out: Path, stage: str) -> int:
    files = list(out.glob(f"{stage}-*/*.jsonl"))
    return sum(1 for f in files if f.name in ("dialogues.jsonl", "records.jsonl") for _ in open(f))


@pytest.mark.parametrize(("stage", "after"), [("simulate", 8), ("bestofn", 10)])
def test_kill_9_then_rerun_completes_without_paying_twice(tmp_path, stage, after):
    (tmp_path / "fakebackend.py").write_text(BACKEND)
    log, out = tmp_path / "calls.log", tmp_path / "out"
    (tmp_path / "r.yaml").write_text(RECIPE.format(out=out, log=log))
    process = _run(tmp_path)
    deadline = time.monotonic() + 120
    while _records(out, stage) < after:
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the stage never got going"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole group, as kill -9 of a terminal job would
    process.wait()
    assert not list(out.glob(f"{stage}-*/stage.json"))  # killed mid-stage: not complete
    before = log.read_text().splitlines()

    again = _run(tmp_path)
    output = again.communicate(timeout=300)[0].decode()
    assert again.returncode == 0, output
    assert "bestofn: ran" in output and f"{stage}: ran" in output and "data: cached" in output
    assert "resume" in output  # the plan: the killed stage keeps its finished records
    calls = log.read_text().splitlines()
    repeated = {call: n for call, n in Counter(calls).items() if n > 1}
    assert not repeated, f"{len(repeated)} calls paid twice"
    assert len(calls) > len(before)  # the second run did the rest
    records = read_stage_output(next(out.glob(f"{stage}-*")) / ("dialogues.jsonl" if stage == "simulate"
                                                               else "records.jsonl"))
    assert len(records) == len({r["id"] for r in records}) == 40  # every dialogue once
    run = json.loads((out / "run.json").read_text())
    assert [s["status"] for s in run["stages"]] == ["cached", "ran", "ran"] if stage == "simulate" else \
        [s["status"] for s in run["stages"]] == ["cached", "cached", "ran"]
