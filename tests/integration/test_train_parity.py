"""`turnwise train sft|ask|dpo|rm` and the training stages of a recipe are one stage: the same settings reach the same
adapter, which trains the same weights (a tiny model, a few steps on a CPU, seeded) and keeps the same rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from turnwise.cli.main import main
from turnwise.recipe import load_recipe, make_plan, run_plan
from turnwise.stage.settings import plain_settings
from turnwise.stage.table import STAGES, load_stage

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

CLI = ["--max-steps", "2", "--learning-rate", "1e-3", "--per-device-train-batch-size", "2",
       "--no-gradient-checkpointing", "--max-length", "256", "--warmup-steps", "0", "--seed", "7",
       "--set", "trl_args={save_strategy: 'no', disable_tqdm: true}"]
SETTINGS = {"max_steps": 2, "learning_rate": 1e-3, "per_device_train_batch_size": 2, "gradient_checkpointing": False,
            "max_length": 256, "warmup_steps": 0, "seed": 7, "trl_args": {"save_strategy": "no", "disable_tqdm": True}}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def answer(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train-parity")
    dialogues = [{"id": f"d{i}", "messages": [user(f"Where is box {i}?"), answer(f"Box {i} is in room {i + 3}."),
                                              user("And the key?"), answer(f"The key is under box {i}.")]}
                 for i in range(6)]
    pairs = [{"id": f"p{i}", "prompt": [user(f"Where is box {i}?")], "chosen": [answer(f"In room {i + 3}.")],
              "rejected": [answer("I do not know.")], "meta": {"strategy": "neglect"}} for i in range(6)]
    for name, rows in (("dialogues.jsonl", dialogues), ("pairs.jsonl", pairs)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize(("kind", "words", "inputs", "extra_cli", "extra"), [
    ("train_sft", ["train", "sft"], "dialogues.jsonl", [], {}),
    ("train_ask", ["train", "ask"], "dialogues.jsonl", ["--lang", "en", "--end-marker", "[END]"],
     {"lang": "en", "end_marker": "[END]"}),
    ("train_dpo", ["train", "dpo"], "pairs.jsonl", ["--beta", "0.2", "--sft-weight", "0.5", "--only", "neglect"],
     {"beta": 0.2, "sft_weight": 0.5, "only": ["neglect"]}),
    ("train_rm", ["train", "rm"], "pairs.jsonl", ["--heldout-fraction", "0.2"], {"heldout_fraction": 0.2}),
])
def test_a_training_command_and_its_recipe_stage_train_the_same_weights(kind, words, inputs, extra_cli, extra, data,
                                                                          tiny_model_dir, tmp_path, monkeypatch):
    seen: list[Any] = []
    stage = load_stage(kind)

    def spy(ctx: Any) -> Any:
        seen.append(ctx.settings)
        return stage.run(ctx)

    monkeypatch.setitem(STAGES, kind, dataclasses.replace(stage, run=spy))
    out = tmp_path / "cli-model"
    with pytest.raises(SystemExit) as exc:
        main([*words, "--data", str(data / inputs), "--model", str(tiny_model_dir), "--output", str(out), *CLI,
              *extra_cli])
    assert exc.value.code in (0, None)
    port = stage.inputs[0].name
    recipe = {"out_dir": str(tmp_path / "recipe"), "models": {"base": {"model": str(tiny_model_dir)}},
              "stages": [{"name": "t", "kind": kind, "inputs": {port: {"file": str(data / inputs)}},
                          "models": {"base": "base"}, "settings": {**SETTINGS, **extra}}]}
    (tmp_path / "r.yaml").write_text(json.dumps(recipe), encoding="utf-8")
    [outcome] = run_plan(make_plan(load_recipe(tmp_path / "r.yaml"))).outcomes
    from_cli, from_recipe = seen
    assert plain_settings(from_cli, tuple(stage.provided)) == plain_settings(from_recipe, tuple(stage.provided))
    a, b = weights(out), weights(outcome.stage.dir / "model")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    manifests = [_no_paths(json.loads((folder / "train.manifest.json").read_text())["data"])
                 for folder in (out, outcome.stage.dir / "model")]
    assert manifests[0] == manifests[1] and manifests[0]["rows"] > 0  # the same rows kept, shortened, dropped


def _no_paths(value: Any) -> Any:
    """A data report without its file paths (one run wrote into the command's folder, the other a stage's)."""
    if isinstance(value, dict):
        return {k: _no_paths(v) for k, v in value.items() if k != "path"}
    return value
