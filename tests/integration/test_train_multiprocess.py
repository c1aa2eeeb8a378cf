"""Two-process training launched for real: `turnwise train sft|dpo --accelerate ddp --num-processes 2` on the CPU
(two processes over gloo) logs the same loss, step by step, as one process with the same global batch; a run
cut short resumes from its checkpoint and goes on with the same losses.

Tolerance: 1e-4 absolute on each logged loss (float32; the two runs differ only in the order of the gradient
all-reduce's additions, which moved nothing beyond the sixth decimal when measured).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from turnwise.config import load_config
from turnwise.train.configs import DPOTrainConfig, SFTTrainConfig

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

TOLERANCE = 1e-4
COMMON = {"learning_rate": 1e-3, "gradient_accumulation_steps": 1, "logging_steps": 1, "warmup_steps": 0,
          "gradient_checkpointing": False}


def _sft_rows() -> list[dict]:
    rows = []
    for i in range(32):
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        for t in range(1 + i % 4):
            messages += [{"role": "user", "content": f"What did person {i} paint in {1990 + t}?" if t == 0 else
                          "And then?"}, {"role": "assistant", "content": f"A small boat in {1990 + i + t}."}]
        rows.append({"id": f"d{i}", "messages": messages})
    return rows


def _dpo_rows() -> list[dict]:
    rows = []
    for i in range(16):
        prompt = [{"role": "system", "content": "You are a helpful assistant."}]
        for t in range(i % 4):
            prompt += [{"role": "user", "content": f"What did Carol paint in {1990 + i + t}?"},
                       {"role": "assistant", "content": f"Carol painted a small dog in {1990 + i + t}."}]
        prompt.append({"role": "user", "content": "Why does she like it?"})
        rows.append({"id": f"p{i}", "prompt": prompt, "chosen": [{"role": "assistant", "content": "She likes dogs."}],
                     "rejected": [{"role": "assistant", "content": "Bob likes his garden."}]})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _launch(kind: str, data: Path, model: Path, output: Path, settings: dict) -> dict:
    """`turnwise train KIND ... --accelerate ddp --num-processes 2` as a user runs it; returns the manifest."""
    options = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items() if not isinstance(v, bool)]
    options += [f"--{'' if v else 'no-'}{k.replace('_', '-')}" for k, v in settings.items() if isinstance(v, bool)]
    cmd = [sys.executable, "-m", "turnwise.cli.main", "train", kind, "--data", str(data), "--model", str(model),
           "--output", str(output), "--accelerate", "ddp", "--num-processes", "2", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    log = (output / "launch.log").read_text() if (output / "launch.log").exists() else ""
    assert done.returncode == 0, done.stderr[-2000:] + log[-3000:]
    return json.loads((output / "train.manifest.json").read_text())


def _losses(history: list[dict]) -> list[float]:
    return [entry["loss"] for entry in history if "loss" in entry]


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= TOLERANCE for x, y in zip(a, b, strict=True))


def test_sft_two_processes_match_one_and_resume(tmp_path, tiny_model_dir):
    from turnwise.train.sft import train_sft

    data = _write(tmp_path / "dialogues.jsonl", _sft_rows())
    settings = {**COMMON, "max_steps": 6, "save_steps": 3, "max_length": 256}
    one = train_sft(load_config(SFTTrainConfig, overrides={
        "data": str(data), "model": str(tiny_model_dir), "output": str(tmp_path / "one"),
        "per_device_train_batch_size": 4, "trl_args": {"disable_tqdm": True}, **settings}))
    expected = _losses(one.log_history)
    assert len(expected) == 6 and expected[-1] < expected[0]

    out = tmp_path / "two"
    manifest = _launch("sft", data, tiny_model_dir, out, {**settings, "per_device_train_batch_size": 2})
    assert manifest["distributed"] == {"type": "MULTI_CPU", "processes": 2}
    assert _close(_losses(manifest["log_history"]), expected)

    # Cut short after step 3: only the first checkpoint is left; the same command resumes from it.
    shutil.rmtree(out / "checkpoint-6")
    (out / "model.safetensors").unlink()
    manifest = _launch("sft", data, tiny_model_dir, out, {**settings, "per_device_train_batch_size": 2})
    assert manifest["runs"][-1]["status"] == "complete"
    assert manifest["resumed_from"].endswith("checkpoint-3")
    assert _close(_losses(json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]),
                  expected)
    assert (out / "model.safetensors").exists()


def test_dpo_two_processes_match_one(tmp_path, tiny_model_dir):
    from turnwise.train.dpo import train_dpo

    data = _write(tmp_path / "pairs.jsonl", _dpo_rows())
    settings = {**COMMON, "max_steps": 4, "save_steps": 4, "max_length": 512, "beta": 0.15, "sft_weight": 0.1}
    one = train_dpo(load_config(DPOTrainConfig, overrides={
        "data": str(data), "model": str(tiny_model_dir), "output": str(tmp_path / "one"),
        "per_device_train_batch_size": 4, "trl_args": {"disable_tqdm": True}, **settings}))
    expected = _losses(one.log_history)
    assert len(expected) == 4 and expected[-1] < expected[0]

    manifest = _launch("dpo", data, tiny_model_dir, tmp_path / "two", {**settings, "per_device_train_batch_size": 2})
    assert manifest["distributed"] == {"type": "MULTI_CPU", "processes": 2}
    assert _close(_losses(manifest["log_history"]), expected)


@pytest.mark.slow
def test_lora_on_the_embedded_real_model_two_processes_match_one(tmp_path):
    """LoRA on SmolLM2-135M (the embedded real model), 2 CPU processes against 1 (about a minute).

    ``lora_dropout: 0``: with dropout each process draws its own masks, so from the second step on the two runs
    sample different dropouts (measured: up to 0.004 apart at step 4 with the default 0.05).
    """
    pytest.importorskip("gguf")
    from turnwise.errors import ConfigError
    from turnwise.models.embedded import gguf_path, materialize

    try:
        gguf_path("smollm2-135m-instruct")
    except ConfigError as exc:
        pytest.skip(str(exc))
    model = materialize("smollm2-135m-instruct")
    from turnwise.train.sft import train_sft

    data = _write(tmp_path / "dialogues.jsonl", _sft_rows())
    settings = {**COMMON, "max_steps": 4, "save_steps": 4, "max_length": 256, "lora": True, "lora_dropout": 0.0}
    one = train_sft(load_config(SFTTrainConfig, overrides={
        "data": str(data), "model": str(model), "output": str(tmp_path / "one"),
        "per_device_train_batch_size": 4, "trl_args": {"disable_tqdm": True}, **settings}))
    manifest = _launch("sft", data, model, tmp_path / "two", {**settings, "per_device_train_batch_size": 2})
    assert manifest["distributed"] == {"type": "MULTI_CPU", "processes": 2}
    assert _close(_losses(manifest["log_history"]), _losses(one.log_history))
