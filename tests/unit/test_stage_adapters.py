"""The adapters' pure pieces: trainer configs and accelerate commands, best-of-N prompts, reading stage records,
the report's HTML."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from turnwise.bestofn.stage import turn_prompts
from turnwise.data.schema import Conversation
from turnwise.eval.adapter import slug
from turnwise.models.base import ModelSpec
from turnwise.recipe.report import markdown_to_html
from turnwise.stage.context import Layout, ResolvedModel, StageContext
from turnwise.stage.inputs import read_conversations
from turnwise.stage.settings import build_settings
from turnwise.train.adapter import DPO, DPOStageSettings, core_config, launch_command
from turnwise.train.common import accelerate_config
from turnwise.train.configs import DPOTrainConfig

PROVIDED = {"data": "<inputs.data>", "model": "<models.base>", "output": "<stage folder>/model"}


def context(tmp_path: Path, **settings) -> StageContext:
    cfg = build_settings(DPOStageSettings, settings, "s", provided=PROVIDED)
    models = {"base": ResolvedModel("sft", ModelSpec("runs/sft"))}
    return StageContext(DPO, "train_dpo", Layout(tmp_path), cfg, {}, models, {}, tmp_path / "cache.sqlite",
                        key="0" * 64)


def test_a_training_stage_hands_the_trainer_its_own_config(tmp_path):
    ctx = context(tmp_path, beta=0.2, accelerate="zero3", num_processes=8)
    cfg = core_config(ctx, DPOTrainConfig, tmp_path / "pairs.jsonl")
    assert type(cfg) is DPOTrainConfig and not hasattr(cfg, "accelerate")
    assert (cfg.data, cfg.model, cfg.output, cfg.beta) == (str(tmp_path / "pairs.jsonl"), "runs/sft",
                                                          str(tmp_path / "model"), 0.2)


def test_a_multi_gpu_stage_runs_accelerate_launch_with_the_shipped_config(tmp_path):
    command = launch_command(context(tmp_path, accelerate="fsdp", num_processes=8), tmp_path / "c.yaml", "dpo")
    assert command == [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                       str(accelerate_config("fsdp")), "--num_processes", "8", "-m", "turnwise.train.dpo",
                       "--config", str(tmp_path / "c.yaml")]
    own = launch_command(context(tmp_path, accelerate="my/accel.yaml"), tmp_path / "c.yaml", "ask")
    assert own[4:7] == ["my/accel.yaml", "--num_processes", "1"] and own[-3] == "turnwise.train.ask"


def test_every_user_turn_becomes_a_prompt_with_its_reference():
    conv = Conversation("d", [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"},
                              {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
                              {"role": "assistant", "content": "a2"}], meta={"references": ["r1", "r2"]})
    prompts = list(turn_prompts([conv], "every_turn"))
    assert [p.id for p in prompts] == ["d:0", "d:1"]
    assert [len(p.messages) for p in prompts] == [2, 4] and [p.meta for p in prompts] == [{"reference": "r1"},
                                                                                          {"reference": "r2"}]
    [last] = turn_prompts([conv], "last")
    assert list(turn_prompts([conv], "whole")) == [conv]
    assert last.id == "d:1" and last.messages[-1] == {"role": "user", "content": "q2"}


def test_stage_records_are_read_as_their_ok_conversations(tmp_path):
    rows = [{"id": "a", "status": "ok", "messages": [{"role": "user", "content": "q"},
                                                    {"role": "assistant", "content": "a"}],
             "meta": {"cost": {"user": {}}, "turns": 1}},
            {"id": "b", "status": "filtered", "reason": "too short", "messages": [], "meta": {}}]
    path = tmp_path / "dialogues.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [conv] = read_conversations(path)[0]
    assert conv.id == "a" and conv.meta == {"turns": 1}  # the stage's own cost stays behind


def test_labels_become_file_names():
    assert slug("SFT + DPO") == "sft-dpo" and slug("Qwen2.5-0.5B-Instruct") == "qwen2.5-0.5b-instruct"


def test_the_report_html_has_its_tables_links_and_lists():
    page = markdown_to_html("# T\n\n| a | b |\n|---|---|\n| `x` | [y](s/y.txt) |\n\n- **s**: z\n  - cost: 1 < 2\n", "T")
    assert "<h1>T</h1>" in page and "<th>a</th><th>b</th>" in page
    assert '<td><code>x</code></td><td><a href="s/y.txt">y</a></td>' in page
    assert "<div>• <b>s</b>: z</div>" in page and '<div style="margin-left:1.5rem">• cost: 1 &lt; 2</div>' in page
