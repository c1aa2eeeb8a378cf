"""The labels TRL's SFTTrainer trains on are exactly turnwise's, at literal positions, for two templates.

A hand-written conversation (system + 3 user + 3 assistant turns) goes through the real path: a file,
:func:`build_sft_trainer`, TRL's dataset preparation and TRL's collator. The tiny models' tokenizers have no
BPE merges, so positions are counted by hand (see tests/unit/test_train_data.py for the counts): ChatML puts
the loss on ``A1<|im_end|>``, ``A2<|im_end|>``, ``A3<|im_end|>`` at 32-34, 57-59, 82-84 of 86 tokens; the
Llama-3 layout on ``A1<|eot_id|>``... at 37-39, 64-66, 91-93 of 94. Neither template has
``{% generation %}`` markers.
"""

from __future__ import annotations

import json

import pytest

from turnwise.data.render import IGNORE_INDEX
from turnwise.train.configs import SFTTrainConfig

pytest.importorskip("trl")

CONVERSATION = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "content": "A2"},
    {"role": "user", "content": "U3"},
    {"role": "assistant", "content": "A3"},
]
EXPECTED = {
    ("chatml", "sft"): (86, [32, 33, 34, 57, 58, 59, 82, 83, 84]),
    ("chatml", "user"): (86, [17, 18, 19, 42, 43, 44, 67, 68, 69]),
    ("llama3", "sft"): (94, [37, 38, 39, 64, 65, 66, 91, 92, 93]),
    ("llama3", "user"): (94, [21, 22, 23, 48, 49, 50, 75, 76, 77]),
}


@pytest.fixture(scope="module")
def byte_models(tmp_path_factory):
    from turnwise.quickstart.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("byte-models")
    return {t: build_tiny_model(root / t, template=t, vocab_size=1, hidden_size=16, num_heads=2, num_kv_heads=1)
            for t in ("chatml", "llama3")}


@pytest.mark.parametrize(("template", "kind"), list(EXPECTED))
def test_trl_trains_on_our_labels(byte_models, tmp_path, template, kind):
    from turnwise.train.sft import build_sft_trainer

    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "c0", "messages": CONVERSATION}) + "\n", encoding="utf-8")
    # "user": the loss on the user turns of the dialogue as it is (`--set train_on=user`); `train ask` flips
    # the dialogue first, see tests/integration/test_train_sft.py.
    cfg = SFTTrainConfig(data=str(data), model=str(byte_models[template]), output=str(tmp_path / "out"),
                         max_length=200, gradient_checkpointing=False, trl_args={"disable_tqdm": True},
                         train_on=["user"] if kind == "user" else ["assistant"])
    trainer, report, _ = build_sft_trainer(cfg)
    length, expected = EXPECTED[(template, kind)]

    row = trainer.train_dataset[0]
    assert len(row["input_ids"]) == length and report.rows == 1
    batch = trainer.data_collator([row])  # exactly what a training step receives
    labels = batch["labels"][0].tolist()
    ids = batch["input_ids"][0].tolist()
    assert [i for i, label in enumerate(labels) if label != IGNORE_INDEX] == expected
    assert all(labels[i] == ids[i] for i in expected)
    eot = trainer.processing_class.eos_token
    role = "U" if kind == "user" else "A"
    spans = [trainer.processing_class.decode(ids[i : i + 3]) for i in expected[::3]]
    assert spans == [f"{role}{k}{eot}" for k in (1, 2, 3)]
