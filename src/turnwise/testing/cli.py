"""Run the ``turnwise`` command in process and get its exit code: ``assert exit_code("detect", IN, OUT) == 0``."""

from __future__ import annotations


def exit_code(*args: object) -> int:
    """``turnwise ARGS...`` through :func:`turnwise.cli.main.main`; 0 on success, else the code it exits with."""
    from turnwise.cli.main import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
