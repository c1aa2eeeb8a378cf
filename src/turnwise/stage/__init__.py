"""What every stage shares, and the one place the command line and the recipe runner meet.

* :mod:`~turnwise.stage.spec`: what a stage declares (:class:`Stage`: settings class, inputs, model roles,
  outputs, its one adapter);
* :mod:`~turnwise.stage.table`: every stage kind by name, as ``module:attr``, imported on use;
* :mod:`~turnwise.stage.context`: the :class:`StageContext` an adapter runs in, from a command or a recipe;
* :mod:`~turnwise.stage.settings`: settings dataclasses from mappings (a recipe's ``settings:``, a command's
  options), and their leaves as command-line options;
* :mod:`~turnwise.stage.inputs`: reading conversations from files or earlier stages' records;
* :mod:`~turnwise.stage.runner`: the bounded async map every core uses, and cost accounting.

Each stage's folder (``simulate/``, ``detect/``, ``capo/``...) holds its core, its settings class and its
``adapter.py``.
"""
