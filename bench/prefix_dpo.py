"""python bench/prefix_dpo.py

Shared-prefix DPO against TRL's plain DPO: the same pairs, the same steps, the same ``build_dpo_trainer`` +
``run_trainer`` calls ``turnwise train dpo`` makes, once with ``shared_prefix: false`` and once with ``true``.

    python bench/prefix_dpo.py                      # a Qwen2 of hidden 256, 4 layers on the CPU, fp32
    python bench/prefix_dpo.py --model-size 0.5b    # a random-init Qwen2 of ~0.5B parameters, bf16, CUDA
    python bench/prefix_dpo.py --turns 4            # longer histories (the default: history ≈ 4.8 × answer)

The two ways train in two processes at once, in lockstep: one step of plain, then one of shared, and so on,
each timing only its own steps. A machine whose load changes over a minute (other jobs, other tests) then
slows both alike, and the ratio holds where two runs one after the other can differ by 3× here. Each
process's peak memory is its own: peak RSS on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

Tokens are TRL's ``num_tokens`` for both ways: the non-padding tokens of prompt + chosen and prompt +
rejected, what the pairs hold rather than what either layout runs, so the ratio of the rates is the ratio
of the step times. A rate is the median over steps 2..N of a step's tokens / seconds. Nothing is downloaded.

The last line is key=value pairs for scripts::

    speedup=1.62 plain_tokens_per_s=9000 shared_tokens_per_s=14600 plain_peak_mb=900 shared_peak_mb=850 ...
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

WAYS = ("plain", "shared")
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
                "max_steps": args.steps, "per_device_train_batch_size": args.batch, "max_length": args.max_length,
                "logging_steps": 1, "save_steps": 10**9, "gradient_checkpointing": False, "learning_rate": 1e-5,
                "warmup_steps": 0, "precision": "bf16" if cuda else "fp32", "device": "cuda" if cuda else "cpu",
                "resume": False, "shared_prefix": way == "shared", "trl_args": {"disable_tqdm": True}}
    other = WAYS[1 - WAYS.index(way)]
    clock = lockstep_callback(events[way], events[other], events["done"], cuda)
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
    for way in WAYS:
        r = results[way]
        print(f"{way}: {r['rows']} pairs, history {r['history_ratio']:.1f} × answer, {r['placement']}: "
              f"{r['tokens_per_s']:,.0f} tokens/s (median of steps 2-{args.steps}), peak {r['peak_mb']:,.0f} MB")
    plain, shared = results["plain"], results["shared"]
    device = torch.cuda.get_device_name(0).replace(" ", "_") if cuda else "cpu"
    print(f"speedup={shared['tokens_per_s'] / plain['tokens_per_s']:.2f} "
          f"plain_tokens_per_s={plain['tokens_per_s']:.0f} shared_tokens_per_s={shared['tokens_per_s']:.0f} "
          f"plain_peak_mb={plain['peak_mb']:.0f} shared_peak_mb={shared['peak_mb']:.0f} "
          f"history_ratio={plain['history_ratio']:.1f} model={args.model_size} device={device} steps={args.steps} "
          f"batch={args.batch}")


if __name__ == "__main__":
    main()
