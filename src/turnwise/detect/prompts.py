"""Render the Jinja prompt templates shipped under ``turnwise/templates`` (one file per prompt and language).

    render_prompt("detect", "judge", "en", history=[...], turn="...", cues=[...])

Templates are looked up as ``templates/<stage>/<name>.<lang>.jinja``; a variable the template uses but
the caller did not pass is an error (StrictUndefined), not an empty string in a prompt.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2

from turnwise.errors import ConfigError

LANGUAGES = ("en", "zh")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    root = resources.files("turnwise") / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # prompts, not HTML
    )


def template_name(stage: str, name: str, lang: str) -> str:
    if lang not in LANGUAGES:
        raise ConfigError(f"no prompt language {lang!r} (expected one of {', '.join(LANGUAGES)})")
    return f"{stage}/{name}.{lang}.jinja"


def render_prompt(stage: str, name: str, lang: str, **variables: Any) -> str:
    """The rendered prompt, stripped of leading and trailing blank space."""
    path = template_name(stage, name, lang)
    try:
        template = _environment().get_template(path)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"no prompt template {path} in turnwise/templates") from exc
    return template.render(**variables).strip()
