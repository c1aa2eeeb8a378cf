"""turnwise: make chat models better at multi-turn conversation."""

__version__ = "0.1.0"
