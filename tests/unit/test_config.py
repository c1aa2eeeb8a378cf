"""The generic config loader: YAML + --set + typed options → a dataclass, with errors that name file and key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from turnwise.config import (
    coerce,
    describe_fields,
    dump_yaml,
    field_docs,
    load_config,
    parse_sets,
    to_dict,
)
from turnwise.errors import ConfigError


@dataclass
class Base:
    """A base config.

    Attributes:
        name: what to call it; this sentence
            goes on over two lines.
        rate (float): how fast.
    """

    name: str
    rate: float = 0.5


@dataclass
class Child(Base):
    """A child config.

    Attributes:
        rate: how fast, said again by the child.
        steps: how many.
        roles: who speaks.
        mode: which way.
        extra: anything else.
        maybe: an optional number.
        on: a switch.
    """

    steps: int = 3
    roles: list[str] = field(default_factory=lambda: ["assistant"])
    mode: Literal["a", "b"] = "a"
    extra: dict[str, int] = field(default_factory=dict)
    maybe: int | None = None
    on: bool = False

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be 0 or more, got {self.steps}")


def write(tmp_path, text: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("3", int, 3),
        ("1e3", int, 1000),
        (2.0, int, 2),
        ("1e-4", float, 1e-4),  # PyYAML reads 1e-4 as a string
        (2, float, 2.0),
        ("yes", bool, True),
        ("off", bool, False),
        ("a, b", list[str], ["a", "b"]),
        ("[a, b]", list[str], ["a", "b"]),
        (["1", 2], list[int], [1, 2]),
        ("null", int | None, None),
        ("7", int | None, 7),
        ("b", Literal["a", "b"], "b"),
        ("{x: 1}", dict[str, int], {"x": 1}),
    ],
)
def test_coerce(value, annotation, expected):
    assert coerce(value, annotation) == expected


@pytest.mark.parametrize(
    ("value", "annotation"),
    [("x", int), ("1.5", int), (True, int), ("maybe", bool), (3, str), ("c", Literal["a", "b"]), ("[1", list[int])],
)
def test_coerce_refuses(value, annotation):
    with pytest.raises(ValueError, match="expected"):
        coerce(value, annotation)


def test_precedence_defaults_yaml_sets_options(tmp_path):
    path = write(tmp_path, "name: from-yaml\nrate: 1e-4\nsteps: 5\nroles: [user]\n")
    cfg = load_config(Child, path, sets=["steps=7", "mode=b"], overrides={"steps": 9, "maybe": None})
    got = (cfg.name, cfg.rate, cfg.steps, cfg.roles, cfg.mode, cfg.maybe)
    assert got == ("from-yaml", 1e-4, 9, ["user"], "b", None)
    assert load_config(Child, overrides={"name": "n"}).steps == 3


def test_unknown_key_names_file_key_and_valid_keys(tmp_path):
    path = write(tmp_path, "name: x\nstep: 5\n")
    expected = r"cfg\.yaml: unknown key 'step' \(did you mean 'steps'\?\); valid keys: name, rate, steps"
    with pytest.raises(ConfigError, match=expected):
        load_config(Child, path)


def test_wrong_type_names_source_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"cfg\.yaml: key 'steps': expected int, got 'many'"):
        load_config(Child, write(tmp_path, "name: x\nsteps: many\n"))
    with pytest.raises(ConfigError, match=r"--set: key 'on': expected bool"):
        load_config(Child, sets=["name=x", "on=perhaps"])
    with pytest.raises(ConfigError, match=r"option --max-steps|unknown key 'max_steps'"):
        load_config(Child, overrides={"name": "x", "max_steps": 3})


def test_missing_required_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required setting\(s\) name"):
        load_config(Child, write(tmp_path, "steps: 1\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Child, write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Child, write(tmp_path, "name: [x\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Child, tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="steps must be 0 or more"):
        load_config(Child, sets=["name=x", "steps=-1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_sets(["steps"])


def test_field_docs_merge_bases_and_continuations():
    docs = field_docs(Child)
    assert docs["name"] == "what to call it; this sentence goes on over two lines."
    assert docs["rate"] == "how fast, said again by the child."
    assert field_docs(Base)["rate"] == "how fast."
    assert all(docs.values())
    rows = {name: (type_, default) for name, type_, default, _ in describe_fields(Child)}
    assert rows["name"] == ("str", "required")
    assert rows["maybe"] == ("int | None", "None")
    assert rows["mode"] == ("one of a, b", "'a'")


def test_dump_yaml_round_trips(tmp_path):
    cfg = Child(name="x", rate=1e-4, roles=["user", "assistant"], extra={"k": 1}, maybe=4, on=True)
    text = dump_yaml(cfg)
    assert "# how fast, said again by the child.\nrate: 0.0001" in text
    path = write(tmp_path, text)
    assert load_config(Child, path) == cfg
    assert to_dict(cfg)["roles"] == ["user", "assistant"]
