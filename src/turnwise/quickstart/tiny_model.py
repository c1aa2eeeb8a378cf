"""Build a tiny random-init chat model offline: a byte-level BPE tokenizer and a 2-layer Qwen2.

    turnwise tiny-model /tmp/tiny --template chatml

Nothing is downloaded: the tokenizer is trained on a small built-in English and Chinese corpus (or on
the texts you give), the model's weights are random for a seed. The result loads with
``AutoTokenizer.from_pretrained(dir)`` and ``AutoModelForCausalLM.from_pretrained(dir)`` and can be served
with ``transformers serve``. It says nothing sensible; it exists so that tests, the quickstart and
trainers have a real model, a real tokenizer and a real chat template to run against on a CPU.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnwise.errors import ConfigError, require

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Qwen2's pre-tokenizer split. The tokenizer is built exactly as Qwen2Tokenizer builds itself, so that
# AutoTokenizer (which picks Qwen2Tokenizer from the model's config) tokenizes like the saved file.
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

LLAMA3_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first %}{{- bos_token }}{%- endif %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TemplateKit:
    """What one chat template needs from a tokenizer.

    Attributes:
        chat_template: the Jinja template.
        special_tokens: added tokens, in id order (ids 0, 1, ...).
        end_of_turn: the token that closes a message; the model's eos.
        pad: the padding token (also an eos in ``generation_config``).
        bos: the beginning-of-text token the template writes, or None.
    """

    chat_template: str
    special_tokens: tuple[str, ...]
    end_of_turn: str
    pad: str
    bos: str | None = None


TEMPLATES: dict[str, TemplateKit] = {
    # ChatML as Qwen2 writes it, without Qwen2's injected default system prompt.
    "chatml": TemplateKit(
        chat_template=CHATML_TEMPLATE,
        special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        end_of_turn="<|im_end|>",
        pad="<|endoftext|>",
    ),
    # Llama 3's layout; <|end_of_text|> is there to pad with, as Llama 3 has no pad token of its own.
    "llama3": TemplateKit(
        chat_template=LLAMA3_TEMPLATE,
        special_tokens=(
            "<|end_of_text|>",
            "<|begin_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        end_of_turn="<|eot_id|>",
        pad="<|end_of_text|>",
        bos="<|begin_of_text|>",
    ),
}

_EN_NAMES = ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry")
_EN_THINGS = ("the red box", "a small dog", "the old library", "her new car", "the river", "his garden")
_EN_VERBS = ("likes", "found", "painted", "visited", "remembers", "sold")
_EN_QUESTIONS = (
    "What did {n} do next?",
    "Where is {t} now?",
    "Why does {n} like it?",
    "How old is it?",
    "Can you tell me more about {t}?",
    "And what about {n}?",
)
_ZH_NAMES = ("小明", "小红", "老王", "李老师", "张医生", "妈妈")
_ZH_THINGS = ("红色的盒子", "一只小狗", "老图书馆", "新车", "那条河", "花园")
_ZH_VERBS = ("喜欢", "找到了", "画了", "参观了", "记得", "卖掉了")
_ZH_QUESTIONS = ("它在哪里？", "他为什么喜欢它？", "后来呢？", "那个多少钱？", "你能再说说吗？", "她呢？")
_CHAT_WORDS = "system\nuser\nassistant\nYou are a helpful assistant. Sure, here is the answer. 好的，我来回答。"


def default_corpus() -> list[str]:
    """A small fixed English and Chinese corpus: statements, follow-up questions, chat words.

    The same for every seed, so that the tokenizer (and hence token ids in tests) does not change when
    only the model's weights do.
    """
    # Chat words repeat so that role names and common replies merge into few tokens.
    texts = [_CHAT_WORDS] * 20
    for i, (name, thing, verb) in enumerate(itertools.product(_EN_NAMES, _EN_THINGS, _EN_VERBS)):
        question = _EN_QUESTIONS[i % len(_EN_QUESTIONS)].format(n=name, t=thing)
        texts.append(f"{name} {verb} {thing} in {1990 + i % 30}. {question} It is {i % 9 + 1} years old.")
    for i, (name, thing, verb) in enumerate(itertools.product(_ZH_NAMES, _ZH_THINGS, _ZH_VERBS)):
        question = _ZH_QUESTIONS[i % len(_ZH_QUESTIONS)]
        texts.append(f"{name}{verb}{thing}。{question}这是{i % 9 + 1}年前的事。")
    return texts


def _template_kit(template: str) -> TemplateKit:
    if template not in TEMPLATES:
        raise ConfigError(f"unknown tiny-model template {template!r}; choose one of {', '.join(TEMPLATES)}")
    return TEMPLATES[template]


def _train_bpe(texts: Iterator[str], vocab_size: int, special_tokens: tuple[str, ...]) -> Any:
    tokenizers = require("tokenizers", "local")
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE

    tokenizer = tokenizers.Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    # A vocabulary no larger than the byte alphabet plus the special tokens means no merges: one token
    # per byte, which makes token positions easy to compute by hand in tests.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def build_tiny_tokenizer(
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    template: str = "chatml",
    model_max_length: int = 2048,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer and dress it with a chat template and its special tokens.

    Args:
        texts: training texts; :func:`default_corpus` when None.
        vocab_size: target vocabulary size, special tokens included (at most 256 + specials means
            byte-level tokens only).
        template: ``chatml`` or ``llama3``.
        model_max_length: the tokenizer's maximum sequence length.
    """
    kit = _template_kit(template)
    transformers = require("transformers", "local")
    texts = default_corpus() if texts is None else texts
    # The template's words go into training so that role names merge into few tokens.
    corpus = itertools.chain([kit.chat_template.replace("\\n", "\n")], texts)
    backend = _train_bpe(iter(corpus), vocab_size, kit.special_tokens)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=kit.end_of_turn,
        pad_token=kit.pad,
        bos_token=kit.bos,
        unk_token=None,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = kit.chat_template
    return tokenizer


def _model_config(tokenizer: PreTrainedTokenizerFast, kit: TemplateKit, sizes: dict[str, int]) -> Any:
    from transformers import Qwen2Config

    hidden = sizes["hidden_size"]
    if hidden % sizes["num_heads"] or sizes["num_heads"] % sizes["num_kv_heads"]:
        raise ConfigError(
            f"hidden_size ({hidden}) must divide by num_heads ({sizes['num_heads']}), "
            f"and num_heads by num_kv_heads ({sizes['num_kv_heads']})"
        )
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_heads"],
        num_key_value_heads=sizes["num_kv_heads"],
        max_position_embeddings=sizes["max_position_embeddings"],
        # Untied: with tied embeddings a random tiny model repeats one token whatever the prompt, and
        # tests comparing batched with one-by-one generation would compare nothing.
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids(kit.bos) if kit.bos else None,
        eos_token_id=tokenizer.convert_tokens_to_ids(kit.end_of_turn),
        pad_token_id=tokenizer.convert_tokens_to_ids(kit.pad),
    )


def build_tiny_model(
    out_dir: str | Path,
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 2048,
    template: str = "chatml",
    seed: int = 0,
) -> Path:
    """Build and save a tiny random-init Qwen2 chat model with its tokenizer; return its directory.

    Args:
        out_dir: where to save; created if missing.
        texts: tokenizer training texts; a built-in English and Chinese corpus when None.
        vocab_size: tokenizer vocabulary size (the model's embedding matches the tokenizer).
        hidden_size: model width.
        num_layers: decoder layers.
        num_heads: attention heads.
        num_kv_heads: key/value heads (grouped-query attention).
        max_position_embeddings: longest sequence the model is configured for.
        template: chat template, ``chatml`` or ``llama3``.
        seed: seeds the weights; the same seed gives the same model.
    """
    kit = _template_kit(template)
    torch = require("torch", "local")
    from transformers import GenerationConfig, Qwen2ForCausalLM

    tokenizer = build_tiny_tokenizer(
        texts=texts, vocab_size=vocab_size, template=template, model_max_length=max_position_embeddings
    )
    sizes = {
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": num_kv_heads,
        "max_position_embeddings": max_position_embeddings,
    }
    config = _model_config(tokenizer, kit, sizes)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    pad_id = config.pad_token_id
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[config.eos_token_id, pad_id],
        pad_token_id=pad_id,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _no_progress_bars():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    # A one-shard "Writing model shards" bar is noise in tests and the quickstart.
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
