"""Content addressing: canonical JSON digests, and file and model-folder hashes remembered between runs.

    digest({"kind": "train_dpo", "settings": {...}})     # sha256 hex of the canonical JSON
    hasher = ContentHasher(out_dir / "hashes.json")
    hasher.path("data/dialogues.jsonl")                  # sha256 of the bytes, memoised by size and mtime
    hasher.model("runs/sft")                             # weights, tokenizer and config files only

A file is hashed again only when its size or modification time changed, so a second plan over a
gigabyte of weights costs a ``stat``, not a read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from turnwise.records import atomic_write_text

log = logging.getLogger(__name__)

# The files that make a model directory what it is. Training leaves timestamps in its manifest, card and
# training_args.bin, and checkpoints beside the weights: none of those change what the model answers.
MODEL_FILES = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin", "config.json", "adapter_config.json",
               "generation_config.json", "tokenizer*", "special_tokens_map.json", "vocab.*", "merges.txt",
               "chat_template.*", "added_tokens.json")


def canonical(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal data, equal text."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def digest(obj: Any) -> str:
    """sha256 hex digest of :func:`canonical`."""
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


class ContentHasher:
    """sha256 of files and folders, memoised by (size, mtime) in a JSON file.

    Args:
        memo_path: where the memo is kept between runs; None keeps it in memory only.
    """

    def __init__(self, memo_path: str | Path | None = None):
        self.memo_path = Path(memo_path) if memo_path else None
        self._memo: dict[str, list[Any]] = {}
        self._dirty = False
        if self.memo_path is not None and self.memo_path.exists():
            try:
                self._memo = json.loads(self.memo_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("%s: unreadable hash memo, starting a new one", self.memo_path)

    def file(self, path: str | Path) -> str:
        """sha256 of a file's bytes."""
        path = Path(path).resolve()
        stat = path.stat()
        entry = self._memo.get(str(path))
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        self._memo[str(path)] = [stat.st_size, stat.st_mtime_ns, sha.hexdigest()]
        self._dirty = True
        return sha.hexdigest()

    def path(self, path: str | Path) -> str:
        """sha256 of a file, or of a folder's files (names and contents, in name order)."""
        path = Path(path)
        if path.is_file():
            return self.file(path)
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return digest([[p.relative_to(path).as_posix(), self.file(p)] for p in files])

    def model(self, path: str | Path) -> str:
        """sha256 of what makes a model folder answer as it does (:data:`MODEL_FILES`, top level only)."""
        path = Path(path)
        files = sorted({p for pattern in MODEL_FILES for p in path.glob(pattern) if p.is_file()})
        if not files:  # not a model folder turnwise knows: every file counts
            return self.path(path)
        return digest([[p.name, self.file(p)] for p in files])

    def save(self) -> None:
        """Write the memo (atomically) when something new was hashed."""
        if self.memo_path is None or not self._dirty:
            return
        live = {k: v for k, v in self._memo.items() if os.path.exists(k)}
        atomic_write_text(self.memo_path, json.dumps(live, indent=0, sort_keys=True))
        self._dirty = False
