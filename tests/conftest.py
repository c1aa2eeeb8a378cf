"""Shared test options and fixtures.

Tiers: unit (fakes, seconds), ``integration`` (a tiny model really runs, a real server answers), ``slow``
(opt-in with ``--runslow``: long or GPU runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def turnwise_home(tmp_path_factory: pytest.TempPathFactory):
    """Models turnwise converts (the embedded real model) go to a folder of this session's, never the user's."""
    import os

    before = os.environ.get("TURNWISE_HOME")
    os.environ["TURNWISE_HOME"] = str(tmp_path_factory.mktemp("turnwise-home"))
    yield Path(os.environ["TURNWISE_HOME"])
    if before is None:
        del os.environ["TURNWISE_HOME"]
    else:
        os.environ["TURNWISE_HOME"] = before


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets kept beside the repository (absent in a user's own clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (it sits beside the repository in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ChatML Qwen2 model with its tokenizer, saved once per session."""
    from turnwise.quickstart.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chatml"), template="chatml")


@pytest.fixture(scope="session")
def tiny_llama3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 model with a Llama-3-style chat template, saved once per session."""
    from turnwise.quickstart.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama3"), template="llama3")


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ChatML model with other random weights (the same tokenizer): a reference unlike the policy."""
    from turnwise.quickstart.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chatml-seed1"), template="chatml", seed=1)
