"""python bench/detect_quality.py

How well does the context-dependence detector (``turnwise.detect``) find the user turns that need their
history? Labelled public data from ``../shared/data/context``:

- MuDoCo-QR news: user turns after the first, dependent when ``rewrite_required`` (77% dependent);
- CANARD dev: questions after the first of each dialogue, dependent when the human rewrite differs (97%);
- Chinese utterance rewriting dev (Su et al. 2019): the second user turn, dependent when the rewrite
  differs (1,998 of 2,000: only the dependent class says anything there).

Per data set and method it prints precision, recall and F1 of both classes and macro-F1 (the mean of the
two F1s: "always dependent" scores 0.87 F1 on MuDoCo's dependent class and 0.43 macro-F1). Methods:

- ``always dependent``: the floor;
- ``pronoun list``: dependent when a personal or demonstrative pronoun is in the turn (words, not substrings);
- ``rules``: the shipped cue rules with their hand-set weights (nothing fitted to these data);
- ``LR cues, CANARD``: a class-balanced logistic regression on the same cue features, trained on CANARD and
  tested elsewhere (on CANARD itself: 5-fold cross-validation grouped by dialogue);
- ``LR cues, 5-fold``: the same, cross-validated within the data set, folds grouped by dialogue;
- ``rules + judge``: with ``--judge-model`` (and ``--base-url`` for a server), the LLM judge confirms or
  rejects the cue decision (``--judge-on``, default ``all``); ``--limit`` sends a fixed random sample of
  that many turns per data set, and ``rules (same turns)`` scores the rules on the same sample.

It also shows how sensitive the rules are to their weights: MuDoCo macro-F1 over 200 draws with every
weight moved by up to ±0.5 at random.

The last line is key=value pairs for scripts (MuDoCo news first)::

    macro_f1=0.81 dependent_f1=0.91 standalone_f1=0.71 baseline_macro_f1=0.66 n=235 ...
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from turnwise.detect.classifier import cross_validate, fit_detector
from turnwise.detect.cues import Cue, find_cues
from turnwise.detect.labelled import DATASETS, LabelledTurn, load_dataset
from turnwise.detect.metrics import BinaryReport, evaluate
from turnwise.detect.rules import DEFAULT_BIAS, DEFAULT_WEIGHTS, RuleDetector, pronoun_only

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def row(name: str, method: str, report: BinaryReport) -> str:
    d, s = report.dependent, report.standalone
    return (f"{name:<18}{method:<20}{report.n:>6}  {d.precision:>6.3f}{d.recall:>6.3f}{d.f1:>6.3f}"
            f"  {s.precision:>6.3f}{s.recall:>6.3f}{s.f1:>6.3f}  {report.macro_f1:>7.3f}")


def header() -> str:
    return (f"{'data':<18}{'method':<20}{'n':>6}  {'dep P':>6}{'R':>6}{'F1':>6}  {'sa P':>6}{'R':>6}{'F1':>6}"
            f"  {'macroF1':>7}")


def sensitivity(cues: Sequence[Sequence[Cue]], gold: Sequence[bool], draws: int = 200) -> tuple[float, ...]:
    """Median, 10th and 90th percentile macro-F1 with every weight moved by up to ±0.5."""
    rng = random.Random(0)
    scores = []
    for _ in range(draws):
        weights = {k: v + rng.uniform(-0.5, 0.5) for k, v in DEFAULT_WEIGHTS.items()}
        detector = RuleDetector(weights, DEFAULT_BIAS)
        scores.append(evaluate(gold, [detector.score(c) > 0 for c in cues]).macro_f1)
    scores.sort()
    return statistics.median(scores), scores[draws // 10], scores[draws * 9 // 10]


async def judged(examples: Sequence[LabelledTurn], args: argparse.Namespace) -> list[bool]:
    """Rules + judge labels (turns whose judge reply fails keep the cue decision; failures are counted)."""
    from turnwise.detect.judge import JudgeConfig, judge_decisions
    from turnwise.detect.rules import detect_messages
    from turnwise.models.base import GenerationSettings, ModelSpec, load_model
    from turnwise.models.cache import CachedChatModel, ResponseCache

    spec = ModelSpec(args.judge_model, base_urls=args.base_url or [], concurrency=args.concurrency)
    cache = ResponseCache(args.cache or Path(tempfile.mkdtemp()) / "judge.sqlite")
    model = CachedChatModel(load_model(spec), cache)
    config = JudgeConfig(args.judge_on, settings=GenerationSettings(temperature=0, max_tokens=256))
    failures = 0

    async def one(ex: LabelledTurn) -> bool:
        nonlocal failures
        [decision] = detect_messages(list(ex.messages), lang=ex.lang)[-1:]
        outcome = await judge_decisions(list(ex.messages), [decision], model, config, ex.lang)
        failures += len(outcome.failures)
        return outcome.decisions[0].dependent

    try:
        labels = await asyncio.gather(*(one(ex) for ex in examples))
    finally:
        await model.aclose()
        cache.close()
    print(f"  judge: {len(examples)} turns, {failures} unparsable or failed replies (cue decision kept)")
    return list(labels)


def run_dataset(name: str, examples: list[LabelledTurn], canard_lr: RuleDetector | None,
                args: argparse.Namespace) -> dict[str, BinaryReport]:
    cues = [find_cues(e.turn, e.history, e.lang) for e in examples]
    gold = [e.dependent for e in examples]
    groups = [e.group for e in examples]
    rules = RuleDetector()
    methods: dict[str, Callable[[], list[bool]]] = {
        "always dependent": lambda: [True] * len(gold),
        "pronoun list": lambda: [pronoun_only(e.turn, e.lang) for e in examples],
        "rules": lambda: [rules.score(c) > 0 for c in cues],
    }
    if canard_lr is not None and name != "canard_dev":
        methods["LR cues, CANARD"] = lambda: [canard_lr.score(c) > 0 for c in cues]
    if sum(not g for g in gold) >= 10:  # a class with a handful of turns cannot be cross-validated
        methods["LR cues, 5-fold"] = lambda: cross_validate(cues, gold, groups)
    reports = {method: evaluate(gold, predict()) for method, predict in methods.items()}
    if args.judge_model:  # a fixed random sample of --limit turns, and the rules on the same turns
        picked = range(len(examples))
        if 0 < args.limit < len(examples):
            picked = sorted(random.Random(0).sample(picked, args.limit))
        sample_gold = [gold[i] for i in picked]
        reports["rules + judge"] = evaluate(sample_gold, asyncio.run(judged([examples[i] for i in picked], args)))
        reports["rules (same turns)"] = evaluate(sample_gold, [rules.score(cues[i]) > 0 for i in picked])
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--judge-model", help="an LLM judge (served name with --base-url, or a local path)")
    parser.add_argument("--base-url", action="append", help="OpenAI-compatible endpoint of the judge")
    parser.add_argument("--judge-on", default="all", choices=["dependent", "all", "uncertain"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="turns per data set sent to the judge (0 = all)")
    parser.add_argument("--cache", type=Path, help="response cache for the judge (default: a temporary one)")
    args = parser.parse_args()
    if not (args.data / "context").is_dir():
        raise SystemExit(f"no labelled data at {args.data / 'context'} (the shared data folder)")

    start = time.perf_counter()
    data = {name: load_dataset(name, args.data) for name in DATASETS}
    canard = data["canard_dev"]
    canard_lr = fit_detector([find_cues(e.turn, e.history, e.lang) for e in canard], [e.dependent for e in canard])
    print(header())
    results = {}
    for name, examples in data.items():
        results[name] = run_dataset(name, examples, canard_lr, args)
        for method, report in results[name].items():
            print(row(name, method, report))
    mudoco = data["mudoco_news"]
    test_split = [e for e in mudoco if _split(e, args.data) != "train"]
    split_cues = [find_cues(e.turn, e.history, e.lang) for e in test_split]
    split = evaluate([e.dependent for e in test_split], [RuleDetector().score(c) > 0 for c in split_cues])
    print(row("mudoco test+eval", "rules", split))
    cues = [find_cues(e.turn, e.history, e.lang) for e in mudoco]
    median, low, high = sensitivity(cues, [e.dependent for e in mudoco])
    print(f"rules on mudoco_news with every weight moved by up to ±0.5 (200 draws): macro-F1 median {median:.3f}, "
          f"10th-90th percentile {low:.3f}-{high:.3f}")
    print(f"LR trained on CANARD (weights): {canard_lr.weights} bias {canard_lr.bias}")
    print(f"({time.perf_counter() - start:.1f} s)")
    print(_tail(results))


_SPLITS: dict[str, str] = {}


def _split(example: LabelledTurn, data_dir: Path) -> str:
    """MuDoCo's own train/test/eval split of the dialogue."""
    if not _SPLITS:
        import json

        dialogs = json.loads((data_dir / DATASETS["mudoco_news"][0]).read_text(encoding="utf-8"))["dialogs"]
        _SPLITS.update({k: v["split"] for k, v in dialogs.items()})
    return _SPLITS[example.group]


def _tail(results: dict[str, dict[str, BinaryReport]]) -> str:
    mudoco, canard, zh = results["mudoco_news"], results["canard_dev"], results["zh_rewrite_dev"]
    rules = mudoco["rules"]
    parts = {
        "macro_f1": rules.macro_f1, "dependent_f1": rules.dependent.f1, "standalone_f1": rules.standalone.f1,
        "baseline_macro_f1": mudoco["pronoun list"].macro_f1, "n": rules.n,
        "lr_canard_macro_f1": mudoco["LR cues, CANARD"].macro_f1, "lr_cv_macro_f1": mudoco["LR cues, 5-fold"].macro_f1,
        "canard_macro_f1": canard["rules"].macro_f1, "canard_baseline_macro_f1": canard["pronoun list"].macro_f1,
        "zh_dependent_f1": zh["rules"].dependent.f1, "zh_baseline_dependent_f1": zh["pronoun list"].dependent.f1,
    }
    if "rules + judge" in mudoco:
        parts["judge_macro_f1"] = mudoco["rules + judge"].macro_f1
    return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in parts.items())


if __name__ == "__main__":
    main()
