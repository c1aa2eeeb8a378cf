"""Content addressing: canonical digests, file and folder hashes remembered by size and mtime."""

from __future__ import annotations

import hashlib
import json
import os

from turnwise.recipe.hashing import ContentHasher, canonical, digest


def test_digest_is_sha256_of_canonical_json():
    assert canonical({"b": "é", "a": [1, 2]}) == '{"a":[1,2],"b":"é"}'
    # sha256('{"a":[1,2],"b":"é"}' in UTF-8), computed by hand once.
    assert digest({"b": "é", "a": [1, 2]}) == "d902c5ef87c42c33059e8d7b7aa30485809a5c0ff84b8d0d285616d5b03f23ea"
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})


def test_file_hash_is_the_bytes_and_is_remembered(tmp_path, monkeypatch):
    path = tmp_path / "data.txt"
    path.write_bytes(b"hello\n")
    hasher = ContentHasher(tmp_path / "memo.json")
    assert hasher.file(path) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # sha256(b"hello\n")
    hasher.save()
    memo = json.loads((tmp_path / "memo.json").read_text())
    assert memo[str(path.resolve())][2] == hasher.file(path)

    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    assert ContentHasher(tmp_path / "memo.json").file(path).startswith("5891b5")
    assert str(path.resolve()) not in map(str, reads)  # same size and mtime: not read again
    monkeypatch.undo()

    path.write_bytes(b"hello!\n")
    os.utime(path, ns=(1, 1))
    assert ContentHasher(tmp_path / "memo.json").file(path) == hashlib.sha256(b"hello!\n").hexdigest()


def test_folder_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    hasher = ContentHasher()
    first = hasher.path(tmp_path / "d")
    (tmp_path / "d" / "b.txt").write_text("x")
    assert hasher.path(tmp_path / "d") != first


def test_model_hash_ignores_what_training_leaves_beside_the_weights(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "config.json").write_text("{}")
    hasher = ContentHasher()
    first = hasher.model(model)
    (model / "README.md").write_text("card, written at 12:00")
    (model / "train.manifest.json").write_text("{}")
    (model / "checkpoint-1").mkdir()
    (model / "checkpoint-1" / "model.safetensors").write_bytes(b"old")
    assert hasher.model(model) == first
    (model / "model.safetensors").write_bytes(b"other weights")
    assert hasher.model(model) != first
