"""What the response cache keys an in-process model on: its weights, not only its name.

A model retrained into the same folder must not be answered with its predecessor's completions, and a
copy of the same weights elsewhere should still find them. So a local folder is fingerprinted by the
size and the first and last MiB of each weight file (enough to tell trained weights apart without
reading gigabytes), plus the chat template and the dtype it runs in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_SAMPLE = 1 << 20


def weights_fingerprint(folder: str | Path) -> str | None:
    """A short hash of a model folder's weight files, or None when ``folder`` is not a local folder."""
    root = Path(folder)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root)}:{size}:".encode())
        with open(path, "rb") as f:
            digest.update(f.read(_SAMPLE))
            if size > 2 * _SAMPLE:
                f.seek(-_SAMPLE, 2)
                digest.update(f.read(_SAMPLE))
    return digest.hexdigest()[:16]


def in_process_identity(backend: str, spec: Any) -> dict[str, Any]:
    """The cache identity of a model run in this process from ``spec`` (a ModelSpec)."""
    identity: dict[str, Any] = {"backend": backend, "model": spec.model}
    fingerprint = weights_fingerprint(spec.model)
    if fingerprint is not None:
        identity["weights"] = fingerprint
    if spec.chat_template:
        identity["chat_template"] = hashlib.sha256(spec.chat_template.encode()).hexdigest()[:16]
    if spec.dtype != "auto":
        identity["dtype"] = spec.dtype
    return identity
