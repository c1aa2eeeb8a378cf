"""In-process models are cached under their weights, so a model retrained into the same folder is not stale."""

from __future__ import annotations

from turnwise.models.base import ModelSpec
from turnwise.models.identity import in_process_identity, weights_fingerprint


def test_fingerprint_follows_the_weights_not_the_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "model.safetensors").write_bytes(b"\x01" * 4096)
    (b / "model.safetensors").write_bytes(b"\x01" * 4096)
    (a / "config.json").write_text("{}")
    assert weights_fingerprint(a) == weights_fingerprint(b)  # a copy finds the same entries
    (a / "model.safetensors").write_bytes(b"\x02" + b"\x01" * 4095)  # retrained in place
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert weights_fingerprint(tmp_path / "missing") is None


def test_identity_names_backend_model_weights_template_and_dtype(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"w")
    plain = in_process_identity("local", ModelSpec(str(tmp_path)))
    assert set(plain) == {"backend", "model", "weights"}
    other = in_process_identity("local", ModelSpec(str(tmp_path), chat_template="{{ x }}", dtype="float32"))
    assert other["dtype"] == "float32" and other["chat_template"] != plain.get("chat_template")
    assert in_process_identity("vllm", ModelSpec("org/hub-model")) == {"backend": "vllm", "model": "org/hub-model"}
