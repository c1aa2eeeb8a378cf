"""Rewrite metrics pinned by hand, the report's splits, and `turnwise rewrite eval` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.errors import ConfigError, InputError
from turnwise.rag.datasets import RewriteExample
from turnwise.rag.evaluate import evaluate_rewrites, read_predictions
from turnwise.rag.metrics import bleu, exact_match, lcs_length, rouge_1, rouge_l, tokens

pytest.importorskip("sacrebleu")


def test_tokens() -> None:
    assert tokens("How long is the Nile?", "en") == ["how", "long", "is", "the", "nile"]
    assert tokens("iphonex为什么不好用？", "zh") == ["iphonex", "为", "什", "么", "不", "好", "用"]


def test_rouge_by_hand() -> None:
    # prediction a b c d, reference a b e: overlap 2, P = 2/4, R = 2/3, F1 = 2·(1/2)(2/3)/(1/2 + 2/3) = 4/7
    assert rouge_1("a b c d", "a b e", "en") == pytest.approx(4 / 7)
    # LCS of "a c b d" and "a b d" is "a b d" (3): P = 3/4, R = 1, F1 = 6/7
    assert lcs_length(["a", "c", "b", "d"], ["a", "b", "d"]) == 3
    assert rouge_l("a c b d", "a b d", "en") == pytest.approx(6 / 7)
    # ROUGE-1 counts b twice only where both have it twice: overlap 1 of "b b" vs "b": P 1/2, R 1, F1 2/3
    assert rouge_1("b b", "b", "en") == pytest.approx(2 / 3)
    assert rouge_1("", "a", "en") == 0.0
    # Chinese on characters: 西安明天 vs 西安明天天气: overlap 4, P 1, R 4/6, F1 0.8
    assert rouge_1("西安明天", "西安明天天气", "zh") == pytest.approx(0.8)


def test_exact_match_ignores_case_and_punctuation() -> None:
    assert exact_match("how long is the Nile", "How long is the Nile?", "en")
    assert not exact_match("How long is it?", "How long is the Nile?", "en")


def test_bleu_is_sacrebleus() -> None:
    assert bleu(["How long is the Nile ?"], ["How long is the Nile ?"], "en") == pytest.approx(100.0)
    assert bleu([], [], "en") is None
    assert bleu(["西安明天有雨吗"], ["西安明天有雨吗"], "zh") == pytest.approx(100.0)
    assert 0 < bleu(["How long is it in km?"], ["How long is the Nile in km?"], "en") < 100


def example(i: int, question: str, reference: str, needs: bool | None = None) -> RewriteExample:
    return RewriteExample(f"t{i}", (), question, reference=reference, needs_rewrite=needs)


EXAMPLES = [example(0, "How long is it?", "How long is the Nile?"),
            example(1, "Where is Paris?", "Where is Paris?"),
            example(2, "And in 2020?", "What was the population of Lyon in 2020?")]


def test_report_splits_and_summary_line() -> None:
    report = evaluate_rewrites(EXAMPLES, {"t0": "How long is the Nile?", "t1": "Where is Paris?",
                                          "t2": "And in 2020?"}, statuses={"rewritten": 1})
    base, mine = report.scores["baseline"], report.scores["rewriter"]
    assert [base[s].n for s in ("all", "needs rewrite", "no rewrite")] == [3, 2, 1]
    assert base["no rewrite"].exact == 100.0 and base["needs rewrite"].exact == 0.0
    assert mine["needs rewrite"].exact == 50.0 and mine["all"].exact == pytest.approx(200 / 3)
    line = report.summary_line()
    assert line.startswith("baseline_bleu=") and " bleu=" in line and line.split()[-1].startswith("rouge1=")
    assert "rewriter  needs rewrite" in report.table()
    baseline_only = evaluate_rewrites(EXAMPLES)
    assert baseline_only.summary_line().split()[-1].startswith("baseline_rouge1=")


def test_labels_beat_comparison() -> None:
    labelled = [example(0, "Why him?", "Why him?", needs=True)]
    assert evaluate_rewrites(labelled).scores["baseline"]["needs rewrite"].n == 1


def test_missing_predictions_and_references_are_errors() -> None:
    with pytest.raises(ConfigError, match="no prediction"):
        evaluate_rewrites(EXAMPLES, {"t0": "x"})
    with pytest.raises(ConfigError, match="no human rewrite"):
        evaluate_rewrites([RewriteExample("x", (), "q")])


def test_read_predictions(tmp_path: Path) -> None:
    text = tmp_path / "p.txt"
    text.write_text("a\nb\nc\n", encoding="utf-8")
    assert read_predictions(text, EXAMPLES) == {"t0": "a", "t1": "b", "t2": "c"}
    text.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(InputError, match="2 lines of predictions for 3 turns"):
        read_predictions(text, EXAMPLES)
    records = tmp_path / "p.jsonl"
    records.write_text('{"id": "t0", "query": "q0", "rewrite": null}\n{"id": "t1", "rewrite": "r1"}\n',
                       encoding="utf-8")
    assert read_predictions(records, EXAMPLES) == {"t0": "q0", "t1": "r1"}


def run(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0


def test_cli_human_rewrites_score_100(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "zh.txt"
    data.write_text("西安天气\t\t多云\t\t明天有雨吗\t\t西安明天有雨吗\n知道fgo吗\t\t当然\t\t是什么\t\tfgo是什么\n",
                    encoding="utf-8")
    refs = tmp_path / "refs.txt"
    refs.write_text("西安明天有雨吗\nfgo是什么\n", encoding="utf-8")
    assert run("rewrite", "eval", data, tmp_path / "zh.md", "--from", "zh-rewrite", "--predictions", refs) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = dict(part.split("=") for part in last.split())
    assert figures["bleu"] == "100.00" and figures["rouge1"] == "100.00" and float(figures["baseline_bleu"]) < 100


def test_cli_on_canard_dev(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_data / "context" / "canard_dev.json"
    refs = tmp_path / "refs.txt"
    refs.write_text("".join(row["Rewrite"] + "\n" for row in json.loads(data.read_text(encoding="utf-8"))),
                    encoding="utf-8")
    assert run("rewrite", "eval", data, tmp_path / "baseline.md", "--from", "canard") == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "baseline_bleu=34.76 baseline_rouge1=68.47"
    assert run("rewrite", "eval", data, tmp_path / "humans.md", "--from", "canard", "--predictions", refs) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "baseline_bleu=34.76 baseline_rouge1=68.47 bleu=100.00 rouge1=100.00"
    assert "baseline  needs rewrite    3217" in out
