"""The simulator prompt templates and the role flip that lets every chat backend play the user."""

from __future__ import annotations

from importlib import resources

import pytest

from turnwise.errors import ConfigError
from turnwise.simulate.prompts import LANGS, MODES, SimulatorPrompt, flip_roles, simulator_prompt

DIALOGUE = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "content": "A2"},
]
PROMPT = SimulatorPrompt(system="S", opener="O", end_marker="[END]")


def test_flip_by_hand():
    assert flip_roles(DIALOGUE, PROMPT) == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "O"},
        {"role": "assistant", "content": "U1"},
        {"role": "user", "content": "A1"},
        {"role": "assistant", "content": "U2"},
        {"role": "user", "content": "A2"},
    ]


def test_flip_with_end_marker_and_without_system():
    flipped = flip_roles(DIALOGUE, SimulatorPrompt(system="", opener="O", end_marker="[END]"), end=True)
    assert [m["role"] for m in flipped] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert flipped[-1]["content"] == "[END]"


def test_end_marker_needs_a_marker_and_an_answered_dialogue():
    with pytest.raises(ConfigError, match="none is set"):
        flip_roles(DIALOGUE, SimulatorPrompt(system="S", opener="O"), end=True)
    with pytest.raises(ConfigError, match="ends with a user turn"):
        flip_roles(DIALOGUE[:-1], PROMPT, end=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_template_names_its_paper_and_renders(mode, lang):
    text = (resources.files("turnwise") / "templates" / "simulate" / f"{mode}.{lang}.jinja").read_text("utf-8")
    assert "arXiv 2310.07301" in text.split("-#}")[0]  # Parrot, named in the header comment
    plain = simulator_prompt(mode, lang)
    marked = simulator_prompt(mode, lang, end_marker="[END]")
    assert plain.system and plain.opener and "{" not in plain.system
    assert "[END]" not in plain.system and "[END]" in marked.system


def test_chinese_prompt_is_chinese():
    prompt = simulator_prompt("ask", "zh")
    assert "用户" in prompt.system and prompt.opener == "开始对话吧。"


def test_overrides_inline_and_from_a_file(tmp_path):
    path = tmp_path / "system.txt"
    path.write_text("Act as a grumpy user.\n", encoding="utf-8")
    prompt = simulator_prompt("ask", "en", system=str(path), opener="Hi.")
    assert prompt.system == "Act as a grumpy user." and prompt.opener == "Hi."
    assert simulator_prompt("ask", "en", system="").system == ""


def test_bad_mode_language_and_marker():
    with pytest.raises(ConfigError, match="mode"):
        simulator_prompt("chat", "en")
    with pytest.raises(ConfigError, match="fr"):
        simulator_prompt("ask", "fr")
    with pytest.raises(ConfigError, match="blank"):
        SimulatorPrompt(system="S", opener="O", end_marker=" ")
