"""Shared-prefix DPO computes what TRL's plain DPOTrainer computes, on a real batch of a tiny model.

Four multi-turn pairs (0 to 3 earlier turns, answers of different lengths) go through
``build_dpo_trainer`` both ways: the plain batch is padded (8 rows), the shared one packs two short pairs
into a row. In float32 on the CPU, per-pair log-probs of the policy and of the reference (a different random
model, so that Δ ≠ 0), the loss (sigmoid + λ·SFT), every logged metric and every parameter's gradient agree
to 1e-4, with sdpa (the default kernel, boolean mask) and eager (additive mask), and under LoRA.
"""

from __future__ import annotations

import json

import pytest

from turnwise.config import load_config
from turnwise.train.configs import DPOTrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

TOL = 1e-4
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
ANSWERS = ["She likes the dog.", "好的，我来回答。", "Carol painted a small dog in 1990. It is 3 years old.", "No."]


def pair_record(i: int, turns: int) -> dict:
    prompt = [SYSTEM]
    for t in range(turns):
        prompt += [{"role": "user", "content": f"What did Carol paint in {1990 + i + t}?"},
                   {"role": "assistant", "content": f"Carol painted a small dog in {1990 + i + t}."}]
    prompt.append({"role": "user", "content": "Why does she like it?"})
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": ANSWERS[i % 4]}],
            "rejected": [{"role": "assistant", "content": ANSWERS[(i + 1) % 4]}]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir) -> dict:
    from turnwise.quickstart.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("prefix-dpo")
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(pair_record(i, t)) + "\n" for i, t in enumerate([3, 0, 1, 0])), "utf-8")
    return {"root": root, "data": data, "model": tiny_model_dir, "ref": build_tiny_model(root / "ref", seed=1)}


def build(setup: dict, shared: bool, **overrides):
    from turnwise.train.dpo import build_dpo_trainer

    settings = {"data": str(setup["data"]), "model": str(setup["model"]), "output": str(setup["root"] / "out"),
                "ref_model": str(setup["ref"]), "beta": 0.15, "sft_weight": 0.1, "max_length": 512,
                "per_device_train_batch_size": 4, "gradient_checkpointing": False, "shared_prefix": shared,
                **overrides}
    trainer, _, _ = build_dpo_trainer(load_config(DPOTrainConfig, overrides=settings))
    trainer.model.train()  # TRL logs its metrics under "train" only in training mode
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    return trainer, batch


def step(trainer, batch) -> dict:
    """Per-pair log-probs, the loss, the gradients and the metrics of one step on ``batch``."""
    reference = trainer.ref_model if trainer.ref_model is not None else trainer.model
    policy_logps = trainer.compute_ref_log_probs(trainer.model, batch) if trainer.ref_model is not None else None
    ref_logps = trainer.compute_ref_log_probs(reference, batch)
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return {"policy": policy_logps, "ref": ref_logps, "loss": loss.detach(), "grads": grads, "metrics": metrics}


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("prefix_attention", ["segments", "mask"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_same_logps_loss_metrics_and_gradients_as_trl(setup, attn, prefix_attention):
    plain_trainer, plain_batch = build(setup, False, attn_implementation=attn)
    shared_trainer, shared_batch = build(setup, True, attn_implementation=attn, prefix_attention=prefix_attention)
    assert type(shared_trainer).__name__ == "SharedPrefixDPOTrainer"
    assert plain_batch["input_ids"].shape[0] == 8 and (plain_batch["attention_mask"] == 0).any()  # padded
    # the dense mask packs two short pairs in a row; the segment attention takes one pair per row
    assert shared_batch["shared"]["input_ids"].shape[0] == (3 if prefix_attention == "mask" else 4)
    plain, shared = step(plain_trainer, plain_batch), step(shared_trainer, shared_batch)

    for which in ("policy", "ref"):  # (chosen, rejected), one value per pair
        for p, s in zip(plain[which], shared[which], strict=True):
            assert p.shape == (4,) and max_diff(p, s) < TOL
    delta = (plain["policy"][0] - plain["ref"][0]) - (plain["policy"][1] - plain["ref"][1])
    assert delta.abs().min() > 0.1  # the reference differs from the policy: the loss is not log 2 + λ·NLL
    assert abs(plain["loss"].item() - shared["loss"].item()) < TOL
    assert plain["metrics"].keys() == shared["metrics"].keys()
    for key, value in plain["metrics"].items():
        assert shared["metrics"][key] == pytest.approx(value, abs=TOL), key
    assert plain["grads"].keys() == shared["grads"].keys() and len(plain["grads"]) > 10
    worst = max(max_diff(plain["grads"][n], shared["grads"][n]) for n in plain["grads"])
    assert worst < TOL
    assert all(g.abs().sum() > 0 for g in shared["grads"].values())


@pytest.mark.parametrize("prefix_attention", ["segments", "mask"])
def test_lora_gradients_match(setup, prefix_attention):
    """LoRA, no ref_model: TRL's reference is the adapter-disabled model, through the shared forward too."""
    lora = {"lora": True, "lora_r": 4, "lora_dropout": 0.0, "ref_model": None}
    plain_trainer, plain_batch = build(setup, False, **lora)
    shared_trainer, shared_batch = build(setup, True, prefix_attention=prefix_attention, **lora)
    assert shared_trainer.ref_model is None
    plain, shared = step(plain_trainer, plain_batch), step(shared_trainer, shared_batch)
    for p, s in zip(plain["ref"], shared["ref"], strict=True):
        assert max_diff(p, s) < TOL
    assert abs(plain["loss"].item() - shared["loss"].item()) < TOL
    assert max(max_diff(plain["grads"][n], shared["grads"][n]) for n in plain["grads"]) < TOL


def test_gradient_checkpointing_recomputes_with_the_segments(setup, monkeypatch):
    """The recomputation in the backward pass must see the segment index again, not a plain causal row."""
    from turnwise.train import segment_attention

    calls = []
    original = segment_attention.segment_attention
    monkeypatch.setattr(segment_attention, "segment_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    plain_trainer, plain_batch = build(setup, False)
    shared_trainer, shared_batch = build(setup, True)
    for trainer in (plain_trainer, shared_trainer):  # as Trainer.train() does when activation checkpointing is on
        trainer.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert "rejected" in shared_batch["shared"] and shared_trainer.model.is_gradient_checkpointing
    plain = step(plain_trainer, plain_batch)
    calls.clear()
    shared = step(shared_trainer, shared_batch)
    layers = shared_trainer.model.config.num_hidden_layers
    # step(): policy and reference log-probs; compute_loss: the policy's and the reference's forward; then the
    # backward's recomputation of the policy's layers: 5 per layer (4 if the recomputation ran without segments)
    assert len(calls) == 5 * layers
    assert abs(plain["loss"].item() - shared["loss"].item()) < TOL
    assert max(max_diff(plain["grads"][n], shared["grads"][n]) for n in plain["grads"]) < TOL


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_installed_model_runs_plain_batches_and_saves_clean(tmp_path, tiny_model_dir, kernel):
    """Outside a segment forward the switched model is the old one: a padded batch, generation, a saved config."""
    from transformers import AutoModelForCausalLM

    from turnwise.train import segment_attention

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=kernel)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [5, 6, 7, 0, 0, 0]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    before = model(input_ids=ids, attention_mask=mask).logits
    generated = model.generate(ids[:1, :3], max_new_tokens=4, do_sample=False)
    segment_attention.install(model)
    segment_attention.install(model)  # idempotent
    assert model.config._attn_implementation == f"turnwise_segments_{kernel}"
    assert max_diff(model(input_ids=ids, attention_mask=mask).logits, before) == 0
    assert torch.equal(model.generate(ids[:1, :3], max_new_tokens=4, do_sample=False), generated)
    model.save_pretrained(tmp_path / "saved")
    assert "turnwise" not in (tmp_path / "saved" / "config.json").read_text("utf-8")


@pytest.mark.parametrize("split", [True, False])
def test_segment_attention_equals_the_dense_mask(split):
    """Random q/k/v over four rows (a long pair; two pairs with no history at all; padding in most rows):
    the segment kernels give the dense mask's outputs and gradients, both the split one (the CPU default) and
    the whole-sequence one (other devices), with grouped-query heads."""
    from turnwise.train import segment_attention
    from turnwise.train.prefix_dpo import shared_attention_mask
    from turnwise.train.prefix_layout import PairIds, segment_index, shared_layout

    pairs = [PairIds([5], [6], [7]), PairIds([1, 2, 3, 4, 5, 6], [7, 8], [8]), PairIds([9], [10], [11, 12]),
             PairIds([1, 2, 3], [4], [5, 6, 7])]
    rows, _ = shared_layout(pairs, pad_token_id=0, pack=False)
    segments = segment_attention.SegmentIndex(*(torch.tensor(v) for v in segment_index(rows)))
    pair_ids = torch.tensor([row.pair_ids for row in rows])
    mask = shared_attention_mask(pair_ids, torch.tensor([row.branch_ids for row in rows]))
    real = (pair_ids >= 0)[:, :, None, None]  # padding's output is unused by either layout
    generator = torch.Generator().manual_seed(0)
    shape = (len(rows), 4, pair_ids.shape[1], 8)
    q = torch.randn(shape, generator=generator, requires_grad=True)
    k, v = (torch.randn((shape[0], 2, *shape[2:]), generator=generator, requires_grad=True) for _ in range(2))
    weight = torch.randn(shape[0], shape[2], 4, 8, generator=generator)

    def run(fn):
        for t in (q, k, v):
            t.grad = None
        out = fn()
        (out * weight * real).sum().backward()
        return out * real, [t.grad.clone() for t in (q, k, v)]

    dense, dense_grads = run(lambda: torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=mask, scale=0.3).transpose(1, 2))
    seg, seg_grads = run(lambda: segment_attention.segment_attention(None, q, k, v, segments, scaling=0.3,
                                                                     split=split))
    assert max_diff(dense, seg) < 1e-5
    for a, b in zip(dense_grads, seg_grads, strict=True):
        assert max_diff(a, b) < 1e-5 and a.abs().sum() > 0


def test_segment_attention_refuses_flash_kernels():
    from turnwise.train import segment_attention

    class Config:
        _attn_implementation = "flash_attention_2"

    class Model:
        config = Config()

    with pytest.raises(ValueError, match="not flash_attention_2"):
        segment_attention.install(Model())


def test_mask_by_hand():
    """Pair A of tests/unit/test_prefix_dpo_layout.py, ``1 2 | 3 4 5 | 3 6``, beside a padding token."""
    from turnwise.train.prefix_dpo import shared_attention_mask

    pair = torch.tensor([[0, 0, 0, 0, 0, 0, 0, -1]])
    branch = torch.tensor([[0, 0, 1, 1, 1, 2, 2, -1]])
    expected = [
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0, 1, 0, 0],  # the rejected branch sees the history, not the chosen one
        [1, 1, 0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],  # padding sees itself only (no row of -inf, no NaN)
    ]
    mask = shared_attention_mask(pair, branch)
    assert mask.shape == (1, 1, 8, 8) and mask.dtype == torch.bool
    assert mask[0, 0].int().tolist() == expected
    additive = shared_attention_mask(pair, branch, additive_dtype=torch.float32)
    assert additive[0, 0, 5].tolist()[:3] == [0.0, 0.0, torch.finfo(torch.float32).min]


def test_collator_refuses_a_pair_over_max_length():
    from turnwise.train.prefix_dpo import SharedPrefixCollator

    collator = SharedPrefixCollator(pad_token_id=0, max_length=4)
    with pytest.raises(ValueError, match="exceeds max_length 4"):
        collator([{"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]}])


def test_unsupported_kernel_falls_back_to_trl(setup, caplog):
    from turnwise.train.dpo import _trainer_class

    cfg = load_config(DPOTrainConfig, overrides={"data": "d", "model": "m", "output": "o", "shared_prefix": True,
                                                 "attn_implementation": "flash_attention_2"})
    assert _trainer_class(cfg).__name__ == "DPOTrainer"
    assert "4-D mask" in caplog.text


def test_cli_switch():
    from typer.testing import CliRunner

    from turnwise.cli.main import app

    result = CliRunner().invoke(app, ["train", "dpo", "--help"], env={"COLUMNS": "200"})
    assert "--shared-prefix" in result.output and "--no-shared-prefix" in result.output
