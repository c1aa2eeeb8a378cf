"""Judge prompts are Jinja templates in files, one per task and language.

    text = render("score/helpfulness", "en", query="...", response="...", history=[])

A template is found as ``NAME.LANG.jinja`` under ``turnwise/templates`` (or first under the folders of
``search_path``, so a project can replace any prompt, or only its few-shot examples, without touching
the package). Templates ``{% include %}`` their few-shot examples from their own files. Undefined
variables raise: a prompt never goes out with a hole in it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import ConfigError

LANGS = ("en", "zh")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str) -> str:
    """``zh`` when the text has Chinese characters and at most 4 Latin letters per one of them, else ``en``.

    The 4:1 ratio is LongReward's: Chinese carries several times more per character, and a Chinese
    question naming an English term is still Chinese.
    """
    cjk = len(_CJK.findall(text))
    return "zh" if cjk and len(_LATIN.findall(text)) <= 4 * cjk else "en"


def resolve_lang(lang: str, *texts: str) -> str:
    """``lang`` itself, or the language of ``texts`` when it is ``auto``."""
    if lang == "auto":
        return detect_lang(" ".join(texts))
    if lang not in LANGS:
        raise ConfigError(f"no judge prompts in {lang!r}; choose auto or one of {', '.join(LANGS)}")
    return lang


@functools.lru_cache(maxsize=8)
def environment(search_path: tuple[str, ...] = ()):  # -> jinja2.Environment
    """The Jinja environment: ``search_path`` folders first, then the package's templates."""
    import jinja2  # a core dependency, imported where used

    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(list(search_path))] if search_path else []
    loaders.append(jinja2.PackageLoader("turnwise", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,  # an included example file ends with its newline
    )


def render(name: str, lang: str, *, search_path: Sequence[str | Path] = (), **variables: Any) -> str:
    """Render template ``NAME.LANG.jinja`` with ``variables``; surrounding blank lines are stripped.

    Raises:
        ConfigError: no such template.
    """
    import jinja2

    env = environment(tuple(str(p) for p in search_path))
    try:
        template = env.get_template(f"{name}.{lang}.jinja")
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(str(p) for p in search_path) or "no template folder"
        raise ConfigError(f"no judge template {name}.{lang}.jinja ({where}, then the package)") from exc
    return _squeeze(template.render(**variables))


def _squeeze(text: str) -> str:
    # Three or more newlines (left by optional blocks) become one blank line.
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def prompt_messages(name: str, lang: str, *, search_path: Sequence[str | Path] = (), **variables: Any) -> list[Message]:
    """The judge's conversation: the rendered template as one user message."""
    return [{"role": "user", "content": render(name, lang, search_path=search_path, **variables)}]
