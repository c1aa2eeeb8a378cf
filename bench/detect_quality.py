"""python bench/detect_quality.py

How well does each context-dependence detector (``turnwise.detect``) find the user turns that need their history,
on conversations it was not fitted on? Labelled public data from ``../shared/data/context`` and the toy world
(``turnwise.detect.labelled``): MuDoCo-QR news, CANARD dev, the Chinese rewrite dev set (1,998 of 2,000 dependent:
only recall per class means anything there) and the toy world's turns.

Cross-domain: every learned method is trained on the other three sources and tested on the fourth, whose
dialogues it never saw. Methods:

- ``always dependent``: the floor; ``pronoun list``: dependent when a personal or demonstrative pronoun is present;
- ``rules``: the shipped cue rules, hand-set weights (nothing fitted; MuDoCo news was their development set);
- ``LR cues``: a logistic regression on the rules' cue indicators alone (``turnwise.detect.classifier``);
- ``learned``: ``turnwise.detect.learned``, exactly as ``turnwise detect train`` fits it (MiniLM embedding of the
  turn + cue indicators, human rewrites as extra standalone turns, Platt-calibrated), at threshold 0.5;
- ``rules + judge``: with ``--judge-model`` (a served name with ``--base-url``, or a local path such as the embedded
  SmolLM2: ``$(turnwise model-path smollm2-135m-instruct)``), the LLM judge on a fixed random sample of ``--limit``
  turns per source, next to ``rules (same turns)``.

Then: each method's mean macro-F1 over the splits whose test side has at least 50 turns of each class (how the
default of ``turnwise detect --method`` is chosen), the learned detector's calibration on each held-out source
(expected calibration error), its precision and recall at higher thresholds, the rules' sensitivity to their
hand-set weights (MuDoCo news, every weight moved by up to ±0.5 at random), and the learned detector's speed
(featurize + predict, batches of 64 turns, in process, after the model is loaded). The last line is key=value
pairs for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from turnwise.detect.classifier import fit_detector
from turnwise.detect.cues import find_cues
from turnwise.detect.labelled import DATASETS, LabelledTurn, load_dataset
from turnwise.detect.learned import LearnedDetector, TurnRef, featurize
from turnwise.detect.metrics import BinaryReport, evaluate
from turnwise.detect.rules import RuleDetector, pronoun_only
from turnwise.detect.train import TrainSettings, expected_calibration_error, featurize_source, fit_sources, reliability

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIN_PER_CLASS = 50
SPEED_TURNS = 2048


def row(name: str, method: str, report: BinaryReport) -> str:
    d, s = report.dependent, report.standalone
    return (f"{name:<16}{method:<22}{report.n:>6}  {d.precision:>6.3f}{d.recall:>6.3f}{d.f1:>6.3f}"
            f"  {s.precision:>6.3f}{s.recall:>6.3f}{s.f1:>6.3f}  {report.macro_f1:>7.3f}")


def header() -> str:
    return (f"{'held-out data':<16}{'method':<22}{'n':>6}  {'dep P':>6}{'R':>6}{'F1':>6}  {'sa P':>6}{'R':>6}"
            f"{'F1':>6}  {'macroF1':>7}")


def qualifies(gold: Sequence[bool]) -> bool:
    return min(sum(gold), len(gold) - sum(gold)) >= MIN_PER_CLASS


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


def held_out(test: str, data: dict[str, list[LabelledTurn]], parts: dict, cues: dict, settings: TrainSettings,
             args: argparse.Namespace) -> tuple[dict[str, BinaryReport], list[float]]:
    """Every method on source ``test``, the learned ones fitted on the other sources."""
    examples, gold = data[test], [e.dependent for e in data[test]]
    others = [name for name in data if name != test]
    learned = fit_sources([parts[name] for name in others], settings)
    probabilities = learned.probabilities(parts[test].x[: len(examples)]).tolist()
    lr_cues = fit_detector([c for name in others for c in cues[name]],
                           [e.dependent for name in others for e in data[name]])
    rules = RuleDetector()
    predictions = {
        "always dependent": [True] * len(gold),
        "pronoun list": [pronoun_only(e.turn, e.lang) for e in examples],
        "rules": [rules.score(c) > 0 for c in cues[test]],
        "LR cues": [lr_cues.score(c) > 0 for c in cues[test]],
        "learned": [p > learned.threshold for p in probabilities],
    }
    reports = {method: evaluate(gold, predicted) for method, predicted in predictions.items()}
    if args.judge_model:
        picked = sorted(random.Random(0).sample(range(len(examples)), min(args.limit, len(examples)))
                        ) if args.limit else list(range(len(examples)))
        sample_gold = [gold[i] for i in picked]
        reports["rules + judge"] = evaluate(sample_gold, asyncio.run(judged([examples[i] for i in picked], args)))
        reports["rules (same turns)"] = evaluate(sample_gold, [predictions["rules"][i] for i in picked])
    return reports, probabilities


def sensitivity(cues: Sequence, gold: Sequence[bool], draws: int = 200) -> tuple[float, float, float]:
    """The rules' macro-F1 with every hand-set weight moved by up to ±0.5: median, 10th and 90th percentile."""
    from turnwise.detect.rules import DEFAULT_BIAS, DEFAULT_WEIGHTS

    rng = random.Random(0)
    scores = sorted(evaluate(gold, [RuleDetector({k: v + rng.uniform(-0.5, 0.5) for k, v in DEFAULT_WEIGHTS.items()},
                                                 DEFAULT_BIAS).score(c) > 0 for c in cues]).macro_f1
                    for _ in range(draws))
    return scores[draws // 2], scores[draws // 10], scores[draws * 9 // 10]


def speed(detector: LearnedDetector, examples: Sequence[LabelledTurn]) -> tuple[float, float]:
    """Turns per second of the learned detector and of the rules, batches of 64, in process."""
    refs = [TurnRef(e.messages, len(e.messages) - 1, e.lang) for e in examples]
    embedder = detector.embedder()
    embedder.embed(["warm up"])
    start = time.perf_counter()
    for i in range(0, len(refs), 64):
        features, _ = featurize(refs[i:i + 64], embedder)
        detector.probabilities(features)
    learned = len(refs) / (time.perf_counter() - start)
    start = time.perf_counter()
    rules = RuleDetector()
    for r in refs:
        rules.score(find_cues(r.turn, r.history, r.lang))
    return learned, len(refs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--l2", type=float, default=TrainSettings.l2, help="the learned detector's L2 penalty")
    parser.add_argument("--judge-model", help="an LLM judge (served name with --base-url, or a local path)")
    parser.add_argument("--base-url", action="append", help="OpenAI-compatible endpoint of the judge")
    parser.add_argument("--judge-on", default="all", choices=["dependent", "all", "uncertain"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="turns per source sent to the judge (0 = all)")
    parser.add_argument("--cache", type=Path, help="response cache for the judge (default: a temporary one)")
    args = parser.parse_args()
    if not (args.data / "context").is_dir():
        raise SystemExit(f"no labelled data at {args.data / 'context'} (the shared data folder)")

    start = time.perf_counter()
    settings = TrainSettings(l2=args.l2)
    data = {name: load_dataset(name, args.data) for name in DATASETS}
    embedder = LearnedDetector((), 0.0).embedder()
    parts = {name: featurize_source(name, examples, settings, embedder) for name, examples in data.items()}
    cues = {name: [find_cues(e.turn, e.history, e.lang) for e in examples] for name, examples in data.items()}
    print(header())
    results, calibration, thresholds = {}, {}, {}
    for test in data:
        reports, probabilities = held_out(test, data, parts, cues, settings, args)
        results[test] = reports
        gold = [e.dependent for e in data[test]]
        calibration[test] = expected_calibration_error(reliability(probabilities, gold))
        thresholds[test] = {t: evaluate(gold, [p > t for p in probabilities]).dependent for t in (0.5, 0.7, 0.9)}
        for method, report in reports.items():
            print(row(test, method, report))
    print(f"\nmacro-F1 on held-out sources with >= {MIN_PER_CLASS} turns of each class "
          f"({', '.join(t for t in data if qualifies([e.dependent for e in data[t]]))}):")
    qualifying = [t for t in data if qualifies([e.dependent for e in data[t]])]
    means = {m: sum(results[t][m].macro_f1 for t in qualifying) / len(qualifying)
             for m in ("rules", "LR cues", "learned")}
    for method, mean in means.items():
        print(f"  {method:<10} mean {mean:.3f}  " + "  ".join(f"{t} {results[t][method].macro_f1:.3f}"
                                                               for t in qualifying))
    print("\nlearned, held out: expected calibration error; dependent precision / recall at thresholds 0.5, 0.7, 0.9")
    for test in data:
        print(f"  {test:<16} ECE {calibration[test]:.3f}  " + "  ".join(
            f"{t}: {s.precision:.3f} / {s.recall:.3f}" for t, s in thresholds[test].items()))
    median, low, high = sensitivity(cues["mudoco_news"], [e.dependent for e in data["mudoco_news"]])
    print(f"\nrules on mudoco_news with every weight moved by up to ±0.5 (200 draws): macro-F1 median {median:.3f}, "
          f"10th-90th percentile {low:.3f}-{high:.3f}")
    shipped = LearnedDetector.load()
    turns = [e for name in ("mudoco_news", "canard_dev") for e in data[name]][:SPEED_TURNS]
    learned_rate, rules_rate = speed(shipped, turns)
    print(f"\nspeed, {len(turns)} English turns in batches of 64, in process: learned {learned_rate:.0f} turns/s, "
          f"rules {rules_rate:.0f} turns/s (shipped model {shipped.digest[:12]})")
    print(f"({time.perf_counter() - start:.0f} s)")
    tail = {f"{m.replace(' ', '_')}_mean_macro_f1": v for m, v in means.items()}
    for test in qualifying:
        tail[f"{test}_learned"] = results[test]["learned"].macro_f1
        tail[f"{test}_rules"] = results[test]["rules"].macro_f1
    tail["learned_turns_per_s"] = learned_rate
    print(" ".join(f"{k}={v:.3f}" for k, v in tail.items()))


if __name__ == "__main__":
    main()
