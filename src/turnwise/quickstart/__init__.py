"""The offline quickstart: the whole loop on a tiny model, on a CPU, with nothing downloaded.

* :mod:`~turnwise.quickstart.world`: the toy world (rivers and mountains), its dialogues that refer back, its splits
  and the check that says whether an answer is right;
* :mod:`~turnwise.quickstart.tiny_model`: a tokenizer trained on local text and a tiny Qwen2-architecture model;
* :mod:`~turnwise.quickstart.stages`: the recipe stages ``toy_data``, ``tiny_model`` and ``toy_eval``;
* :mod:`~turnwise.quickstart.results`: the result tables per seed and over seeds, and the per-turn plot page;
* :mod:`~turnwise.quickstart.run`: the packaged ``recipes/quickstart.yaml`` once per seed, then the table over seeds.
"""
