"""Online multi-turn GRPO meets a real model's replies (SmolLM2-135M-Instruct on the CPU): the policy's candidates,
the user turns a prompted SmolLM2 writes after them, and the policy's later answers are real text; the recipe
stage trains one GRPO step, and every rollout record says who wrote each turn and what each turn earned.

The questions are the toy world's under their real names (``check_answer`` rewards a right fact about the entity
meant, so a pretrained model earns some reward); the simulated follow-ups get a reference only when the world asks
them (``oracle_reference``), else they go unscored."""

from __future__ import annotations

import json

import pytest

from turnwise.recipe import load_recipe, make_plan, run_plan

pytest.importorskip("gguf")
pytest.importorskip("trl")
pytestmark = pytest.mark.integration

SMOL = "smollm2-135m-instruct"
QUESTIONS = [("Where is the Nile?", "the Nile: Africa"), ("On which continent is Fuji?", "Fuji: Asia")]


def test_one_grpo_step_with_a_prompted_real_model_as_the_user(tmp_path):
    from turnwise.errors import ConfigError
    from turnwise.models.embedded import gguf_path
    from turnwise.online.rollout import discounted_mean
    from turnwise.quickstart.world import check_answer, oracle_reference
    from turnwise.records import read_stage_output

    try:
        gguf_path(SMOL)
    except ConfigError as exc:
        pytest.skip(str(exc))
    data = tmp_path / "dialogues.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": q}],
                                        "meta": {"references": [ref]}}) + "\n"
                            for i, (q, ref) in enumerate(QUESTIONS)), encoding="utf-8")
    stage = {"name": "online", "kind": "train_online", "inputs": {"data": {"file": str(data)}},
             "models": {"base": "smol", "user": "smol"},
             "settings": {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2,
                          "max_completion_length": 24, "turns": 2, "learning_rate": 1e-6, "logging_steps": 1,
                          "gradient_checkpointing": False, "resume": False, "max_length": 256,
                          "scorer": ["turnwise.quickstart.world:check_answer"], "user_mode": "prompted",
                          "user_max_tokens": 32, "user_regenerations": 1,
                          "user_reference": "turnwise.quickstart.world:oracle_reference",
                          "trl_args": {"save_strategy": "no"}}}
    recipe = {"out_dir": str(tmp_path / "out"), "seed": 0, "stages": [stage],
              "models": {"smol": {"model": SMOL, "backend": "local", "dtype": "float32"}}}
    (tmp_path / "r.yaml").write_text(json.dumps(recipe), encoding="utf-8")
    [outcome] = run_plan(make_plan(load_recipe(tmp_path / "r.yaml"))).outcomes
    assert outcome.status == "ran", outcome
    records = read_stage_output(next((tmp_path / "out").glob("online-*/model/rollouts.jsonl")))
    assert len(records) == 4  # one step: 2 prompts × 2 candidates
    references = dict(QUESTIONS)
    simulated = 0
    for record in records:
        messages, at = record["messages"], record["prompt_length"]
        candidate = messages[at]["content"]
        assert candidate.strip() and record["speakers"][0] == "policy:candidate"
        reference = references[messages[at - 1]["content"]]
        assert record["references"][0] == reference
        assert record["turn_rewards"][0] == float(check_answer(candidate, reference))  # the checker's verdict, 0/1
        for k, speaker in enumerate(record["speakers"][1:], start=1):
            if speaker.startswith("user:"):
                simulated += 1
                assert speaker == f"user:prompted:{SMOL}" and messages[at + k]["content"].strip()
                assert record["references"][1] == oracle_reference(messages[:at + k + 1])
        assert record["reward"] == pytest.approx(discounted_mean(record["turn_rewards"], 1.0))
    assert simulated, "the prompted real model wrote no user turn that passed the filters"
