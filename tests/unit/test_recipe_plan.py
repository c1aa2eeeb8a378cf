"""Plan and run with fake stage kinds (no models): keys, what is cached and why, resume, --from, --only,
stage.json and the report."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnwise.errors import ConfigError, TurnwiseError
from turnwise.recipe import load_recipe, make_plan, run_plan
from turnwise.recipe.hashing import digest
from turnwise.records import make_record, read_stage_output
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage
from turnwise.stage.table import STAGES

CALLS: Counter[str] = Counter()   # adapter calls per stage
WORK: Counter[str] = Counter()    # records written per stage
INTERRUPT: dict[str, int] = {}    # stage → raise KeyboardInterrupt before this record


@dataclass
class SourceSettings:
    """Settings of the fake source.

    Attributes:
        n: lines to write.
        seed: the run seed.
    """

    n: int = 3
    seed: int = 0


def fake_source(ctx: StageContext) -> StageResult:
    CALLS[ctx.name] += 1
    prefix = ctx.input("prefix").read_text().strip() if ctx.has_input("prefix") else "line"
    ctx.path("lines.txt").write_text("".join(f"{prefix} {i}\n" for i in range(ctx.settings.n)))
    return StageResult({"lines": "lines.txt"}, f"{ctx.settings.n} lines", counts={"lines": ctx.settings.n})


@dataclass
class StepSettings:
    """Settings of the fake step.

    Attributes:
        factor: times each line is repeated.
    """

    factor: int = 2


def fake_step(ctx: StageContext) -> StageResult:
    CALLS[ctx.name] += 1
    lines = [line for path in ctx.inputs["lines"] for line in path.read_text().splitlines()]
    with ctx.records("records.jsonl") as run:
        store = run.store
        for i, line in enumerate(lines):
            if str(i) in store.done:
                continue
            if INTERRUPT.get(ctx.name) == i:
                raise KeyboardInterrupt
            store.append(make_record(str(i), "ok", {"text": " ".join([line] * ctx.settings.factor)}))
            WORK[ctx.name] += 1
    texts = [r["text"] for r in read_stage_output(ctx.path("records.jsonl"))]
    ctx.path("lines.txt").write_text("".join(t + "\n" for t in texts))
    ctx.path("model").mkdir(exist_ok=True)
    (ctx.path("model") / "model.safetensors").write_text("".join(texts))
    return StageResult({"lines": "lines.txt", "model": "model"}, f"{len(texts)} lines")


FAKES = {
    "fake_source": Stage("fake_source", "Writes n lines.", SourceSettings, fake_source,
                         inputs=(Port("prefix", "a file whose text starts every line", required=False),),
                         outputs=(Output("lines", "lines.txt"),)),
    "fake_step": Stage("fake_step", "Repeats each line, one record per line.", StepSettings, fake_step,
                       inputs=(Port("lines", "lines", many=True),), models=(Port("model", "a model", required=False),),
                       outputs=(Output("lines", "lines.txt"), Output("model", "model", folder=True))),
}


@pytest.fixture(autouse=True)
def fake_kinds(monkeypatch):
    for name, stage in FAKES.items():
        monkeypatch.setitem(STAGES, name, stage)


RECIPE = """
description: fake pipeline
out_dir: {out}
models:
  m: {{from_stage: b}}
stages:
  - {{name: a, kind: fake_source, settings: {{n: 3}}}}
  - {{name: b, kind: fake_step, inputs: {{lines: a}}}}
  - {{name: c, kind: fake_step, inputs: {{lines: [a, "b:lines"]}}, models: {{model: m}}}}
  - {{name: d, kind: fake_source, inputs: {{prefix: {prefix}}}}}
"""


@pytest.fixture
def recipe_path(tmp_path):
    CALLS.clear()
    WORK.clear()
    INTERRUPT.clear()
    (tmp_path / "prefix.txt").write_text("row")
    path = tmp_path / "fake.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "out", prefix=tmp_path / "prefix.txt"))
    return path


def plan_of(path: Path, *sets: str, **kwargs):
    return make_plan(load_recipe(path, sets=sets), **kwargs)


def actions(plan) -> dict[str, str]:
    return {s.name: s.action for s in plan.stages}


def test_a_key_hashes_kind_settings_upstream_keys_and_models(recipe_path):
    plan = plan_of(recipe_path)
    a, b, c, d = plan.stages
    assert a.fingerprint == {"kind": "fake_source", "version": 1, "settings": {"n": 3, "seed": 0}, "inputs": {},
                             "models": {}}
    assert a.key == digest(a.fingerprint) and a.dir == recipe_path.parent / "out" / f"a-{a.key[:12]}"
    assert c.fingerprint["inputs"] == {"lines": [{"stage_key": a.key, "output": "lines"},
                                                 {"stage_key": b.key, "output": "lines"}]}
    assert c.fingerprint["models"] == {"model": {"backend": "local", "dtype": "auto", "chat_template": None,
                                                 "trust_remote_code": False, "options": {}, "stage_key": b.key}}
    assert d.fingerprint["inputs"]["prefix"][0]["sha256"] == digest_file(recipe_path.parent / "prefix.txt")
    assert [s.key for s in plan_of(recipe_path).stages] == [s.key for s in plan.stages]
    changed = plan_of(recipe_path, "a.n=4")
    assert [x.key == y.key for x, y in zip(plan.stages, changed.stages, strict=True)] == [False, False, False, True]


def digest_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_run_is_all_cached_and_calls_nothing(recipe_path):
    first = run_plan(plan_of(recipe_path))
    assert [o.status for o in first.outcomes] == ["ran"] * 4 and CALLS == {"a": 1, "b": 1, "c": 1, "d": 1}
    plan = plan_of(recipe_path)
    assert actions(plan) == dict.fromkeys("abcd", "cached")
    second = run_plan(plan)
    assert [o.status for o in second.outcomes] == ["cached"] * 4 and CALLS == {"a": 1, "b": 1, "c": 1, "d": 1}
    record = json.loads((plan.get("c").dir / "stage.json").read_text())
    assert record["key"] == plan.get("c").key and record["outputs"] == {"lines": "lines.txt", "model": "model"}
    assert record["inputs"] == {"lines": ["a:lines", "b:lines"]} and record["models"] == {"model": "m"}
    assert (plan.get("c").dir / "lines.txt").read_text().splitlines()[-1] == "line 2 line 2 line 2 line 2"


def test_a_changed_setting_reruns_its_stage_and_those_downstream_only(recipe_path):
    run_plan(plan_of(recipe_path))
    plan = plan_of(recipe_path, "b.factor=3")
    assert actions(plan) == {"a": "cached", "b": "run", "c": "run", "d": "cached"}
    assert plan.get("b").reason == "factor 2 → 3"
    assert plan.get("c").reason == "input lines changed (b:lines); model model changed (m)"
    result = run_plan(plan)
    assert [o.status for o in result.outcomes] == ["cached", "ran", "ran", "cached"]
    assert CALLS == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert actions(plan_of(recipe_path)) == dict.fromkeys("abcd", "cached")  # the old outputs are still there


def test_a_changed_input_file_reruns_the_stage_that_reads_it(recipe_path):
    run_plan(plan_of(recipe_path))
    (recipe_path.parent / "prefix.txt").write_text("item")
    plan = plan_of(recipe_path)
    assert actions(plan)["d"] == "run" and plan.get("d").reason.startswith("input prefix changed")
    run_plan(plan)
    assert (plan.get("d").dir / "lines.txt").read_text().startswith("item 0")


def test_an_interrupted_stage_resumes_without_redoing_finished_records(recipe_path):
    INTERRUPT["b"] = 2
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan_of(recipe_path))
    plan = plan_of(recipe_path)
    assert actions(plan) == {"a": "cached", "b": "resume", "c": "run", "d": "run"}
    assert not (plan.get("b").dir / "stage.json").exists()
    INTERRUPT.clear()
    run_plan(plan)
    assert WORK["b"] == 3  # records 0 and 1 before the interrupt, 2 after it: none twice
    assert [r["id"] for r in read_stage_output(plan.get("b").dir / "records.jsonl")] == ["0", "1", "2"]
    manifest = json.loads((plan.get("b").dir / "records.manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["interrupted", "complete"]


def test_from_reruns_a_stage_and_every_later_one(recipe_path):
    run_plan(plan_of(recipe_path))
    plan = plan_of(recipe_path, from_stage="b")
    assert actions(plan) == {"a": "cached", "b": "forced", "c": "forced", "d": "forced"}
    assert plan.get("b").reason == "--from b"
    run_plan(plan)
    assert CALLS == {"a": 1, "b": 2, "c": 2, "d": 2} and WORK["b"] == 6  # the folder was cleared


def test_only_runs_one_stage_whose_inputs_are_complete(recipe_path):
    with pytest.raises(ConfigError, match=r"--only c: its input stage\(s\) a, b are not complete"):
        plan_of(recipe_path, only="c")
    run_plan(plan_of(recipe_path))
    plan = plan_of(recipe_path, only="c")
    assert actions(plan) == {"a": "skipped", "b": "skipped", "c": "forced", "d": "skipped"}
    assert [o.status for o in run_plan(plan).outcomes] == ["skipped", "skipped", "ran", "skipped"]
    with pytest.raises(ConfigError, match="no stage named 'e'"):
        plan_of(recipe_path, from_stage="e")


def test_a_stage_that_writes_less_than_it_declares_fails_and_stays_incomplete(recipe_path, monkeypatch):
    def broken(ctx: StageContext) -> StageResult:
        return StageResult({"lines": "missing.txt"})

    monkeypatch.setitem(STAGES, "fake_broken", Stage("fake_broken", "Declares an output it never writes.",
                                                     SourceSettings, broken, outputs=(Output("lines", "lines.txt"),)))

    text = recipe_path.read_text()
    recipe_path.write_text(text.replace("kind: fake_source, settings", "kind: fake_broken, settings"))
    with pytest.raises(TurnwiseError, match="did not write its output 'lines'"):
        run_plan(plan_of(recipe_path))
    assert actions(plan_of(recipe_path))["a"] == "resume"


def test_the_report_links_every_artefact(recipe_path):
    result = run_plan(plan_of(recipe_path))
    out = recipe_path.parent / "out"
    report = (out / "report.md").read_text()
    for stage in result.plan.stages:
        for rel in ("stage.json", "lines.txt"):
            assert f"]({stage.dir.name}/{rel})" in report
    assert f"]({result.plan.get('b').dir.name}/model)" in report
    assert "| b | fake_step | `" in report and "4 ran" in report
    html = (out / "report.html").read_text()
    assert f'<a href="{result.plan.get("a").dir.name}/lines.txt">lines</a>' in html and "<table>" in html
    run = json.loads((out / "run.json").read_text())
    assert [(s["name"], s["status"]) for s in run["stages"]] == [("a", "ran"), ("b", "ran"), ("c", "ran"), ("d", "ran")]


def test_two_runs_of_one_out_dir_at_once_are_refused(recipe_path):
    import fcntl

    out = recipe_path.parent / "out"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(TurnwiseError, match="in use by another turnwise run"):
            run_plan(plan_of(recipe_path))
    assert not CALLS


def test_dry_run_prints_the_plan_and_runs_nothing(recipe_path):
    from turnwise.cli.main import app

    result = CliRunner().invoke(app, ["run", str(recipe_path), "--dry-run", "--set", "a.n=2"])
    assert result.exit_code == 0, result.output
    assert "not run yet" in result.output and "fake_step" in result.output
    assert not CALLS and not (recipe_path.parent / "out" / "report.md").exists()
    result = CliRunner().invoke(app, ["run", str(recipe_path)])
    assert result.exit_code == 0, result.output
    assert "4 stages ran, 0 cached" in result.output
    result = CliRunner().invoke(app, ["run", str(recipe_path)])
    assert "0 stages ran, 4 cached" in result.output and CALLS == {"a": 1, "b": 1, "c": 1, "d": 1}
