"""Every prompt turnwise sends is a Jinja template in a file; this is the one place that finds and renders them.

    text = render("score/helpfulness", "en", query="...", response="...", history=[])
    text = render("capo/neglect", "zh", search_path=["my-prompts"], query="...")

A template is ``<stage>/<name>.<lang>.jinja``, looked up first in the folders of ``search_path`` (a stage's
``template_dir`` setting, ``--template-dir`` on its command), then in the package's ``turnwise/templates``: a
project replaces any prompt, or only its few-shot examples, by putting a file of the same name in its folder.
Templates ``{% include %}`` their examples from their own files. Undefined variables raise: a prompt never goes
out with a hole in it. Each shipped template names at its top the paper it follows.
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
    check_lang(lang)
    return lang


def check_lang(lang: str) -> str:
    """``lang``, when prompts exist in it.

    Raises:
        ConfigError: no prompts in that language.
    """
    if lang not in LANGS:
        raise ConfigError(f"no prompts in {lang!r}; choose one of {', '.join(LANGS)}")
    return lang


def search_path(template_dir: str | Path | None) -> tuple[str, ...]:
    """A stage's ``template_dir`` setting as a search path (empty: the package's templates only)."""
    if not template_dir:
        return ()
    if not Path(template_dir).is_dir():
        raise ConfigError(f"template_dir: {template_dir} is not a folder")
    return (str(template_dir),)


@functools.lru_cache(maxsize=16)
def environment(path: tuple[str, ...] = ()):  # -> jinja2.Environment
    """The Jinja environment: the ``path`` folders first, then the package's templates."""
    import jinja2  # a core dependency, imported where used

    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(list(path))] if path else []
    loaders.append(jinja2.PackageLoader("turnwise", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,  # an included example file ends with its newline
    )


def template(name: str, lang: str, search_path: Sequence[str | Path] = ()):  # -> jinja2.Template
    """Template ``NAME.LANG.jinja`` (``name`` is ``stage/prompt``).

    Raises:
        ConfigError: an unknown language, or no such template.
    """
    import jinja2

    check_lang(lang)
    env = environment(tuple(str(p) for p in search_path))
    try:
        return env.get_template(f"{name}.{lang}.jinja")
    except jinja2.TemplateNotFound as exc:
        where = ", ".join(str(p) for p in search_path) or "no template folder"
        raise ConfigError(f"no prompt template {name}.{lang}.jinja ({where}, then the package)") from exc


def render(name: str, lang: str, *, search_path: Sequence[str | Path] = (), **variables: Any) -> str:
    """Render template ``NAME.LANG.jinja`` with ``variables``; runs of blank lines (left by optional blocks)
    become one, and the text is stripped."""
    text = template(name, lang, search_path).render(**variables)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def prompt_messages(name: str, lang: str, *, search_path: Sequence[str | Path] = (), **variables: Any
                    ) -> list[Message]:
    """A conversation of one user message: the rendered template."""
    return [{"role": "user", "content": render(name, lang, search_path=search_path, **variables)}]
