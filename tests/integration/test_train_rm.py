"""`turnwise train rm` on a tiny model, and the trained reward model as best-of-N's scorer (``rm:DIR``).

The pairs are separable by construction (the chosen answer names the year the history asked about, the
rejected one declines), so a tiny model learns them in a few steps: the held-out pair accuracy must be high,
be stated in the model card and the manifest, and best-of-N scored by the model must run end to end.
"""

from __future__ import annotations

import json
import random

import pytest

from turnwise.cli.main import main

pytest.importorskip("trl")


def run(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)


def pair(i: int, rng: random.Random) -> dict:
    name, thing, year = rng.choice(["Carol", "Dan", "Eve", "Frank"]), rng.choice(["a dog", "a boat"]), 1980 + i
    prompt = [{"role": "user", "content": f"What did {name} paint in {year}?"},
              {"role": "assistant", "content": f"{name} painted {thing} in {year}."},
              {"role": "user", "content": "When was that?"}]
    good, bad = (f"It was in {year}.", "I do not know.") if i % 2 else (f"That was {year}.", "No idea, sorry.")
    return {"id": f"p{i}", "prompt": prompt, "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": bad}]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("rm")
    rng = random.Random(0)
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(pair(i, rng)) + "\n" for i in range(60)), encoding="utf-8")
    out = root / "rm"
    run(["train", "rm", "--data", str(data), "--model", str(tiny_model_dir), "--output", str(out),
          "--set", "max_steps=30", "--set", "learning_rate=1e-3", "--set", "heldout_fraction=0.25",
          "--set", "per_device_train_batch_size=8", "--set", "logging_steps=5",
          "--set", "gradient_checkpointing=false"])
    return {"root": root, "out": out, "data": data, "model": tiny_model_dir}


def test_heldout_accuracy_is_measured_and_stated(trained):
    manifest = json.loads((trained["out"] / "train.manifest.json").read_text(encoding="utf-8"))
    metrics = manifest["metrics"]
    assert metrics["heldout_pairs"] == 15  # 25% of 60, a seeded draw
    assert metrics["heldout_pair_accuracy"] >= 0.8
    low, high = metrics["heldout_pair_accuracy_ci95"]
    assert low <= metrics["heldout_pair_accuracy"] <= high
    card = (trained["out"] / "README.md").read_text(encoding="utf-8")
    assert "reward model" in card and f"| heldout_pair_accuracy | {metrics['heldout_pair_accuracy']:g} |" in card
    config = json.loads((trained["out"] / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["Qwen2ForSequenceClassification"] and len(config["id2label"]) == 1


def test_rewards_order_the_answers_as_trained(trained):
    from turnwise.score.reward_model import RewardModel

    model = RewardModel.load(str(trained["out"]))
    prompt = pair(101, random.Random(1))["prompt"]
    good, bad = model.rewards([[*prompt, {"role": "assistant", "content": "It was in 2081."}],
                               [*prompt, {"role": "assistant", "content": "I do not know."}]])
    assert good > bad
    # the same chats in one batch or one by one: padding does not change a reward
    alone = model.rewards([[*prompt, {"role": "assistant", "content": "I do not know."}]])
    assert alone[0] == pytest.approx(bad, abs=1e-4)


def test_best_of_n_scored_by_the_reward_model(trained, tmp_path):
    dialogues = tmp_path / "dialogues.jsonl"
    rng = random.Random(2)
    dialogues.write_text("".join(json.dumps({"id": f"d{i}", "messages": [*p["prompt"], *p["chosen"]]}) + "\n"
                                 for i, p in enumerate(pair(i, rng) for i in range(3))), encoding="utf-8")
    out = tmp_path / "bon.jsonl"
    run(["bestofn", str(dialogues), str(out), "--model", str(trained["model"]), "--backend", "local",
          "--scorer", f"rm:{trained['out']}", "--prompts", "every_turn", "--set", "n=3", "--set", "min_scored=2",
          "--set", "min_margin=0", "--set", "settings.max_tokens=8"])
    records = [json.loads(line) for line in (tmp_path / "bon.records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6  # two user turns per dialogue
    for record in records:
        rewards = [c["dimensions"]["reward"]["details"]["reward"] for c in record["candidates"]]
        scores = [c["scores"]["reward"] for c in record["candidates"]]
        assert len(rewards) == 3 and all(0 < s < 10 for s in scores)
        # 10·σ(r) keeps r's order (rounded to 4 decimals, near-equal rewards may tie)
        assert all(scores[i] <= scores[j] for i in range(3) for j in range(3) if rewards[i] < rewards[j])
    manifest = json.loads((tmp_path / "bon.manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["scorer"]["name"] == "rm"


def test_a_missing_or_wrong_reward_model_is_a_clear_error(tmp_path, tiny_model_dir):
    from turnwise.errors import ConfigError
    from turnwise.score.mix import check_specs
    from turnwise.score.reward_model import RewardModel

    with pytest.raises(ConfigError, match="no such folder"):
        check_specs([f"rm:{tmp_path / 'none'}"])
    with pytest.raises(ConfigError, match="one output"):
        RewardModel.load(str(tiny_model_dir))  # a causal LM: its head gets the default two labels


def test_the_heldout_draw_keeps_a_prompts_pairs_together():
    from turnwise.train.rm import split_heldout, wilson

    rows = [{"prompt": [{"role": "user", "content": f"q{i // 3}"}], "chosen": [], "rejected": [], "n": i}
            for i in range(30)]  # 10 prompts, 3 pairs each
    train, held = split_heldout(rows, 0.2, seed=1)
    assert len(held) == 6 and len(train) == 24
    assert not {r["prompt"][0]["content"] for r in held} & {r["prompt"][0]["content"] for r in train}
    assert split_heldout(rows, 0.2, seed=1) == (train, held)  # seeded
    assert split_heldout(rows, 0.0, seed=1) == (rows, [])
    assert split_heldout(rows[:3], 0.5, seed=1) == (rows[:3], [])  # one prompt: nothing to hold out
    low, high = wilson(15, 15)
    assert high == 1.0 and round(low, 4) == 0.7961  # the 95% Wilson interval of 15/15, by the formula
