"""Online multi-turn GRPO on a tiny model: TRL's GRPOTrainer, its rollouts played out against the toy world's user.

Two steps on toy-world dialogues, candidates scored by the world's checker at every turn: the rollouts are
records in which each candidate is followed by the world's next question and the policy's answer, every
assistant turn carries its reward, and the reward TRL logged is the mean of the rollouts' rewards. A run
stopped after its first checkpoint resumes from it and keeps the first run's rollouts.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

CHECK = "turnwise.quickstart.world:check_answer"


@pytest.fixture(scope="module")
def dialogues(tmp_path_factory):
    from turnwise.quickstart.world import toy_splits

    root = tmp_path_factory.mktemp("online")
    rows = toy_splits(8, 4, seed=0)["train"][:4]
    path = root / "dialogues.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(dialogues, model, output, **changes):
    from turnwise.config import load_config
    from turnwise.online.grpo import OnlineTrainConfig

    settings = {"data": str(dialogues), "model": str(model), "output": str(output), "max_steps": 2,
                "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 8, "turns": 2,
                "scorer": [CHECK], "logging_steps": 1, "save_steps": 1, "gradient_checkpointing": False,
                "learning_rate": 1e-4, "max_rows": 4, **changes}
    return load_config(OnlineTrainConfig, overrides=settings)


def test_rollouts_show_the_simulator_and_per_turn_rewards(dialogues, tiny_model_dir, tmp_path):
    from turnwise.online.grpo import prompt_rows, train_online
    from turnwise.records import read_stage_output
    from turnwise.train.data import read_items

    result = train_online(config(dialogues, tiny_model_dir, tmp_path / "out"))
    records = read_stage_output(tmp_path / "out" / "rollouts.jsonl")
    conversations, _ = read_items(dialogues, None, skip_invalid=False, max_rows=4)
    prompts = {json.loads(r["meta"])["id"]: json.loads(r["meta"]) for r in prompt_rows(conversations)}
    assert len(records) == 2 * 4  # two steps of 4 candidates (2 prompts × 2 generations)
    for record in records:
        speakers = record["speakers"]
        assert speakers[0] == "policy:candidate"
        assert speakers[1:] in ([], ["user:replay", "policy"])  # the world may have no later question
        assert len(record["turn_rewards"]) == (len(speakers) + 1) // 2
        scored = [r for r in record["turn_rewards"] if r is not None]
        assert record["reward"] == pytest.approx(sum(scored) / len(scored) if scored else 0.0)
        prompt = record["messages"][:record["prompt_length"]]
        assert prompt[-1]["role"] == "user"
        if speakers[1:]:  # the simulator's turn is the dialogue's own next question
            later = prompts[record["meta"]["prompt"]]["future"][0]
            assert record["messages"][record["prompt_length"] + 1]["content"] == later["content"]
            assert record["references"][1] == later["reference"]
    logged = [e["reward"] for e in result.log_history if "reward" in e]
    assert len(logged) == 2
    by_step = {}
    for record in records:
        by_step.setdefault(record["meta"]["step"], []).append(record["reward"])
    assert logged == pytest.approx([sum(v) / len(v) for _, v in sorted(by_step.items())], abs=1e-4)


def test_resume_keeps_the_rollouts_and_continues_from_the_checkpoint(dialogues, tiny_model_dir, tmp_path):
    from turnwise.online.grpo import train_online
    from turnwise.records import read_stage_output

    out = tmp_path / "out"
    train_online(config(dialogues, tiny_model_dir, out, max_steps=1))
    first = read_stage_output(out / "rollouts.jsonl")
    result = train_online(config(dialogues, tiny_model_dir, out, max_steps=2))
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-1")
    records = read_stage_output(out / "rollouts.jsonl")
    assert records[:len(first)] == first and len(records) == len(first) + 4
    assert {r["meta"]["step"] for r in records[len(first):]} == {1}


def test_a_model_writes_the_user_turns_through_the_command_line(dialogues, tiny_model_dir, tmp_path):
    """``turnwise train online --user-mode ask --user-model M``: a model writes the later user turns (the rollouts
    name it), each draft filtered as ``turnwise simulate`` filters them, and a kept turn's reference is the one the
    world's ``user_reference`` gives it (None for a question the world does not ask: the turn goes unscored)."""
    from turnwise.cli.main import main
    from turnwise.quickstart.world import oracle_reference
    from turnwise.records import read_stage_output

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "online", "--data", str(dialogues), "--model", str(tiny_model_dir), "--output", str(out),
              "--user-mode", "ask", "--user-model", str(tiny_model_dir), "--user-max-tokens", "12",
              "--user-reference", "turnwise.quickstart.world:oracle_reference", "--turns", "3", "--scorer", CHECK,
              "--set", "max_steps=1", "--set", "per_device_train_batch_size=4", "--set", "num_generations=2",
              "--set", "max_completion_length=8", "--set", "max_rows=2", "--set", "gradient_checkpointing=false",
              "--set", "save_steps=100"])
    assert exit_info.value.code in (0, None)
    records = read_stage_output(out / "rollouts.jsonl")
    assert len(records) == 4
    wrote = 0
    for record in records:
        assert record["ended_by"] in ("turns", "filter", "user")
        assert sum(record["rejected_user_turns"].values()) <= 3 * 2  # at most 1 + 2 drafts a simulated turn
        for k, speaker in enumerate(record["speakers"]):
            if speaker.startswith("user:"):
                wrote += 1
                assert speaker == f"user:ask:{tiny_model_dir}"
                dialogue = record["messages"][:record["prompt_length"] + k + 1]
                assert record["references"][(k + 1) // 2] == oracle_reference(dialogue)
                assert record["turn_rewards"][(k + 1) // 2] is None or dialogue[-1]["role"] == "user"
    assert wrote or all(record["ended_by"] == "filter" for record in records)
    manifest = json.loads((out / "train.manifest.json").read_text())
    assert manifest["config"]["user_model"] == str(tiny_model_dir)
