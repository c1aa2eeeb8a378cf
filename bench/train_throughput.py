"""python bench/train_throughput.py

Training throughput, in tokens per second, of turnwise's SFT and DPO paths (TRL underneath), measured on
synthetic multi-turn dialogues through the same ``build_*_trainer`` + ``run_trainer`` calls the
``turnwise train`` commands make.

    python bench/train_throughput.py                      # a tiny Qwen2 on the CPU, fp32 (runs anywhere)
    python bench/train_throughput.py --model-size 0.5b    # a random-init Qwen2 of ~0.5B parameters, bf16, CUDA

Tokens are TRL's ``num_tokens``: the non-padding tokens of every sequence a step trains on (for DPO both
prompt + chosen and prompt + rejected; the frozen reference's forward pass is part of the time, not of the
count). Each step is timed from the log of the one before it, and the figure is the median over steps 2..N
(the first is warm-up: allocation, kernel selection; the median shrugs off a step the OS slowed).
Nothing is downloaded: the tokenizer is turnwise's tiny byte-level BPE, so the 0.5B model sees the same
token counts as the tiny one, only a larger network.

The last line is key=value pairs for scripts::

    sft_tokens_per_s=8123 dpo_tokens_per_s=3456 model=tiny device=cpu steps=30 batch=4 max_length=256
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

# Shapes of Qwen2.5-0.5B (494M parameters with tied embeddings).
QWEN2_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
             "tie_word_embeddings": True, "rope_theta": 1000000.0}
PRESETS = {  # model size -> (steps, per-device batch, max_length, turns per dialogue)
    "tiny": (30, 4, 256, 4),
    "0.5b": (20, 8, 1024, 8),
}


def build_05b(out: Path) -> Path:
    """Save a random-init ~0.5B Qwen2 in bf16 with turnwise's tiny tokenizer (ids fit any vocabulary)."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from turnwise.quickstart.tiny_model import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(template="chatml", model_max_length=QWEN2_05B["max_position_embeddings"])
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (("eos", "<|im_end|>"),
                                                                           ("pad", "<|endoftext|>"))}
    config = Qwen2Config(**QWEN2_05B, eos_token_id=ids["eos"], pad_token_id=ids["pad"], bos_token_id=None)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def write_data(root: Path, turns: int, rows: int) -> tuple[Path, Path]:
    """Dialogues of ``turns`` turns (SFT) and pairs over the same histories (DPO), as JSONL."""
    from turnwise.quickstart.tiny_model import default_corpus

    corpus = default_corpus()[20:]
    sft, dpo = root / "dialogues.jsonl", root / "pairs.jsonl"
    with open(sft, "w", encoding="utf-8") as s, open(dpo, "w", encoding="utf-8") as d:
        for i in range(rows):
            messages = [{"role": "system", "content": "You are a helpful assistant."}]
            for t in range(turns):
                k = (i * turns + t) * 2
                messages += [{"role": "user", "content": corpus[k % len(corpus)]},
                             {"role": "assistant", "content": corpus[(k + 1) % len(corpus)]}]
            s.write(json.dumps({"id": f"d{i}", "messages": messages}) + "\n")
            rejected = corpus[(i * 7 + 3) % len(corpus)]
            d.write(json.dumps({"id": f"p{i}", "prompt": messages[:-1], "chosen": [messages[-1]],
                                "rejected": [{"role": "assistant", "content": rejected}]}) + "\n")
    return sft, dpo


class Clock:
    """A TrainerCallback that notes the time and TRL's token count at every log."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.marks: list[tuple[float, float]] = []

        class _Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "num_tokens" in logs:
                    outer.marks.append((time.perf_counter(), float(logs["num_tokens"])))

        self.callback = _Callback()

    def tokens_per_s(self) -> float:
        """The median over steps 2..N of each step's tokens / seconds (robust to a step the OS slowed)."""
        rates = [(n1 - n0) / (t1 - t0) for (t0, n0), (t1, n1) in zip(self.marks, self.marks[1:], strict=False)]
        return statistics.median(rates)


def measure(kind: str, data: Path, model: Path, out: Path, args: argparse.Namespace, cuda: bool) -> float:
    from transformers import PrinterCallback

    from turnwise.config import load_config
    from turnwise.train.common import run_trainer
    from turnwise.train.configs import DPOTrainConfig, SFTTrainConfig
    from turnwise.train.dpo import build_dpo_trainer
    from turnwise.train.sft import build_sft_trainer

    settings = {"data": str(data), "model": str(model), "output": str(out / kind), "max_steps": args.steps,
                "per_device_train_batch_size": args.batch, "max_length": args.max_length, "logging_steps": 1,
                "save_steps": 10**9, "gradient_checkpointing": False, "learning_rate": 1e-5, "warmup_steps": 0,
                "precision": "bf16" if cuda else "fp32", "device": "cuda" if cuda else "cpu", "resume": False,
                "trl_args": {"disable_tqdm": True}}
    clock = Clock()
    if kind == "sft":
        cfg = load_config(SFTTrainConfig, overrides=settings)
        trainer, report, placement = build_sft_trainer(cfg, callbacks=[clock.callback])
    else:
        cfg = load_config(DPOTrainConfig, overrides=settings)
        trainer, report, placement = build_dpo_trainer(cfg, callbacks=[clock.callback])
    trainer.remove_callback(PrinterCallback)  # no dict per step on stdout
    run_trainer(trainer, cfg, kind, report, placement)
    rate = clock.tokens_per_s()
    print(f"{kind}: {report.rows} rows, longest {report.max_tokens} tokens, {placement.describe()}: "
          f"{rate:,.0f} tokens/s (median of steps 2-{args.steps})")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--model-size", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, help="optimizer steps per trainer (default: by model size)")
    parser.add_argument("--batch", type=int, help="rows per step (default: by model size)")
    parser.add_argument("--max-length", type=int, help="tokens per sequence at most (default: by model size)")
    args = parser.parse_args()
    steps, batch, max_length, turns = PRESETS[args.model_size]
    args.steps, args.batch = args.steps or steps, args.batch or batch
    args.max_length = args.max_length or max_length
    logging.getLogger("transformers").setLevel(logging.ERROR)

    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside transformers/TRL
    cuda = args.model_size != "tiny"
    if cuda and not torch.cuda.is_available():
        raise SystemExit(f"--model-size {args.model_size} needs a CUDA GPU; torch sees none")
    with tempfile.TemporaryDirectory(prefix="turnwise-bench-") as tmp:
        root = Path(tmp)
        if cuda:
            model = build_05b(root / "model")
        else:
            from turnwise.quickstart.tiny_model import build_tiny_model

            model = build_tiny_model(root / "model")
        sft_data, dpo_data = write_data(root, turns, rows=args.steps * args.batch)
        sft = measure("sft", sft_data, model, root, args, cuda)
        dpo = measure("dpo", dpo_data, model, root, args, cuda)
    device = torch.cuda.get_device_name(0).replace(" ", "_") if cuda else "cpu"
    print(f"sft_tokens_per_s={sft:.0f} dpo_tokens_per_s={dpo:.0f} model={args.model_size} device={device} "
          f"steps={args.steps} batch={args.batch} max_length={args.max_length}")


if __name__ == "__main__":
    main()
