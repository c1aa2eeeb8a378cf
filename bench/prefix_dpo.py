"""python bench/prefix_dpo.py

Shared-prefix DPO against TRL's plain DPO: the same pairs, the same steps, the same ``build_dpo_trainer`` +
``run_trainer`` calls ``turnwise train dpo`` makes, once with ``shared_prefix: false`` and once with ``true``.

    python bench/prefix_dpo.py                      # a Qwen2 of hidden 256, 4 layers on the CPU, fp32
    python bench/prefix_dpo.py --model-size 0.5b    # a random-init Qwen2 of ~0.5B parameters, bf16, CUDA
    python bench/prefix_dpo.py --turns 4            # longer histories (the default: history ≈ 4.8 × answer)

Three ways: ``plain`` (TRL's two rows per pair), ``mask`` (the shared row under a dense ``(rows, 1, S, S)``
mask) and ``segments`` (the shared row, attention over gathered per-branch sequences, no mask; the default of
``shared_prefix``). They train in three processes at once, in lockstep: one step of plain, then one of mask,
then one of segments, and so on, each timing only its own steps. A machine whose load changes over a minute
(other jobs, other tests) then slows all alike, and the ratios hold where runs one after the other can
differ by 3× here. The attention-mask memory of both shared layouts is measured on one row of S = 8,192
(:func:`mask_memory`). Each
process's peak memory is its own: peak RSS on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

Tokens are TRL's ``num_tokens`` for both ways: the non-padding tokens of prompt + chosen and prompt +
rejected, what the pairs hold rather than what either layout runs, so the ratio of the rates is the ratio
of the step times. A rate is the median over steps 2..N of a step's tokens / seconds. Nothing is downloaded.

The last line is key=value pairs for scripts::

    speedup_mask=1.62 speedup_segments=1.70 plain_tokens_per_s=9000 ... mask_bytes_at_8192=67108864 ...
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from queue import Empty
from typing import Any

# train_throughput.py sits beside this script, hence on sys.path when it runs as `python bench/prefix_dpo.py`.
from train_throughput import build_05b, write_data

WAYS = ("plain", "mask", "segments")  # TRL's two rows per pair; the shared row under a dense mask; by segments
MASK_SIZE = 8192  # the row length at which each layout's attention-mask memory is measured
PRESETS = {  # model size -> (steps, per-device batch, max_length, turns before the last question)
    "tiny": (20, 4, 512, 2),
    "0.5b": (20, 8, 1024, 4),
}
CPU_MODEL = {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "num_kv_heads": 2}


def lockstep_callback(me: Any, other: Any, done: Any, cuda: bool) -> Any:
    """A TrainerCallback that waits for its turn before each step, times the step, then hands the turn over."""
    from transformers import TrainerCallback

    class Lockstep(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.tokens: list[float] = []
            self.start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            while not done.is_set() and not me.wait(timeout=1.0):
                pass
            me.clear()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                import torch

                torch.cuda.synchronize()
            self.seconds.append(time.perf_counter() - self.start)
            other.set()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                self.tokens.append(float(logs["num_tokens"]))

        def on_train_end(self, args, state, control, **kwargs):
            done.set()  # the other way no longer waits for this one
            other.set()

        def tokens_per_s(self) -> float:
            steps = [n1 - n0 for n0, n1 in zip([0.0, *self.tokens], self.tokens, strict=False)]
            return statistics.median(n / s for n, s in list(zip(steps, self.seconds, strict=False))[1:])

    return Lockstep()


def worker(way: str, paths: dict[str, str], args: argparse.Namespace, events: dict[str, Any], queue: Any) -> None:
    """Train ``args.steps`` steps one way; put its rate, peak memory and data shape on ``queue``."""
    quiet()
    import torch
    from transformers import PrinterCallback

    from turnwise.config import load_config
    from turnwise.train.common import run_trainer
    from turnwise.train.configs import DPOTrainConfig
    from turnwise.train.dpo import build_dpo_trainer

    cuda = args.model_size != "tiny"
    settings = {"data": paths["data"], "model": paths["model"], "output": f"{paths['root']}/{way}", "seed": 0,
                "prefix_attention": way if way != "plain" else "segments",
                "max_steps": args.steps, "per_device_train_batch_size": args.batch, "max_length": args.max_length,
                "logging_steps": 1, "save_steps": 10**9, "gradient_checkpointing": False, "learning_rate": 1e-5,
                "warmup_steps": 0, "precision": "bf16" if cuda else "fp32", "device": "cuda" if cuda else "cpu",
                "resume": False, "shared_prefix": way != "plain", "trl_args": {"disable_tqdm": True}}
    following = WAYS[(WAYS.index(way) + 1) % len(WAYS)]
    clock = lockstep_callback(events[way], events[following], events["done"], cuda)
    cfg = load_config(DPOTrainConfig, overrides=settings)
    trainer, report, placement = build_dpo_trainer(cfg, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # no dict per step on stdout
    prepared = trainer.train_dataset
    answers = (sum(map(len, prepared["chosen_ids"])) + sum(map(len, prepared["rejected_ids"]))) / 2
    run_trainer(trainer, cfg, "dpo", report, placement)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put((way, {"tokens_per_s": clock.tokens_per_s(), "peak_mb": peak / 2**20, "rows": report.rows,
                     "history_ratio": sum(map(len, prepared["prompt_ids"])) / answers,
                     "placement": placement.describe()}))


def run_both(paths: dict[str, str], args: argparse.Namespace) -> dict[str, dict]:
    """Start both ways in fresh processes (spawned, so each peak is its own), plain's turn first."""
    context = mp.get_context("spawn")
    events = {name: context.Event() for name in (*WAYS, "done")}
    queue = context.Queue()
    processes = [context.Process(target=worker, args=(way, paths, args, events, queue)) for way in WAYS]
    events["plain"].set()
    for process in processes:
        process.start()
    results: dict[str, dict] = {}
    while len(results) < len(WAYS):
        try:
            way, result = queue.get(timeout=5)
            results[way] = result
        except Empty:
            if any(process.exitcode for process in processes):  # a crash: do not leave the other one waiting
                events["done"].set()
                for process in processes:
                    process.join()
                raise SystemExit("a bench process failed; its traceback is above") from None
    for process in processes:
        process.join()
    return results


def mask_memory(size: int = MASK_SIZE) -> dict[str, int]:
    """Bytes each shared layout hands the model to keep a pair's answers apart, for one row of ``size`` tokens.

    The row is one pair whose history is 7/8 of it, built by the collators' own functions: the dense layout's
    boolean ``(1, 1, S, S)`` mask (sdpa; eager's additive float32 mask is 4× that) against the segment
    layout's index plus every index the kernel derives from it (the history's key bias, the rejected
    positions). Measured on real tensors, not computed from a formula.
    """
    import torch

    from turnwise.train.prefix_dpo import shared_attention_mask
    from turnwise.train.prefix_layout import PairIds, segment_index, shared_layout
    from turnwise.train.segment_attention import SegmentIndex

    history = size * 7 // 8
    answer = (size - history - 1) // 2
    pair = PairIds(list(range(history)), [1] * answer, [2] * (size - history - 1 - answer))
    rows, _ = shared_layout([pair], pad_token_id=0)
    assert len(rows[0]) == size
    pair_ids, branch_ids = torch.tensor([rows[0].pair_ids]), torch.tensor([rows[0].branch_ids])
    dense = shared_attention_mask(pair_ids, branch_ids)
    additive = shared_attention_mask(pair_ids, branch_ids, additive_dtype=torch.float32)
    segments = SegmentIndex(*(torch.tensor(values) for values in segment_index(rows)))
    plan = segments.plan(torch.float32, size)  # the indices the kernel derives from it, once per forward
    derived = sum(t.nelement() * t.element_size() for t in vars(plan).values())
    return {"mask_bytes": dense.nelement() * dense.element_size(),
            "mask_eager_bytes": additive.nelement() * additive.element_size(),
            "segments_bytes": segments.nbytes + derived}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--model-size", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, help="optimizer steps each way (default: by model size)")
    parser.add_argument("--batch", type=int, help="pairs per step (default: by model size)")
    parser.add_argument("--max-length", type=int, help="prompt + answer tokens at most (default: by model size)")
    parser.add_argument("--turns", type=int, help="user/assistant turns before the last question (default: by size)")
    args = parser.parse_args()
    steps, batch, max_length, turns = PRESETS[args.model_size]
    args.steps, args.batch, args.turns = args.steps or steps, args.batch or batch, args.turns or turns
    args.max_length = args.max_length or max_length
    return args


def quiet() -> None:
    import datasets
    from transformers.utils import logging as hf_logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore")  # deprecations inside transformers/TRL


def main() -> None:
    args = parse_args()
    quiet()
    import torch

    cuda = args.model_size != "tiny"
    if cuda and not torch.cuda.is_available():
        raise SystemExit(f"--model-size {args.model_size} needs a CUDA GPU; torch sees none")
    with tempfile.TemporaryDirectory(prefix="turnwise-prefix-bench-") as tmp:
        root = Path(tmp)
        if cuda:
            model = build_05b(root / "model")
        else:
            from turnwise.quickstart.tiny_model import build_tiny_model

            model = build_tiny_model(root / "model", **CPU_MODEL)
        _, data = write_data(root, args.turns, rows=args.steps * args.batch)
        results = run_both({"root": tmp, "model": str(model), "data": str(data)}, args)
    memory = mask_memory()
    for way in WAYS:
        r = results[way]
        print(f"{way}: {r['rows']} pairs, history {r['history_ratio']:.1f} × answer, {r['placement']}: "
              f"{r['tokens_per_s']:,.0f} tokens/s (median of steps 2-{args.steps}), peak {r['peak_mb']:,.0f} MB")
    print(f"attention-mask memory for one row of S = {MASK_SIZE:,}: mask {memory['mask_bytes'] / 2**20:,.1f} MiB "
          f"(boolean; eager's additive float32 {memory['mask_eager_bytes'] / 2**20:,.1f} MiB), "
          f"segments {memory['segments_bytes'] / 2**10:,.1f} KiB")
    plain = results["plain"]
    device = torch.cuda.get_device_name(0).replace(" ", "_") if cuda else "cpu"
    print(f"speedup_mask={results['mask']['tokens_per_s'] / plain['tokens_per_s']:.2f} "
          f"speedup_segments={results['segments']['tokens_per_s'] / plain['tokens_per_s']:.2f} "
          + " ".join(f"{way}_tokens_per_s={results[way]['tokens_per_s']:.0f}" for way in WAYS) + " "
          + " ".join(f"{way}_peak_mb={results[way]['peak_mb']:.0f}" for way in WAYS) + " "
          f"mask_bytes_at_{MASK_SIZE}={memory['mask_bytes']} segments_bytes_at_{MASK_SIZE}={memory['segments_bytes']} "
          f"history_ratio={plain['history_ratio']:.1f} model={args.model_size} device={device} steps={args.steps} "
          f"batch={args.batch}")


if __name__ == "__main__":
    main()
