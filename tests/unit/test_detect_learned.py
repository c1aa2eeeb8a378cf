"""The learned detector: its fitting (pinned by hand), training data, reproducible save and load, and decisions.

A fake embedder (a fixed vector per word) stands in for MiniLM: the tests check the plumbing and the maths,
``tests/integration/test_detect_learned_cli.py`` the real model.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from turnwise.detect.judge import apply_verdict  # noqa: E402
from turnwise.detect.labelled import LabelledTurn, with_rewrites  # noqa: E402
from turnwise.detect.learned import SHIPPED, LearnedDetector  # noqa: E402
from turnwise.detect.logistic import fit_logistic, fit_platt  # noqa: E402
from turnwise.detect.train import (  # noqa: E402
    TrainSettings,
    expected_calibration_error,
    read_labelled,
    reliability,
    source_weights,
    train_detector,
)
from turnwise.errors import ConfigError, InputError  # noqa: E402


class WordEmbedder:
    """384-d vectors: the normalised sum of a fixed random vector per lower-cased word."""

    name = "fake"
    computed = 0

    def embed(self, texts):
        rows = []
        for text in texts:
            v = np.zeros(384)
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                seed = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16)
                v += np.random.default_rng(seed).normal(size=384)
            rows.append(v / (np.linalg.norm(v) or 1.0))
        return np.array(rows, dtype=np.float32)


def turn(group: str, text: str, dependent: bool, rewrite: str | None = None) -> LabelledTurn:
    messages = ({"role": "user", "content": "Tell me about the Eiffel Tower."},
                {"role": "assistant", "content": "It is a wrought-iron tower in Paris, built in 1889."},
                {"role": "user", "content": text})
    return LabelledTurn(group, messages, dependent, "en", rewrite)


DEPENDENT = ["How tall is it?", "What about the other one?", "And when was that built?", "Who designed it?",
             "Is it open at night?", "How much does that cost?", "Why?", "And the second one?"]
STANDALONE = ["How tall is the Statue of Liberty?", "Who painted the Mona Lisa?", "Thanks!",
              "What is the capital of Japan?", "When was the Louvre Pyramid built?", "Great, thank you.",
              "How many people live in Berlin?", "Who wrote Hamlet?"]


def sources() -> dict[str, list[LabelledTurn]]:
    a = [turn(f"a{i}", t, True, t.replace("it", "the Eiffel Tower")) for i, t in enumerate(DEPENDENT)]
    a += [turn(f"a{i + 8}", t, False) for i, t in enumerate(STANDALONE)]
    b = [turn(f"b{i}", t.lower(), True) for i, t in enumerate(DEPENDENT)]
    b += [turn(f"b{i + 8}", t.lower(), False) for i, t in enumerate(STANDALONE)]
    return {"a": a, "b": b}


def test_logistic_regression_with_no_signal_learns_the_weighted_base_rate() -> None:
    """A feature that is always 0 gets weight 0; the bias is the log-odds of the (weighted) positive share:
    3 positives and 1 negative give log(3); weighing the negative 3 times gives log(3 / 3) = 0."""
    x, y = np.zeros((4, 1)), np.array([1, 1, 1, 0])
    weights, bias = fit_logistic(x, y, l2=1.0)
    assert weights[0] == 0.0 and bias == pytest.approx(math.log(3), abs=1e-9)
    _, bias = fit_logistic(x, y, [1, 1, 1, 3], l2=1.0)
    assert bias == pytest.approx(0.0, abs=1e-9)


def test_logistic_regression_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(np.ones((3, 1)), np.ones(3))


def test_platt_scaling_is_increasing_and_reads_the_base_rate() -> None:
    a, c = fit_platt([-2.0, -1.0, 1.0, 2.0, 0.0, 0.0], [0, 0, 1, 1, 1, 0])
    assert a > 0 and c == pytest.approx(0.0, abs=1e-6)  # symmetric scores and labels: no offset


def test_each_source_weighs_one_split_between_its_classes() -> None:
    """Source b has 20 of each class: 1/40 a turn. Source a has one standalone turn (under 20): not up-weighted,
    every turn 1/3."""
    weights = source_weights({"a": [True, True, False], "b": [True] * 20 + [False] * 20})
    assert weights[:3] == pytest.approx([1 / 3] * 3)
    assert weights[3:] == pytest.approx([1 / 40] * 40)


def test_reliability_bins_and_calibration_error() -> None:
    """Bin 0.2-0.3 holds 0.2 and 0.25 (mean 0.225, 1 of 2 dependent); bin 0.9-1.0 holds 1.0 (observed 1):
    ECE = (2 * |0.225 - 0.5| + 1 * 0) / 3 = 0.18333."""
    table = reliability([0.2, 0.25, 1.0], [True, False, True])
    assert [(b["n"], b["observed"]) for b in table if b["n"]] == [(2, 0.5), (1, 1.0)]
    assert expected_calibration_error(table) == pytest.approx(0.55 / 3)


def test_rewrites_become_standalone_turns_of_the_same_dialogue() -> None:
    examples = [turn("d1", "How tall is it?", True, "How tall is the Eiffel Tower?"),
                turn("d2", "Thanks!", False, "Thanks!"), turn("d3", "Why?", True, "Why?")]
    added = with_rewrites(examples)[3:]
    assert [(e.group, e.turn, e.dependent) for e in added] == [("d1", "How tall is the Eiffel Tower?", False)]
    assert added[0].messages[:-1] == examples[0].messages[:-1]


def test_labelled_files_are_read_and_bad_lines_named(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                         {"role": "user", "content": "And you?"}], "dependent": True, "group": "g"}
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "dependent": "yes"}) + "\n")
    with pytest.raises(InputError, match=r"labels.jsonl:3: 'dependent' must be true or false"):
        read_labelled(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InputError, match=r"labels.jsonl:2: not JSON"):
        read_labelled(path)
    last_assistant = {**good, "messages": good["messages"][:2]}
    path.write_text(json.dumps(last_assistant) + "\n")
    with pytest.raises(InputError, match=r":1: the labelled turn \(the last message\) must be a user message"):
        read_labelled(path)
    path.write_text(json.dumps(good) + "\n")
    [example] = read_labelled(path)
    assert (example.group, example.turn, example.dependent, example.lang) == ("g", "And you?", True, "en")


@pytest.fixture(scope="module")
def detector() -> LearnedDetector:
    return train_detector(sources(), TrainSettings(folds=2, l2=1.0), embedder=WordEmbedder(), command="test")


def test_training_is_reproducible_and_the_card_names_the_data(detector: LearnedDetector) -> None:
    again = train_detector(sources(), TrainSettings(folds=2, l2=1.0), embedder=WordEmbedder())
    assert again.digest == detector.digest
    # source a: 3 of its 8 dependent turns have a rewrite that differs ("it" -> "the Eiffel Tower")
    assert detector.card["data"] == {"a": {"dependent": 8, "standalone": 8 + 3}, "b": {"dependent": 8,
                                                                                       "standalone": 8}}
    other = train_detector(sources(), TrainSettings(folds=2, l2=5.0), embedder=WordEmbedder())
    assert other.digest != detector.digest


def test_save_and_load_keep_the_parameters_and_refuse_an_edited_file(detector: LearnedDetector,
                                                                     tmp_path: Path) -> None:
    detector.save(tmp_path / "det")
    loaded = LearnedDetector.load(tmp_path / "det")
    assert loaded.digest == detector.digest and loaded == detector
    card = (tmp_path / "det" / "README.md").read_text()
    assert detector.digest in card and "| a | 8 | 11 |" in card
    data = json.loads((tmp_path / "det" / "detector.json").read_text())
    data["weights"][0] += 1.0
    (tmp_path / "det" / "detector.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="do not match their sha256"):
        LearnedDetector.load(tmp_path / "det")
    with pytest.raises(ConfigError, match="no learned detector here"):
        LearnedDetector.load(tmp_path / "nothing")


def test_decisions_cover_every_user_turn_after_the_first_and_follow_the_threshold(detector: LearnedDetector) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about Paris."},
                {"role": "assistant", "content": "Paris is the capital of France."},
                {"role": "user", "content": "How tall is it?"}, {"role": "assistant", "content": "..."},
                {"role": "user", "content": "Who wrote Hamlet?"}]
    [decisions, none] = detector.label_batch([(messages, "en"), (messages[:3], "en")], WordEmbedder())
    assert [d.index for d in decisions] == [3, 5] and none == []
    first, second = decisions
    assert (first.dependent, second.dependent) == (True, False)
    for d in decisions:
        assert d.decided_by == "learned" and (d.score > 0) == d.dependent and 0 <= d.confidence <= 1
        learned = d.evidence[-1]
        assert learned["cue"] == "learned" and learned["model"] == detector.digest[:12]
    strict = detector.with_threshold(0.999999)
    assert not any(d.dependent for d in strict.label_batch([(messages, "en")], WordEmbedder())[0])
    overturned = apply_verdict(first, False, 50.0, "Verdict: standalone")
    assert not overturned.dependent and overturned.decided_by == "judge"


def test_a_threshold_outside_0_and_1_is_refused(detector: LearnedDetector) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        detector.with_threshold(1.0)


def test_the_shipped_model_loads_and_its_card_records_the_command_and_hash() -> None:
    shipped = LearnedDetector.load()
    card = (SHIPPED / "README.md").read_text()
    assert shipped.digest in card and "turnwise detect train" in card
    assert set(shipped.card["data"]) == {"canard_dev", "mudoco_news", "zh_rewrite_dev", "toy_world"}
    assert len(shipped.weights) == 384 + len(shipped.parameters["kinds"]) + 1


async def test_the_detect_stage_labels_batches_with_the_learned_detector_and_resumes(detector, tmp_path, monkeypatch):
    from turnwise.data.schema import Conversation
    from turnwise.detect.stage import DetectConfig, run_detect
    from turnwise.records import RecordStore, read_stage_output

    monkeypatch.setattr(LearnedDetector, "embedder", lambda self: WordEmbedder())
    batches = []
    original = LearnedDetector.label_batch

    def counted(self, convs, embedder=None):
        batches.append(len(convs))
        return original(self, convs, embedder)

    monkeypatch.setattr(LearnedDetector, "label_batch", counted)
    opener = [{"role": "user", "content": "Tell me about Paris."}, {"role": "assistant", "content": "A city."}]
    convs = [Conversation(f"c{i}", [*opener, {"role": "user", "content": text}])
             for i, text in enumerate(DEPENDENT[:3] + STANDALONE[:2])]
    with RecordStore(tmp_path / "det.jsonl") as store:
        result = await run_detect(convs[:4], store, DetectConfig(detector=detector), batch_size=3)
    assert batches == [3, 1] and result.turns == 4
    with RecordStore(tmp_path / "det.jsonl") as store:
        again = await run_detect(convs, store, DetectConfig(detector=detector), batch_size=3)
    assert again.records == 1 and batches == [3, 1, 1]  # only the new conversation is labelled
    records = read_stage_output(tmp_path / "det.jsonl")
    assert {r["meta"]["detector"] for r in records} == {f"learned:{detector.digest[:12]}"}
    assert all(t["decided_by"] == "learned" for r in records for t in r["turns"])


def test_detect_settings_refuse_unknown_methods_and_learned_options_on_the_rules() -> None:
    from turnwise.detect.adapter import DetectSettings

    with pytest.raises(ConfigError, match="method must be one of learned, rules, learned\\+judge, rules\\+judge"):
        DetectSettings(method="bert")
    with pytest.raises(ConfigError, match="belong to the learned detector"):
        DetectSettings(method="rules", threshold=0.7)
    with pytest.raises(ConfigError, match="threshold must be between 0 and 1"):
        DetectSettings(threshold=1.5)


def test_a_judge_method_without_a_judge_model_is_one_error_line(tmp_path: Path, capsys) -> None:
    from turnwise.cli.main import main

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}]}) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(data), str(tmp_path / "out.jsonl"), "--method", "rules+judge"])
    assert exit_info.value.code == 2
    assert "method rules+judge needs a judge model" in capsys.readouterr().err
