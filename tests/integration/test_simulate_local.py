"""Parrot-Ask end to end on a CPU: a tiny ask model trains on flipped dialogues (loss on the real user
turns) and the loss falls; in self-play with a tiny assistant, both in-process, it then writes user-like
turns; and `turnwise simulate` runs with the `local` backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnwise.cli.main import app
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.records import RecordStore, read_stage_output
from turnwise.simulate.ask_data import AskDataConfig, write_ask_dataset
from turnwise.simulate.engine import SimulateConfig, run_simulate
from turnwise.simulate.seeds import read_seeds

pytestmark = pytest.mark.integration

NAMES = ("Alice", "Bob", "Carol", "David")
THINGS = ("the red box", "a small dog", "the old library")
FOLLOW_UPS = ("Why did {p} do it?", "Where is it now?", "And what about {other}?", "How old is it?")


def real_dialogue(i: int) -> dict:
    """A 'real' dialogue: a first question, then 1-3 short follow-ups that lean on the history."""
    name, thing = NAMES[i % 4], THINGS[i % 3]
    pronoun = "she" if name in ("Alice", "Carol") else "he"
    messages = [{"role": "user", "content": f"What did {name} do with {thing}?"},
                {"role": "assistant", "content": f"{name} painted {thing} in {1990 + i}."}]
    for k in range(1 + i % 3):
        question = FOLLOW_UPS[(i + k) % 4].format(p=pronoun, other=NAMES[(i + k + 1) % 4])
        messages += [{"role": "user", "content": question},
                     {"role": "assistant", "content": f"It was {k + 2} years ago."}]
    return {"id": f"d{i}", "messages": messages}


@pytest.fixture(scope="module")
def ask_model(tiny_model_dir, tmp_path_factory):
    """Train the ask model through the SFT trainer on the flipped data set (30 steps)."""
    pytest.importorskip("trl")
    from turnwise.config import load_config
    from turnwise.train.configs import SFTTrainConfig
    from turnwise.train.sft import train_sft

    work = tmp_path_factory.mktemp("ask")
    real = work / "real.jsonl"
    real.write_text("".join(json.dumps(real_dialogue(i)) + "\n" for i in range(48)), encoding="utf-8")
    write_ask_dataset(real, work / "ask.jsonl", AskDataConfig(lang="en", end_marker="[END]"))
    # Loss on the flipped assistant turns = the real user turns (and the end marker).
    cfg = load_config(SFTTrainConfig, overrides={
        "data": str(work / "ask.jsonl"), "model": str(tiny_model_dir), "output": str(work / "model"),
        "train_on": ["assistant"], "max_steps": 30, "learning_rate": 3e-3, "per_device_train_batch_size": 8,
        "logging_steps": 5, "gradient_checkpointing": False, "max_length": 512, "warmup_steps": 0,
        "lr_scheduler_type": "constant", "save_steps": 1000, "trl_args": {"disable_tqdm": True}})
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: extra threads only contend (10x slower on a busy 2-core box)
    try:
        return train_sft(cfg)
    finally:
        torch.set_num_threads(threads)


def test_ask_model_loss_falls(ask_model):
    losses = [entry["loss"] for entry in ask_model.log_history if "loss" in entry]
    assert len(losses) == 6
    assert losses[-1] < losses[0] / 3, losses


async def test_trained_ask_model_asks_like_a_user(ask_model, tiny_model_dir, tmp_path):
    user = load_model(ModelSpec(str(ask_model.output), backend="local", concurrency=8))
    assistant = load_model(ModelSpec(str(tiny_model_dir), backend="local", concurrency=8))
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"What did {n} do with {t}?\n" for n in NAMES for t in THINGS[:2]), encoding="utf-8")
    cfg = SimulateConfig(turns=3, min_turns=1, lang="en", end_marker="[END]", seed=1,
                         user_settings=GenerationSettings(temperature=0.7, max_tokens=16),
                         assistant_settings=GenerationSettings(temperature=0.7, max_tokens=8))
    try:
        with RecordStore(tmp_path / "out.jsonl") as store:
            result = await run_simulate(read_seeds(seeds)[0], user, assistant, store, cfg)
    finally:
        await user.aclose()
        await assistant.aclose()
    records = read_stage_output(tmp_path / "out.jsonl")
    assert len(records) == 8 and {r["status"] for r in records} <= {"ok", "failed"}
    simulated = [t for r in records for t in [m["content"] for m in r["messages"] if m["role"] == "user"][1:]]
    assert simulated, "the ask model wrote no user turn that passed the filters"
    assert sum(t.endswith("?") for t in simulated) >= len(simulated) / 2, simulated
    # Concurrent dialogues shared batches: fewer generate calls than model calls.
    calls = result.user_cost.calls + result.assistant_cost.calls
    assert user.generate_calls + assistant.generate_calls < calls


def test_simulate_command_with_the_local_backend(tiny_model_dir, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    rows = [{"id": f"s{i}", "conversations": [{"from": "human", "value": f"Where is the red box {i}?"},
                                              {"from": "gpt", "value": "In the library."}]} for i in range(4)]
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["simulate", "--seeds", str(seeds), "-o", str(out), "--user-model", str(tiny_model_dir),
            "--assistant-model", str(tiny_model_dir), "--user-backend", "local",
            "--assistant-backend", "local", "--mode", "prompted", "--turns", "2", "--min-turns", "1",
            "--user-max-tokens", "8", "--assistant-max-tokens", "8", "--cache", str(tmp_path / "cache.sqlite"),
            *[x for f in ("too_short", "role_label", "answer", "language") for x in ("--disable-filter", f)]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = read_stage_output(out)
    assert sorted(r["id"] for r in records) == ["s0", "s1", "s2", "s3"]
    manifest = json.loads(Path(tmp_path / "out.manifest.json").read_text())
    assert manifest["stats"]["dialogues"] == 4 and manifest["runs"][-1]["status"] == "complete"
    assert manifest["config"]["models"]["user"]["backend"] == "local"
    again = CliRunner().invoke(app, args)  # everything is done: nothing to call
    assert again.exit_code == 0 and "resuming: 4" in again.output
