"""The local backend's seeded sampler: the distribution temperature and top-p define, one stream per row."""

from __future__ import annotations

import math

import pytest

from turnwise.models.base import GenerationSettings
from turnwise.models.local import RowSampler, row_seed

torch = pytest.importorskip("torch")

PROBS = [0.5, 0.3, 0.15, 0.05]


def sample(settings: GenerationSettings, rows: int, step: int = 0) -> list[int]:
    sampler = RowSampler([row_seed(settings.seed, "p", j) for j in range(rows)], settings, 3, "cpu")
    scores = torch.tensor([PROBS]).log().repeat(rows, 1).float()
    out = sampler(torch.zeros(rows, 3 + step, dtype=torch.long), scores)
    assert bool((out.isinf().sum(dim=1) == len(PROBS) - 1).all())  # one token left per row
    return out.argmax(dim=1).tolist()


def test_frequencies_follow_temperature_and_top_p():
    rows = 20_000
    picks = sample(GenerationSettings(temperature=1.0, seed=1, max_tokens=4), rows)
    for token, p in enumerate(PROBS):
        assert picks.count(token) / rows == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / rows))
    # top_p 0.7: 0.5 and 0.3 are kept (the mass before 0.3 is under 0.7), renormalised to 5/8 and 3/8.
    picks = sample(GenerationSettings(temperature=1.0, top_p=0.7, seed=1, max_tokens=4), rows)
    assert set(picks) == {0, 1} and picks.count(0) / rows == pytest.approx(5 / 8, abs=0.02)
    # temperature 0.5 squares the probabilities before renormalising.
    squared = [p * p / sum(q * q for q in PROBS) for p in PROBS]
    picks = sample(GenerationSettings(temperature=0.5, seed=1, max_tokens=4), rows)
    assert picks.count(0) / rows == pytest.approx(squared[0], abs=0.02)


def test_each_row_has_its_own_stream():
    settings = GenerationSettings(temperature=1.0, seed=3, max_tokens=4)
    assert sample(settings, 50) == sample(settings, 50)
    assert sample(settings, 50)[:10] == sample(settings, 10)  # fewer rows beside it: the same samples
    assert sample(settings, 50, step=1) != sample(settings, 50, step=0)  # a new uniform at every step
    assert row_seed(3, "p", 0) != row_seed(3, "q", 0) != row_seed(4, "p", 0)
