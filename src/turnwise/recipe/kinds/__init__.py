"""The shipped stage kinds; importing this package registers them (:data:`turnwise.recipe.registry.KINDS`).

| kind | core |
|---|---|
| ``toy_data``, ``tiny_model`` | :mod:`turnwise.toy`, :mod:`turnwise.testing.tiny_model` |
| ``train_sft``, ``train_ask``, ``train_dpo`` | :mod:`turnwise.train` |
| ``simulate``, ``detect``, ``generate`` | :mod:`turnwise.simulate`, :mod:`turnwise.detect`, |
|  | :mod:`turnwise.stages.generate` |
| ``capo``, ``bestofn`` | :mod:`turnwise.capo`, :mod:`turnwise.bestofn` (scorers from :mod:`turnwise.score`) |
| ``eval`` | :mod:`turnwise.toy` (verifiable) or :mod:`turnwise.eval` (LLM judge) |
| ``report`` | :mod:`turnwise.recipe.report` |
"""

from turnwise.recipe.kinds import data, dialogue, evaluate, pairs, report, train  # noqa: F401
