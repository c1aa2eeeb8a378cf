"""Recipe parsing and validation: every problem is named by file and key, before anything runs; every shipped
recipe loads through the real parser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from turnwise.config import load_config, read_yaml
from turnwise.errors import ConfigError
from turnwise.models.base import GenerationSettings
from turnwise.recipe import load_recipe
from turnwise.stage.settings import build_settings, plain
from turnwise.train.configs import AskTrainConfig, DPOTrainConfig, SFTTrainConfig

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))

BASE = """
out_dir: {out}
models:
  sft: {{from_stage: train}}
  judge: {{model: gpt-4o, base_urls: ["http://127.0.0.1:9/v1"], api_key_env: OPENAI_API_KEY}}
stages:
  - name: data
    kind: toy_data
    settings: {{train_dialogues: 4, held_out: 2}}
  - name: tiny
    kind: tiny_model
  - name: train
    kind: train_dpo
    inputs: {{pairs: ["data:train"]}}
    models: {{base: tiny_base}}
    settings: {{beta: 0.1, max_steps: 2}}
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def recipe_text(tmp_path: Path, stages: str = "", models: str = "") -> str:
    return (f"out_dir: {tmp_path / 'out'}\nmodels:\n  base: {{from_stage: tiny}}\n{models}"
            "stages:\n  - {name: data, kind: toy_data}\n  - {name: tiny, kind: tiny_model}\n" + stages)


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_recipe(path, **kwargs)
    return str(info.value)


def test_a_valid_recipe_resolves_references_models_and_settings(tmp_path):
    stages = ("  - name: sft\n    kind: train_sft\n    inputs: {data: 'data:train'}\n    models: {base: base}\n"
              "    settings: {max_steps: 3, lr_scheduler_type: constant}\n"
              "  - {name: pairs, kind: generate, inputs: {conversations: data}, models: {model: base}}\n")
    path = write(tmp_path, recipe_text(tmp_path, stages))
    recipe = load_recipe(path)
    assert [s.name for s in recipe.stages] == ["data", "tiny", "sft", "pairs"]
    sft = recipe.stage("sft")
    assert sft.inputs["data"][0].stage == "data" and sft.inputs["data"][0].output == "train"
    assert recipe.stage("pairs").inputs["conversations"][0].output == "train"  # a bare name: the main output
    # no seed: in the recipe, so the stage keeps its own default seed, the one `turnwise train sft` has
    assert (sft.settings.max_steps, sft.settings.seed, sft.settings.model) == (3, 42, "<models.base>")
    assert recipe.models["base"].from_stage == "tiny" and recipe.out_dir == tmp_path / "out"
    seeded = load_recipe(path, sets=["seed=5"])
    assert seeded.stage("sft").settings.seed == 5 and seeded.stage("data").settings.seed == 5


def test_a_path_that_names_no_stage_is_a_file(tmp_path):
    path = write(tmp_path, recipe_text(tmp_path, "  - {name: g, kind: generate, inputs: {conversations: my/data.jsonl},"
                                                 " models: {model: base}}\n"))
    ref = load_recipe(path).stage("g").inputs["conversations"][0]
    assert (ref.stage, ref.file) == (None, "my/data.jsonl")


@pytest.mark.parametrize(("stages", "expected"), [
    ("  - {name: x, kind: trian_sft}\n", "stages[2] x: kind: unknown kind 'trian_sft'"),
    ("  - {name: x, kind: train_dpo, inputs: {pairs: data}, models: {base: base}, settings: {betta: 0.2}}\n",
     "stages[2] x: settings: unknown key 'betta' (did you mean 'beta'?)"),
    ("  - {name: x, kind: train_dpo, inputs: {pairs: data}, models: {base: base}, settings: {beta: -1}}\n",
     "stages[2] x: settings: beta must be positive"),
    ("  - {name: x, kind: train_dpo, inputs: {pairs: data}, models: {base: base}, settings: {max_steps: lots}}\n",
     "stages[2] x: settings.max_steps: expected int, got 'lots'"),
    ("  - {name: x, kind: train_dpo, inputs: {pairs: data}, models: {base: base}, settings: {output: o}}\n",
     "key 'output' is set by the runner"),
    ("  - {name: x, kind: train_sft, inputs: {dat: data}, models: {base: base}}\n",
     "stages[2] x: inputs: unknown input 'dat' for kind train_sft; inputs: data"),
    ("  - {name: x, kind: train_sft, models: {base: base}}\n", "stages[2] x: inputs: missing input 'data'"),
    ("  - {name: x, kind: train_sft, inputs: {data: 'data:trian'}, models: {base: base}}\n",
     "stages[2] x: inputs.data: stage data (toy_data) has no output 'trian'; outputs: train, prefs, dev, named, "
     "held_out, scripts"),
    ("  - {name: x, kind: train_sft, inputs: {data: [data, tiny]}, models: {base: base}}\n",
     "stages[2] x: inputs.data: takes one stage or file, not a list"),
    ("  - {name: x, kind: train_sft, inputs: {data: y}, models: {base: base}}\n  - {name: y, kind: toy_data}\n",
     "stages[2] x: inputs.data: stage 'y' comes later in the recipe"),
    ("  - {name: x, kind: train_sft, inputs: {data: data}, models: {base: nope}}\n",
     "stages[2] x: models.base: no model named 'nope'"),
    ("  - {name: x, kind: train_sft, inputs: {data: data}, models: {bse: base}}\n",
     "stages[2] x: models.bse: unknown model role 'bse' for kind train_sft; roles: base"),
    ("  - {name: x, kind: train_sft, inputs: {data: data}}\n", "stages[2] x: models: missing model role 'base'"),
    ("  - {name: data, kind: toy_data}\n", "stages[2] data: name 'data' is used by an earlier stage"),
    ("  - {name: 'a:b', kind: toy_data}\n", "stages[2] a:b: name: a letter, then letters"),
    ("  - {name: x, kind: toy_data, setting: {}}\n", "stages[2] x: unknown key 'setting'"),
    ("  - {name: x, kind: bestofn, inputs: {dialogues: data}, models: {policy: base}}\n",
     "stages[2] x: settings.scorer: longreward needs a judge model"),
    ("  - {name: x, kind: eval, inputs: {benchmark: 'data:scripts'}, models: {M: base}}\n",
     "stages[2] x: models: missing model role 'judge'"),
])
def test_each_problem_names_the_file_and_the_key(tmp_path, stages, expected):
    path = write(tmp_path, recipe_text(tmp_path, stages))
    message = error_of(path)
    assert message.startswith(f"{path}: ") and expected in message, message


def test_a_model_from_a_stage_that_writes_none_is_refused(tmp_path):
    models = "  data_model: {from_stage: data}\n"
    path = write(tmp_path, recipe_text(tmp_path, "  - {name: g, kind: generate, inputs: {conversations: data},"
                                                 " models: {model: data_model}}\n", models))
    assert "model 'data_model' comes from stage 'data' (toy_data), which writes no model" in error_of(path)


def test_a_model_from_no_stage_is_refused_even_unused(tmp_path):
    path = write(tmp_path, recipe_text(tmp_path, models="  lost: {from_stage: trian}\n"))
    assert "models.lost: from_stage 'trian' is not a stage of this recipe" in error_of(path)


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, recipe_text(tmp_path, "  - {name: x, kind: nope}\n  - {name: y, kind: toy_data, "
                                                 "settings: {held: 1}}\n") + "extra: 1\n")
    lines = error_of(path).splitlines()
    assert len(lines) == 3 and all(line.startswith(str(path)) for line in lines)
    assert "unknown key 'extra'" in lines[0] and "kind: unknown kind 'nope'" in lines[1]
    assert "stages[3] y: settings: unknown key 'held' (did you mean 'held_out'?)" in lines[2]


def test_fast_and_set_merge_over_the_settings(tmp_path):
    text = recipe_text(tmp_path, "  - {name: sim, kind: simulate, inputs: {seeds: 'data:train'}, models: {user: base, "
                                 "assistant: base}, settings: {turns: 8, user_settings: {temperature: 0.5, "
                                 "max_tokens: 64}}}\n")
    text += "fast:\n  out_dir: elsewhere\n  stages:\n    sim: {turns: 2, user_settings: {max_tokens: 8}}\n"
    path = write(tmp_path, text)
    assert load_recipe(path).stage("sim").settings.turns == 8
    fast = load_recipe(path, fast=True, sets=["sim.user_settings.top_p=0.9", "seed=7"])
    sim = fast.stage("sim").settings
    assert (sim.turns, fast.out_dir, fast.seed, sim.seed) == (2, Path("elsewhere"), 7, 7)
    assert sim.user_settings == GenerationSettings(temperature=0.5, top_p=0.9, max_tokens=8)


def test_bad_fast_blocks_and_sets_are_refused(tmp_path):
    path = write(tmp_path, recipe_text(tmp_path) + "fast:\n  stages:\n    nope: {x: 1}\n")
    assert "fast.stages.nope: no stage named 'nope'" in error_of(path)
    good = write(tmp_path, recipe_text(tmp_path), "good.yaml")
    with pytest.raises(ConfigError, match="has no stage named 'tiyn'"):
        load_recipe(good, sets=["tiyn.hidden_size=8"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_recipe(good, sets=["tiny.hidden_size"])


def test_nested_settings_coerce_and_report_their_path():
    from turnwise.capo.stage import CapoConfig as CapoSettings

    cfg = build_settings(CapoSettings, {"mix": {"neglect": "2", "hallucination": 0, "misunderstanding": 1},
                                        "settings": {"max_tokens": "16", "stop": ["\n"]}}, "s")
    assert dict(cfg.mix) == {"neglect": 2.0, "hallucination": 0.0, "misunderstanding": 1.0}
    # the other sampling settings are the field's documented defaults (temperature 0.7), not GenerationSettings' own
    assert cfg.settings == GenerationSettings(temperature=0.7, max_tokens=16, stop=("\n",))
    assert plain(cfg)["settings"]["stop"] == ["\n"]
    with pytest.raises(ConfigError, match=r"^s\.settings: unknown key 'max_token' \(did you mean 'max_tokens'\?\)"):
        build_settings(CapoSettings, {"settings": {"max_token": 1}}, "s")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_loads_through_the_real_parser(path):
    """Run recipes (a top-level stages:) load, plain and --fast; the others are trainer configs."""
    data = read_yaml(path)
    if "stages" in data:
        for fast in (False, True):
            recipe = load_recipe(path, fast=fast)
            assert recipe.stages and recipe.description
        header = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
        assert any(f"turnwise run recipes/{path.name}" in line for line in header), "the header says how to run it"
        return
    cls = DPOTrainConfig if "dpo" in path.name else AskTrainConfig if "ask" in path.name else SFTTrainConfig
    assert path.name.startswith("train-")
    load_config(cls, path, overrides={"data": "d", "model": "m", "output": "o"})


def test_the_shipped_run_recipes_are_there():
    names = {p.name for p in RECIPES if "stages" in yaml.safe_load(p.read_text(encoding="utf-8"))}
    assert names >= {"quickstart.yaml", "qwen2.5-0.5b-instruct.yaml", "qwen2.5-0.5b-instruct-multigpu.yaml"}
