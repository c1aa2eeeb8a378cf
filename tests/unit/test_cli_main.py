"""`turnwise CMD` registers CMD alone, so a command does not pay for every other command's imports."""

from __future__ import annotations

import subprocess
import sys

import typer

from turnwise.cli.main import COMMANDS, build_app


def _names(app: typer.Typer) -> set[str]:
    return {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}


def test_one_command_or_all():
    assert _names(build_app("simulate")) == {"simulate"}
    assert _names(build_app("eval")) == {"eval"}
    assert _names(build_app()) == set(COMMANDS)


def test_a_command_imports_only_what_it_needs():
    code = ("import sys; from turnwise.cli.main import main\n"
            "try:\n    main(['-v', 'simulate', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('turnwise.cli.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "turnwise.cli.command" in loaded
    for other in ("turnwise.cli.rag", "turnwise.cli.eval", "turnwise.cli.train", "turnwise.cli.quickstart"):
        assert other not in loaded


def test_an_unknown_command_is_named():
    done = subprocess.run([sys.executable, "-m", "turnwise.cli.main", "simulat"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "No such command 'simulat'" in done.stderr
