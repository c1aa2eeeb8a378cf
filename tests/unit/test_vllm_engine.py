"""The vllm backend is GPU-only and untested here; its missing-extra error must say how to fix it."""

from __future__ import annotations

import sys

import pytest

from turnwise.errors import TurnwiseError
from turnwise.models.base import ModelSpec, load_model


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail even where it is installed
    with pytest.raises(TurnwiseError, match=r"pip install 'turnwise\[vllm\]'"):
        load_model(ModelSpec(model="some/model", backend="vllm"))
