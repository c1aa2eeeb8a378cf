"""Shared-prefix DPO: each pair's history runs once, its two answers branch off it in the same sequence.

    turnwise train dpo --data pairs.jsonl --model runs/sft --output runs/dpo        # the default
    turnwise train dpo ... --no-shared-prefix                                          # TRL's plain path

TRL's DPOTrainer (1.16) runs ``prompt + chosen`` and ``prompt + rejected`` as two rows; on multi-turn pairs,
whose history is several times longer than an answer, most of the compute re-reads the same history. Here
a pair is one segment, ``[history][last prompt token + chosen][last prompt token + rejected]``, with
position ids that restart for each branch and a 4-D attention mask under which neither branch sees the
other (:mod:`turnwise.train.prefix_layout` has the layout; Wang & Hegde, arXiv 2410.20305).

Nothing of TRL's loss is rewritten. The batch carries TRL's own plain layout (its collator's ``input_ids``,
``attention_mask`` and ``completion_mask``, so the loss, the SFT term, ``num_tokens`` and every metric are
read off the tensors TRL expects) plus a ``shared`` entry. The model's forward, already patched by TRL with
its fused LM head, is wrapped once more: given ``shared``, it runs the shared rows instead and scatters each
per-token output (log-prob, entropy, mean logit, top-1) back to where the plain layout has it. TRL's
``_compute_loss``, its reference pass (a frozen copy, the adapter-disabled model under LoRA, or
``precompute_ref_log_probs``) and its metrics then run unchanged on numbers equal to the plain path's up to
float rounding (``tests/unit/test_prefix_dpo.py`` checks log-probs, loss and every gradient to 1e-4).
Why the forward and not ``_compute_loss``: in TRL 1.16 the model call sits inside that one method, with
every loss type and metric after it, so overriding it would mean copying TRL's loss code.

The mask is a dense ``(rows, 1, S, S)`` tensor, so the attention kernel must take one: ``sdpa`` (the
default) or ``eager``; flash-attention kernels do not (:func:`supports_shared_prefix`). This module imports
torch and TRL at the top; :mod:`turnwise.train.dpo` imports it only when a shared-prefix trainer is built.
"""

from __future__ import annotations

import functools
import logging
import types
from dataclasses import dataclass
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import FusedCausalLMOutput

from turnwise.train import segment_attention
from turnwise.train.prefix_layout import PairIds, segment_index, shared_layout

log = logging.getLogger(__name__)

MASK_KERNELS = ("sdpa", "eager")  # attention implementations that take a dense 4-D mask
SEGMENT_FIELDS = ("history", "rejected", "rejected_lengths")  # the shared batch's segment index, in order
ATTENTIONS = ("segments", "mask")  # how a shared row's attention is restricted: segment indices, or a dense mask
_PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")
_PATCHED = "_turnwise_shared_prefix"
_CHECKED = "_turnwise_shared_prefix_checked"


def supports_shared_prefix(attn_implementation: str | None) -> bool:
    """Whether an attention implementation takes the dense mask the shared layout needs (None = sdpa)."""
    return attn_implementation is None or attn_implementation in MASK_KERNELS


@dataclass
class SharedPrefixCollator(DataCollatorMixin):
    """TRL's plain preference batch, plus the ``shared`` rows the model actually runs.

    Attributes:
        pad_token_id: the padding token.
        max_length: the longest prompt + answer allowed; a longer pair is an error (TRL's collator would cut
            it, and the two layouts would disagree). turnwise fits every pair before TRL sees it.
        pack: put several pairs in one row when they fit within the longest pair of the batch (mask only: the
            segment attention takes one pair per row).
        attention: ``"segments"`` (segment indices, O(S); :mod:`turnwise.train.segment_attention`) or
            ``"mask"`` (the pair and branch ids a dense ``(rows, 1, S, S)`` mask is built from).
        return_tensors: only ``"pt"``.
    """

    pad_token_id: int
    max_length: int | None = None
    pack: bool = True
    attention: str = "segments"
    return_tensors: str = "pt"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = [PairIds(e["prompt_ids"], e["chosen_ids"], e["rejected_ids"]) for e in examples]
        longest = max(pair.plain_length for pair in pairs)
        if self.max_length is not None and longest > self.max_length:
            raise ValueError(f"a pair of {longest} tokens (prompt + longer answer) exceeds max_length "
                             f"{self.max_length}; fit pairs before collating (turnwise.train.data.dpo_rows)")
        batch = DataCollatorForPreference(pad_token_id=self.pad_token_id)(examples)
        # the segment attention runs one pair per row (its rows' causal attention is the chosen branch's)
        rows, index = shared_layout(pairs, self.pad_token_id, pack=self.pack and self.attention == "mask")
        names = ("input_ids", "position_ids", "shift_labels")
        if self.attention == "mask":
            names += ("pair_ids", "branch_ids")
        shared = {name: torch.tensor([getattr(row, name) for row in rows]) for name in names}
        shared["index"] = torch.tensor(index, dtype=torch.long)
        if self.attention == "segments":
            for name, values in zip(SEGMENT_FIELDS, segment_index(rows), strict=True):
                shared[name] = torch.tensor(values, dtype=torch.long)
        batch["shared"] = shared
        return batch


def shared_attention_mask(pair_ids: Any, branch_ids: Any, *, additive_dtype: Any = None) -> Any:
    """The ``(rows, 1, S, S)`` mask of the shared layout: query q sees key k when k ≤ q, both belong to the
    same pair, and k is in the history (branch 0) or in q's own branch.

    Args:
        pair_ids: ``(rows, S)`` pair of each token (-1 for padding, which then sees only padding).
        branch_ids: ``(rows, S)`` branch of each token.
        additive_dtype: None for a boolean mask (True = attend, what sdpa takes); a float dtype for the
            additive mask eager attention adds to its scores (0 = attend, the dtype's minimum = not).
    """
    size = pair_ids.shape[1]
    causal = torch.ones(size, size, dtype=torch.bool, device=pair_ids.device).tril()
    same_pair = pair_ids[:, :, None] == pair_ids[:, None, :]
    visible = (branch_ids[:, None, :] == 0) | (branch_ids[:, :, None] == branch_ids[:, None, :])
    allowed = (causal & same_pair & visible)[:, None]
    if additive_dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=additive_dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(additive_dtype).min)


def _run_shared(model: Any, fused_forward: Any, shared: dict[str, Any], labels: Any) -> Any:
    """Run the shared rows through TRL's fused forward and lay every per-token output out as the plain batch."""
    implementation = segment_attention.base_kernel(model.config._attn_implementation)
    if not supports_shared_prefix(implementation):
        raise ValueError(f"shared-prefix DPO needs an attention kernel that takes a 4-D mask "
                         f"({', '.join(MASK_KERNELS)}), not {implementation}; use attn_implementation: sdpa, or "
                         "shared_prefix: false")
    common = {"input_ids": shared["input_ids"], "position_ids": shared["position_ids"],
              "shift_labels": shared["shift_labels"], "fused_lm_head": True, "use_cache": False}
    if SEGMENT_FIELDS[0] in shared:
        segment_attention.install(model)
        segments = segment_attention.SegmentIndex(*(shared[name] for name in SEGMENT_FIELDS))
        with segment_attention.segment_forward():
            out = fused_forward(attention_mask=None, **{segment_attention.NAME: segments}, **common)
    else:
        dtype = None if implementation == "sdpa" else model.get_input_embeddings().weight.dtype
        mask = shared_attention_mask(shared["pair_ids"], shared["branch_ids"], additive_dtype=dtype)
        out = fused_forward(attention_mask=mask, **common)
    plain_mask = labels[:, 1:] != -100  # TRL's fused head scores position i against label i + 1
    index = shared["index"]
    # Checked on a model's first shared batch only: reading the count back waits for the GPU, every step, and
    # a batch that does not match comes from a wrong collator, which the first batch already shows.
    if not getattr(model, _CHECKED, False):
        if int(plain_mask.sum()) != index.numel():
            raise ValueError(f"the shared rows predict {index.numel()} answer tokens, the plain batch "
                             f"{int(plain_mask.sum())}: the batch was not built by SharedPrefixCollator")
        setattr(model, _CHECKED, True)

    def to_plain(values: Any) -> Any:
        if values is None:
            return None
        return values.new_zeros(plain_mask.shape).masked_scatter(plain_mask, values.reshape(-1)[index])

    fields = {name: to_plain(getattr(out, name)) for name in _PER_TOKEN}
    loss = -fields["log_probs"].sum() / plain_mask.sum().clamp(min=1)
    return FusedCausalLMOutput(loss=loss, label_mask=plain_mask, aux_loss=out.aux_loss, **fields)


def add_shared_prefix_forward(model: Any) -> None:
    """Wrap the forward of a model that TRL gave its fused LM head, so that it understands ``shared=``.

    Without ``shared`` (generation, saving, a plain batch) the forward is TRL's, unchanged. With it and
    ``fused_lm_head=True``, the plain ``input_ids``/``attention_mask`` are ignored and the shared rows run
    instead; the outputs are laid out as the plain batch's ``labels`` say. Idempotent.
    """
    if getattr(model, _PATCHED, False):
        return
    fused_forward = model.forward

    @functools.wraps(type(model).forward)
    def forward(self: Any, *args: Any, shared: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if shared is None or not kwargs.get("fused_lm_head"):
            return fused_forward(*args, **kwargs)  # TRL's logits-returning eval path runs the plain batch
        return _run_shared(self, fused_forward, shared, kwargs["labels"])

    model.forward = types.MethodType(forward, model)
    setattr(model, _PATCHED, True)
    log.debug("shared-prefix forward added to %s", type(model).__name__)


class SharedPrefixDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with the shared-prefix collator and forward; its loss code is TRL's, untouched.

    Takes DPOTrainer's arguments, plus ``pack`` (several pairs per row when they fit) and ``attention``
    (:class:`SharedPrefixCollator`). Text-only: the
    ``processing_class`` must be a tokenizer.
    """

    def __init__(self, *args: Any, pack: bool = True, attention: str = "segments", **kwargs: Any) -> None:
        from transformers import PreTrainedTokenizerBase

        tokenizer, config = kwargs.get("processing_class"), kwargs.get("args")
        if not isinstance(tokenizer, PreTrainedTokenizerBase) or config is None:
            raise TypeError("SharedPrefixDPOTrainer needs args= and a tokenizer as processing_class=")
        if kwargs.get("data_collator") is None:
            if tokenizer.pad_token is None:  # as DPOTrainer does
                tokenizer.pad_token = tokenizer.eos_token
            kwargs["data_collator"] = SharedPrefixCollator(tokenizer.pad_token_id, config.max_length, pack,
                                                           attention)
        super().__init__(*args, **kwargs)

    def _add_shared_forwards(self) -> None:
        # Installed on first use: TRL adds its fused head, then may run the reference over the data
        # (precompute_ref_log_probs), all inside its __init__.
        from accelerate.utils import is_peft_model

        policy = self.accelerator.unwrap_model(self.model)
        add_shared_prefix_forward(policy.get_base_model() if is_peft_model(policy) else policy)
        if self.ref_model is not None:
            add_shared_prefix_forward(self.accelerator.unwrap_model(self.ref_model))

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        self._add_shared_forwards()
        return super().compute_ref_log_probs(model, inputs)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        self._add_shared_forwards()
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
