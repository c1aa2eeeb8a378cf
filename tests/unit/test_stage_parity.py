"""One stage, one adapter: a stage's command and the same stage in a recipe build equal settings, hand them to the
same adapter and write identical records; the command's options and a recipe's accepted keys are the same set.

Each case gives its settings twice, by hand: as command-line options and as a recipe's ``settings:`` mapping. Both
runs go through a spy on the stage's adapter (the real one runs), each with a fresh response cache; the records
they write are compared line for line (sorted by id: calls finish in any order). The drifts the two wirings once had
are pinned in the cases that name them.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer

from turnwise.cli.main import app, main
from turnwise.models.base import ModelSpec
from turnwise.recipe import load_recipe, make_plan, run_plan
from turnwise.stage.settings import plain_settings
from turnwise.stage.table import STAGES, load_stage, load_stages

ECHO = "turnwise.testing.fake:EchoBackend"
RAG = "turnwise.rag.scripted:ScriptedRagModel"
EVAL = "turnwise.eval.scripted:ScriptedEvalJudgeModel"
# Where each stage's command lives.
COMMANDS = {"generate": ["generate"], "simulate": ["simulate"], "ask_data": ["ask-data"], "detect": ["detect", "run"],
            "capo": ["capo"], "score": ["score"], "bestofn": ["bestofn"], "train_sft": ["train", "sft"],
            "train_ask": ["train", "ask"], "train_dpo": ["train", "dpo"], "train_rm": ["train", "rm"],
            "train_online": ["train", "online"],
            "eval": ["eval", "run"],
            "eval_answer": ["eval", "answer"], "eval_judge": ["eval", "judge"], "eval_sharded": ["eval", "sharded"],
            "rewrite": ["rewrite", "run"],
            "rewrite_eval": ["rewrite", "eval"], "rag": ["rag", "batch"], "rag_index": ["rag", "index"]}
RECIPE_ONLY = {"toy_data", "tiny_model", "toy_eval", "report"}  # the quickstart's world and the run's report
RUN_OPTIONS = {"config", "set", "cache", "no_cache", "retry_failed"}  # where and how a command runs, not what


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def answer(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


DIALOGUES = [
    {"id": "d1", "messages": [user("Tell me about the Nile."), answer("The Nile is a river in Africa."),
                              user("How long is it?"), answer("The Nile is 6,650 km long."),
                              user("And the Amazon?"), answer("The Amazon is 6,400 km long.")],
     "meta": {"references": ["Nile", "6,650 km", "6,400 km"]}},
    {"id": "d2", "messages": [user("What is Fuji?"), answer("Fuji is a mountain in Japan."),
                              user("How high is that one?"), answer("Fuji is 3,776 m high.")],
     "meta": {"references": ["mountain", "3,776 m"]}},
    {"id": "d3", "messages": [user("Name a big lake."), answer("Lake Baikal."), user("Where is it?"),
                              answer("Lake Baikal is in Siberia.")]},
]
SCRIPTS = [{"id": f"s{i}", "category": "travel", "turns": [f"[{i}] Plan a day in Kyoto.", "Make it cheaper."]}
           for i in range(3)]
CANARD = [
    {"History": ["Walter Scott", "Early days"], "QuAC_dialog_id": "C_1", "Question": "where was he born?",
     "Question_no": 1, "Rewrite": "Where was Walter Scott born?"},
    {"History": ["Walter Scott", "Early days", "where was he born?", "Edinburgh"], "QuAC_dialog_id": "C_1",
     "Question": "What was his first job?", "Question_no": 2, "Rewrite": "What was Walter Scott's first job?"},
]
CORPUS = [{"id": "nile", "title": "Nile", "text": "The Nile is about 6,650 km long. It flows into the sea."},
          {"id": "fuji", "title": "Fuji", "text": "Fuji is 3,776 m high."}]


@dataclass
class Case:
    """One stage run both ways.

    Attributes:
        kind: the stage kind.
        inputs: port → file name in the data folder.
        models: role (or label) → (model name, backend).
        cli: the settings as command-line options.
        settings: the same settings as a recipe's mapping.
        compare: outputs whose files must be identical (default: every declared output).
        drift: what the case pins of the drifts the two wirings once had.
    """

    kind: str
    inputs: dict[str, str]
    models: dict[str, tuple[str, str]] = field(default_factory=dict)
    cli: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    compare: tuple[str, ...] | None = None
    drift: str = ""


CASES = [
    Case("generate", {"conversations": "followups.jsonl"}, {"model": ("m", ECHO)},
         ["--temperature", "0.3", "--max-tokens", "40", "--limit", "2", "--max-in-flight", "3"],
         {"sampling": {"temperature": 0.3, "max_tokens": 40}, "limit": 2, "max_in_flight": 3}),
    Case("simulate", {"seeds": "seeds.txt"}, {"user": ("u", ECHO), "assistant": ("a", ECHO)},
         ["--turns", "3", "--user-max-tokens", "16", "--assistant-temperature", "0", "--min-chars", "2",
          "--disable-filter", "near_duplicate", "--disable-filter", "answer", "--seed", "3"],
         {"turns": 3, "user_settings": {"max_tokens": 16}, "assistant_settings": {"temperature": 0},
          "filters": {"min_chars": 2, "disabled": ["near_duplicate", "answer"]}, "seed": 3}),
    Case("ask_data", {"dialogues": "dialogues.jsonl"}, {}, ["--lang", "en", "--end-marker", "[END]", "--to", "trl-sft"],
         {"lang": "en", "end_marker": "[END]", "to": "trl-sft"}),
    Case("detect", {"dialogues": "dialogues.jsonl"}, {"judge": ("j", ECHO)},
         ["--lang", "en", "--judge-on", "all", "--judge-max-tokens", "64"],
         {"lang": "en", "judge": {"judge_on": "all", "settings": {"max_tokens": 64}}}),
    Case("capo", {"dialogues": "dialogues.jsonl"}, {"negative": ("neg", ECHO)},
         ["--exchanges", "2", "--mix", "neglect=1,hallucination=1,misunderstanding=1", "--max-tokens", "24",
          "--sampling-seed", "5", "--lang", "en", "--seed", "2"],
         {"exchanges": 2, "mix": {"neglect": 1, "hallucination": 1, "misunderstanding": 1},
          "settings": {"max_tokens": 24, "seed": 5}, "lang": "en", "seed": 2},
         drift="capo: exchanges from the command line; the simulator's temperature is CapoConfig's 1.0 both ways"),
    Case("score", {"answers": "answers.jsonl"}, {}, ["--scorer", "exact", "--scorer", "normalized=2"],
         {"scorer": ["exact", "normalized=2"]}),
    Case("bestofn", {"dialogues": "dialogues.jsonl"}, {"policy": ("p", ECHO)},
         ["--scorer", "normalized", "--n", "3", "--min-scored", "2", "--min-margin", "0", "--prompts", "every_turn",
          "--history-messages", "4", "--history-chars", "500", "--embedding-model", "my-embedder",
          "--chunk-tokens", "64", "--tokenizer", "regex", "--template-dir", "{data}/templates", "--seed", "1"],
         {"scorer": ["normalized"], "n": 3, "min_scored": 2, "min_margin": 0, "prompts": "every_turn",
          "longreward": {"history_messages": 4, "history_chars": 500}, "embedding_model": "my-embedder",
          "chunk_tokens": 64, "tokenizer": "regex", "template_dir": "{data}/templates", "settings": {"seed": 1}},
         drift="bestofn: embedding_model, chunk_tokens, tokenizer, template_dir in a recipe; history_* on the "
               "command line"),
    Case("eval", {"benchmark": "scripts.jsonl"}, {"demo": ("demo", EVAL), "judge": ("judge", EVAL)},
         ["--limit", "2", "--temperature", "0", "--judge-attempts", "2"],
         {"limit": 2, "temperature": 0, "judge_attempts": 2}, compare=()),
    Case("eval_answer", {"benchmark": "scripts.jsonl"}, {"model": ("m", EVAL)},
         ["--name", "demo", "--max-tokens", "64"], {"name": "demo", "max_tokens": 64}),
    Case("eval_judge", {"answers": "eval-answers.jsonl"}, {"judge": ("j", EVAL)}, ["--lang", "en"], {"lang": "en"}),
    Case("rewrite", {"conversations": "canard.json"}, {"model": ("pronouns", RAG)},
         ["--from", "canard", "--variant", "direct"], {"input_format": "canard", "variant": "direct"}),
    Case("rewrite_eval", {"data": "canard.json"}, {"model": ("pronouns", RAG)}, ["--from", "canard"],
         {"input_format": "canard"}),
    Case("rag_index", {"corpus": "corpus.jsonl"}, {}, ["--kind", "bm25", "--chunk-tokens", "32"],
         {"kind": "bm25", "chunk_tokens": 32}, compare=()),
    Case("rag", {"conversations": "followups.jsonl", "index": "index"}, {"model": ("m", RAG)},
         ["--top-k", "1", "--budget", "300", "--tokenizer", "none"], {"top_k": 1, "budget": 300, "tokenizer": "none"}),
]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    jsonl(folder / "dialogues.jsonl", DIALOGUES)
    jsonl(folder / "scripts.jsonl", SCRIPTS)
    jsonl(folder / "followups.jsonl", [{"id": f"f{i}", "messages": [user(f"[{i}] Plan a day in Kyoto.")],
                                        "followups": ["Make it cheaper.", "And the museum?"]} for i in range(3)])
    jsonl(folder / "corpus.jsonl", CORPUS)
    (folder / "canard.json").write_text(json.dumps(CANARD), encoding="utf-8")
    (folder / "seeds.txt").write_text("How does a cache work?\nWhat is a river delta?\n", encoding="utf-8")
    jsonl(folder / "answers.jsonl", [{"id": "a1", "messages": [user("Capital of France?"), answer("Paris")],
                                      "meta": {"reference": "Paris"}},
                                     {"id": "a2", "messages": [user("2+2?"), answer("5")], "meta": {"reference": "4"}}])
    (folder / "templates" / "score").mkdir(parents=True)
    assert run("eval", "answer", folder / "scripts.jsonl", folder / "eval-answers.jsonl", "--model", "m",
               "--backend", EVAL, "--no-cache") == 0
    assert run("rag", "index", folder / "corpus.jsonl", folder / "index", "--kind", "bm25") == 0
    return folder


def run(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every settings object an adapter receives, in order; the real adapter then runs."""
    seen: list[Any] = []
    for name in COMMANDS:
        stage = load_stage(name)

        def spy(ctx: Any, run: Any = stage.run) -> Any:
            seen.append(ctx.settings)
            return run(ctx)

        monkeypatch.setitem(STAGES, name, dataclasses.replace(stage, run=spy))
    return seen


def _filled(value: Any, data: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{data}", str(data))
    if isinstance(value, dict):
        return {k: _filled(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, data) for v in value]
    return value


def command_line(case: Case, data: Path, out: Path, cache: Path) -> list[str]:
    stage = load_stage(case.kind)
    args: list[str] = list(COMMANDS[case.kind])
    for i, port in enumerate(stage.inputs):
        if port.name in case.inputs:
            path = str(data / case.inputs[port.name])
            args += [path] if i == 0 and stage.positional else [port.option, path]
    args += [str(out)] if stage.positional else ["--output", str(out)]
    for role, (name, backend) in case.models.items():
        if stage.free_models and role != "judge":
            args += ["--model", f"{role}={name}", "--backend", backend]
        elif role == stage.primary:
            args += ["--model", name, "--backend", backend]
        else:
            args += [f"--{role}-model", name, f"--{role}-backend", backend]
    return args + [_filled(a, data) for a in case.cli] + ["--cache", str(cache)]


def recipe(case: Case, data: Path, out_dir: Path) -> Path:
    stage = {"name": "s", "kind": case.kind, "settings": _filled(case.settings, data),
             "inputs": {port: {"file": str(data / name)} for port, name in case.inputs.items()},
             "models": {role: f"m{i}" for i, role in enumerate(case.models)}}
    models = {f"m{i}": {"model": name, "backend": backend} for i, (name, backend) in enumerate(case.models.values())}
    path = out_dir.parent / f"{out_dir.name}.yaml"
    path.write_text(json.dumps({"out_dir": str(out_dir), "models": models, "stages": [stage]}), encoding="utf-8")
    return path


def _rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        return [text]
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_command_and_recipe_build_equal_settings_and_write_identical_records(case: Case, data: Path, tmp_path: Path,
                                                                             spied: list[Any]) -> None:
    stage = load_stage(case.kind)
    main_file = stage.outputs[0]
    out = tmp_path / "cli" / ("run" if stage.out_dir else main_file.file)
    assert run(*command_line(case, data, out, tmp_path / "cli-cache.sqlite")) == 0
    result = run_plan(make_plan(load_recipe(recipe(case, data, tmp_path / "recipe"))))
    [outcome] = result.outcomes
    assert outcome.status == "ran"
    from_cli, from_recipe = spied
    assert plain_settings(from_cli, tuple(stage.provided)) == plain_settings(from_recipe, tuple(stage.provided))
    folder = outcome.stage.dir
    cli_paths = {o.name: (out if o is main_file and not stage.out_dir else
                          out / o.file if stage.out_dir else
                          out.parent / f"{out.stem}.{o.file}") for o in stage.outputs}
    for name in case.compare if case.compare is not None else stage.output_names:
        recipe_path = folder / outcome.record["outputs"][name]
        assert _rows(cli_paths[name]) == _rows(recipe_path), f"{case.kind}: output {name} differs"
    if case.kind == "eval":  # its records are per model, beside the report
        for what in ("answers", "judgements"):
            assert _rows(out / f"{what}-demo.jsonl") == _rows(folder / f"{what}-demo.jsonl")
    if case.kind == "capo":
        assert from_cli.simulator_settings.temperature == from_recipe.simulator_settings.temperature == 1.0
        assert from_cli.exchanges == 2


# -- the command's options are the recipe's keys -----------------------------------------------------------

def recipe_keys(cls: type, provided: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> set[str]:
    """Every leaf key a recipe's ``settings:`` accepts, walked independently of the command generator."""
    hints, keys = typing.get_type_hints(cls), set()
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_") or f.name in provided:
            continue
        arms = [hints[f.name], *typing.get_args(hints[f.name])]
        nested = next((a for a in arms if dataclasses.is_dataclass(a)), None)
        keys |= recipe_keys(nested, (), (*prefix, f.name)) if nested else {".".join((*prefix, f.name))}
    return keys


def _click(words: list[str]) -> Any:
    command = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    return command


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_a_commands_options_are_the_recipe_stages_keys(kind: str) -> None:
    stage = load_stage(kind)
    params = {p.name: p for p in _click(COMMANDS[kind]).params}
    settings = {name[2:].replace("__", ".") for name in params if name.startswith("s_")}
    assert settings == recipe_keys(stage.settings, tuple(stage.provided))
    assert {name[3:] for name in params if name.startswith("in_")} == {p.name for p in stage.inputs}
    assert {name[2:] for name in params if name.startswith("r_")} == RUN_OPTIONS
    roles = {name[2:].split("__")[0] for name in params if name.startswith("m_")}  # "" = unprefixed options
    others = [p for p in stage.models if p.name != stage.primary]
    expected = {p.name for p in others}
    if stage.primary or stage.free_models or any(p.shared for p in others):
        expected.add("")  # the primary role's options, and the defaults of the roles that share them
    assert roles == expected
    spec_fields = {f.name for f in dataclasses.fields(ModelSpec)}
    for role in roles - {""}:
        own = {name.split("__")[1] for name in params if name.startswith(f"m_{role}__")}
        assert own == (spec_fields if stage.spec_options else {"model"}), role
    flags = [opt for p in params.values() for opt in p.opts if opt.startswith("--")]
    assert len(flags) == len(set(flags))


def test_every_stage_kind_has_a_command_or_is_the_quickstarts_own() -> None:
    assert set(load_stages()) == set(COMMANDS) | RECIPE_ONLY


# -- every prompt template can be replaced, from a command and from a recipe -------------------------------

OVERRIDES = [  # (case, template file, its replacement, the text the model must then be sent)
    (Case("simulate", {"seeds": "seeds.txt"}, {"user": ("u", ECHO), "assistant": ("a", ECHO)}, ["--lang", "en"],
          {"lang": "en"}), "simulate/ask.en.jinja",
     "{%- macro system() -%}MARK-SIM{%- endmacro -%}{%- macro opener() -%}Go.{%- endmacro -%}", "MARK-SIM"),
    (Case("detect", {"dialogues": "dialogues.jsonl"}, {"judge": ("j", ECHO)}, ["--lang", "en"], {"lang": "en"}),
     "detect/judge.en.jinja", "MARK-DETECT {{ turn }}", "MARK-DETECT"),
    (Case("capo", {"dialogues": "dialogues.jsonl"}, {"negative": ("n", ECHO)}, ["--prompted", "--lang", "en"],
          {"prompted": True, "lang": "en"}), "capo/neglect.en.jinja", "MARK-CAPO {{ query }}", "MARK-CAPO"),
    (Case("score", {"answers": "answers.jsonl"}, {"judge": ("j", ECHO)},
          ["--dimensions", "helpfulness", "--retriever", "bm25", "--lang", "en"],
          {"longreward": {"dimensions": ["helpfulness"], "lang": "en"}, "retriever": "bm25"}),
     "score/helpfulness.en.jinja", "MARK-SCORE {{ query }}", "MARK-SCORE"),
    (Case("bestofn", {"dialogues": "answers.jsonl"}, {"policy": ("p", ECHO), "judge": ("j", ECHO)},
          ["--n", "2", "--min-scored", "2", "--prompts", "last", "--dimensions", "logicality", "--retriever", "bm25",
           "--lang", "en"],
          {"n": 2, "min_scored": 2, "prompts": "last", "longreward": {"dimensions": ["logicality"], "lang": "en"},
           "retriever": "bm25"}), "score/logicality.en.jinja", "MARK-BON {{ query }}", "MARK-BON"),
    (Case("eval_judge", {"answers": "eval-answers.jsonl"}, {"judge": ("j", ECHO)}, ["--lang", "en"],
          {"lang": "en"}), "eval/single.en.jinja", "MARK-EVAL", "MARK-EVAL"),
    (Case("rewrite", {"conversations": "canard.json"}, {"model": ("m", ECHO)}, ["--from", "canard", "--lang", "en"],
          {"input_format": "canard", "lang": "en"}), "rag/rewrite_cot.en.jinja", "MARK-REWRITE", "MARK-REWRITE"),
    (Case("rag", {"conversations": "followups.jsonl", "index": "index"}, {"model": ("m", ECHO)},
          ["--no-rewrite", "--answer-lang", "en"], {"rewrite": False, "answer_lang": "en"}),
     "rag/answer.en.jinja", "MARK-RAG", "MARK-RAG"),
]


@pytest.mark.parametrize(("case", "template", "text", "marker"), OVERRIDES, ids=[o[1] for o in OVERRIDES])
def test_template_dir_replaces_a_prompt_from_the_command_line_and_from_a_recipe(case, template, text, marker, data,
                                                                                tmp_path):
    from turnwise.testing.fake import EchoBackend

    folder = tmp_path / "prompts"
    (folder / template).parent.mkdir(parents=True)
    (folder / template).write_text(text, encoding="utf-8")
    stage = load_stage(case.kind)
    EchoBackend.sent.clear()
    out = tmp_path / "cli" / stage.outputs[0].file
    assert run(*command_line(case, data, out, tmp_path / "cli.sqlite"), "--template-dir", folder) == 0
    assert any(marker in json.dumps(conv) for conv in EchoBackend.sent), "the command's prompts"
    EchoBackend.sent.clear()
    with_dir = dataclasses.replace(case, settings={**case.settings, "template_dir": str(folder)})
    run_plan(make_plan(load_recipe(recipe(with_dir, data, tmp_path / "recipe"))))
    assert any(marker in json.dumps(conv) for conv in EchoBackend.sent), "the recipe stage's prompts"


def test_every_stage_that_renders_a_prompt_takes_a_template_dir(tmp_path):
    from turnwise.train.configs import AskTrainConfig

    takes = {name for name, stage in load_stages().items()
             if "template_dir" in {f.name for f in dataclasses.fields(stage.settings)}}
    assert takes == {"simulate", "ask_data", "train_ask", "detect", "capo", "score", "bestofn", "eval", "eval_judge",
                     "rewrite", "rewrite_eval", "rag"}
    (tmp_path / "simulate").mkdir()
    (tmp_path / "simulate" / "ask.en.jinja").write_text(OVERRIDES[0][2], encoding="utf-8")
    ask = AskTrainConfig(data="d", model="m", output="o", lang="en", template_dir=str(tmp_path))
    assert ask.ask_data().prompt("Hi").system == "MARK-SIM"  # the ask model trains on the prompt it is asked with
