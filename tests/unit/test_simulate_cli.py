"""`turnwise simulate`: a thin command over the core; against the in-thread scripted server (loopback)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from turnwise.cli.main import app, main
from turnwise.records import read_stage_output
from turnwise.simulate import summarize
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig


def test_simulate_writes_records_manifest_and_stats(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"How does cache {i} work?\n" for i in range(5)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with serve_in_thread(ServerConfig(latency_ms=1, jitter_ms=0, reply="question")) as server:
        args = ["simulate", "--seeds", str(seeds), "-o", str(out), "--user-model", "m", "--assistant-model", "m",
                "--base-url", server.base_url, "--turns", "3", "--end-marker", "[END]", "--seed", "7",
                "--cache", str(tmp_path / "cache.sqlite")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert server.stats()["served"] == 5 * 5  # one backend for both roles: 2 user turns + 3 answers each
    records = read_stage_output(out)
    assert len(records) == 5 and all(r["status"] == "ok" and len(r["messages"]) == 6 for r in records)
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["stage"] == "simulate" and manifest["config"]["settings"]["end_marker"] == "[END]"
    assert manifest["config"]["settings"]["seed"] == 7
    stats = manifest["stats"]
    assert stats["dialogues"] == 5 and stats["turns_per_dialogue"] == 3.0 and stats["simulated_user_turns"] == 10
    assert set(stats["context_dependent"]) == {"turns", "share_of_simulated_user_turns", "per_dialogue", "detector"}
    # counted as each dialogue was written, equal to counting the file afterwards
    assert stats == summarize(records).to_dict()
    assert manifest["runs"][-1]["cost"]["user"]["calls"] == 10
    assert "5 dialogues: 5 ok" in result.output


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Hi?\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--seeds", str(seeds), "-o", str(tmp_path / "o.jsonl"), "--user-model", "m",
              "--assistant-model", "m", "--base-url", "http://127.0.0.1:9/v1", "--mode", "chat"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: settings: mode must be one of")
    assert not (tmp_path / "o.jsonl").exists()
