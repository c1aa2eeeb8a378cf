"""DPO with the SFT term really trains a tiny model on a CPU, and its logged loss is the hand-computed one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from turnwise.config import load_config
from turnwise.train.configs import DPOTrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytestmark = pytest.mark.integration

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
HISTORY = [
    SYSTEM,
    {"role": "user", "content": "Alice found the red box in 1990."},
    {"role": "assistant", "content": "Sure, here is the answer. It is 3 years old."},
    {"role": "user", "content": "Where is it now?"},
]
CHOSEN = "The red box is in the old library."
REJECTED = "Bob likes his garden."


def pair_record(i: int, turns: int) -> dict:
    prompt = [SYSTEM]
    for t in range(turns):
        prompt += [{"role": "user", "content": f"What did Carol paint in {1990 + i + t}?"},
                   {"role": "assistant", "content": f"Carol painted a small dog in {1990 + i + t}."}]
    prompt.append({"role": "user", "content": "Why does she like it?"})
    return {"id": f"p{i}", "prompt": prompt, "chosen": [{"role": "assistant", "content": "She likes the dog."}],
            "rejected": [{"role": "assistant", "content": "好的，我来回答。"}]}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dpo-data") / "pairs.jsonl"
    path.write_text("".join(json.dumps(pair_record(i, i % 4)) + "\n" for i in range(12)), encoding="utf-8")
    return path


def dpo_config(data: Path, model: Path, output: Path, **overrides) -> DPOTrainConfig:
    settings = {"max_steps": 10, "learning_rate": 1e-3, "per_device_train_batch_size": 2, "logging_steps": 1,
                "gradient_checkpointing": False, "max_length": 512, "warmup_steps": 0, "beta": 0.15,
                "sft_weight": 0.1, "trl_args": {"disable_tqdm": True}, **overrides}
    return load_config(DPOTrainConfig, overrides={"data": str(data), "model": str(model), "output": str(output),
                                                  **settings})


def answer_logps(model, tokenizer, prompt: list[dict], answer: str) -> torch.Tensor:
    """log π(a_t | x, a_<t) for each token of the answer (its end-of-turn and the newline after it included)."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True,
                                         return_dict=True)["input_ids"]
    assert full[: len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].float()
    logps = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(full[1:])[:, None])[:, 0]
    return logps[len(prompt_ids) - 1 :]  # logits at position i predict token i + 1


def test_logged_loss_is_the_hand_computed_one(tmp_path, tiny_model_dir, other_model_dir):
    """One pair, one step; the loss TRL logs is computed before the update, so it is the loss at the start:

        Δ        = (Σ log π(c) − Σ log π_ref(c)) − (Σ log π(r) − Σ log π_ref(r))
        expected = −log σ(β·Δ) + λ · (−mean_t log π(c_t))

    with sums and the mean over the answer's tokens. The reference is a different random model, so that Δ
    is not zero (with a copy of the policy it would be, and −log σ(0) = log 2 would prove little).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from turnwise.train.dpo import train_dpo

    data = tmp_path / "one.jsonl"
    record = {"prompt": HISTORY, "chosen": [{"role": "assistant", "content": CHOSEN}],
              "rejected": [{"role": "assistant", "content": REJECTED}]}
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    beta, lam = 0.15, 0.1
    cfg = dpo_config(data, tiny_model_dir, tmp_path / "out", ref_model=str(other_model_dir), max_steps=1,
                     per_device_train_batch_size=1, beta=beta, sft_weight=lam)
    logged = train_dpo(cfg).log_history[0]["loss"]

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    reference = AutoModelForCausalLM.from_pretrained(other_model_dir, dtype=torch.float32).eval()
    pc, pr = (answer_logps(policy, tokenizer, HISTORY, a) for a in (CHOSEN, REJECTED))
    rc, rr = (answer_logps(reference, tokenizer, HISTORY, a) for a in (CHOSEN, REJECTED))
    delta = (pc.sum() - rc.sum()) - (pr.sum() - rr.sum())
    expected = -torch.nn.functional.logsigmoid(beta * delta).item() + lam * (-pc.mean().item())
    assert abs(delta.item()) > 0.5  # the test means something
    assert logged == pytest.approx(expected, abs=1e-4)


def snapshot(model) -> dict:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}


def unchanged(before: dict, model, trainable: bool) -> set[str]:
    after = dict(model.named_parameters())
    return {n for n, (t, p) in before.items() if t == trainable and after[n].detach().equal(p)}


def test_dpo_trains_every_weight_and_reloads(pairs, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from turnwise.train.common import run_trainer
    from turnwise.train.dpo import build_dpo_trainer

    cfg = dpo_config(pairs, tiny_model_dir, tmp_path / "dpo")
    trainer, report, placement = build_dpo_trainer(cfg)
    before, ref_before = snapshot(trainer.model), snapshot(trainer.ref_model)
    result = run_trainer(trainer, cfg, "dpo", report, placement)

    losses = [e["loss"] for e in result.log_history if "loss" in e]
    assert len(losses) == 10 and all(math.isfinite(v) for v in losses)
    assert "rewards/margins" in result.metrics
    assert unchanged(before, trainer.model, trainable=True) == set()
    ref_after = dict(trainer.ref_model.named_parameters())
    assert all(ref_after[n].detach().equal(p) for n, (_, p) in ref_before.items())  # a frozen copy

    tokenizer = AutoTokenizer.from_pretrained(result.output)
    model = AutoModelForCausalLM.from_pretrained(result.output)
    inputs = tokenizer.apply_chat_template(HISTORY, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert model.generate(**inputs, max_new_tokens=4, do_sample=False).shape[1] > inputs["input_ids"].shape[1]
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "| beta | 0.15 |" in card and "| sft_weight | 0.1 |" in card and "rewards/accuracies" in card


def test_lora_reference_is_the_adapter_disabled_model(pairs, tiny_model_dir, tmp_path):
    """With LoRA and no ref_model, TRL keeps no reference copy: it disables the adapter. LoRA's B starts at
    zero, so at the first step policy = reference, every reward is 0 and the loss is log 2 + λ·NLL."""
    from turnwise.train.common import run_trainer
    from turnwise.train.dpo import build_dpo_trainer

    cfg = dpo_config(pairs, tiny_model_dir, tmp_path / "lora", lora=True, lora_r=4, learning_rate=1e-2)
    trainer, report, placement = build_dpo_trainer(cfg)
    assert trainer.ref_model is None
    before = snapshot(trainer.model)
    result = run_trainer(trainer, cfg, "dpo", report, placement)
    first = result.log_history[0]
    assert first["rewards/chosen"] == 0 and first["rewards/margins"] == 0
    assert unchanged(before, trainer.model, trainable=True) == set()
    assert len(unchanged(before, trainer.model, trainable=False)) == sum(not t for t, _ in before.values())
    assert result.log_history[-2]["rewards/margins"] != 0  # the adapter moved the policy away


def test_history_truncation_before_trl(pairs, tiny_model_dir, tmp_path):
    """Pairs with 0-3 earlier turns and a budget that fits about one: the long prompts lose their oldest
    turns, none is dropped, and TRL receives only pairs it will neither drop nor cut."""
    from turnwise.train.data import chat_token_count
    from turnwise.train.dpo import build_dpo_trainer, check_pairs_intact

    cfg = dpo_config(pairs, tiny_model_dir, tmp_path / "trunc", max_length=64, max_steps=1)
    trainer, report, _ = build_dpo_trainer(cfg)
    assert report.rows == 12 and report.shortened > 0 and not report.dropped
    data = trainer.train_dataset
    lengths = [len(p) + max(len(c), len(r)) for p, c, r in zip(data["prompt_ids"], data["chosen_ids"],
                                                                data["rejected_ids"], strict=True)]
    assert len(data) == 12 and max(lengths) <= 64
    batch = trainer.data_collator([data[i] for i in range(len(data))])  # the collator cuts nothing either
    answers = zip(data["chosen_ids"], data["rejected_ids"], strict=True)
    assert batch["completion_mask"].sum().item() == sum(len(c) + len(r) for c, r in answers)
    assert chat_token_count(trainer.processing_class, data[0]["prompt"]) < 64
    with pytest.raises(Exception, match="TRL changed the DPO pairs"):
        check_pairs_intact(data, 12, 10)

    tight = dpo_config(pairs, tiny_model_dir, tmp_path / "tight", max_length=30, max_steps=1)
    with pytest.raises(Exception, match=r"no pair left.*12 × longer than max_length"):
        build_dpo_trainer(tight)


def test_precomputed_reference(pairs, tiny_model_dir, tmp_path):
    from turnwise.train.dpo import train_dpo

    cfg = dpo_config(pairs, tiny_model_dir, tmp_path / "pre", precompute_ref_log_probs=True, max_steps=2)
    result = train_dpo(cfg)
    assert [e["step"] for e in result.log_history if "loss" in e] == [1, 2]
    assert result.log_history[0]["rewards/chosen"] == 0  # the reference was the starting model
