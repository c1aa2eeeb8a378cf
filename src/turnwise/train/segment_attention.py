"""Attention for the shared-prefix layout from segment indices: no ``(rows, 1, S, S)`` mask is ever built.

The shared layout (:mod:`turnwise.train.prefix_layout`) puts a pair's history and both answer branches in one
row, ``[history | chosen | rejected | padding]``. Under a dense mask the rejected branch is told not to see
the chosen one, which costs ``rows × S²`` booleans per batch and keeps the kernel on its masked path. Here,
with one pair per row:

- one causal ``scaled_dot_product_attention`` over the whole rows, with no mask, gives the history's and the
  chosen branch's outputs exactly (each sees only what comes before it);
- the rejected branch's queries, gathered alone, attend to their row's history (a key-padding bias of
  ``rows × H``) and causally to their own branch; their outputs replace the (wrong) ones of the first call.
  On the CPU both parts are one autograd node, :class:`_RowsAttention` (flash-kernel calls merged by
  log-sum-exp, nothing computed twice); elsewhere the history + rejected sequences are gathered and run
  causally whole, the history's queries a second time, through the unmasked kernel a GPU runs fastest.

What is shared stays shared: projections, MLPs and the LM head run once over the history. The index tensors
are O(S): the rejected positions, one history length per row. Gradients of the history's keys and values sum
over both branches.

Wiring: :func:`install` registers an attention implementation (``turnwise_segments_sdpa`` or ``_eager``) and
switches a model to it. It runs the segment path when the forward carries ``turnwise_segments=`` (which
transformers passes down to every attention call, and which gradient checkpointing keeps for its
recomputation) and the model's previous kernel otherwise (generation, evaluation, a plain batch), with that
kernel's own mask.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

NAME = "turnwise_segments"
KERNELS = ("sdpa", "eager")  # the kernels it stands in for (their masks are 4-D tensors or none)
_SKIP_MASK: contextvars.ContextVar[bool] = contextvars.ContextVar("turnwise_skip_mask", default=False)


@dataclass(frozen=True)
class SegmentIndex:
    """The segments of a shared batch with one pair per row (:func:`turnwise.train.prefix_layout.segment_index`).

    Attributes:
        history: ``(rows,)`` tokens of each row's history (the columns before its chosen branch).
        rejected: ``(rows, R)`` flat positions ``row * S + column`` of each row's rejected branch, padded with 0.
        rejected_lengths: ``(rows,)`` real length of each rejected branch.
    """

    history: torch.Tensor
    rejected: torch.Tensor
    rejected_lengths: torch.Tensor
    _plans: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def nbytes(self) -> int:
        """Bytes of the index: what this layout spends in place of a mask."""
        return sum(t.nelement() * t.element_size() for t in (self.history, self.rejected, self.rejected_lengths))

    def plan(self, dtype: torch.dtype, size: int) -> _Plan:
        """The derived indices, built once per forward (every layer reuses them)."""
        if dtype not in self._plans:
            self._plans[dtype] = _plan(self, dtype, size)
        return self._plans[dtype]


@dataclass(frozen=True)
class _Plan:
    history_bias: torch.Tensor  # (rows, 1, 1, H): 0 for a history key, -inf past the row's history
    has_history: torch.Tensor  # (rows,) bool
    targets: torch.Tensor  # (n,) flat row positions of the real rejected tokens
    sources: torch.Tensor  # (n,) their outputs among the (rows × R) rejected queries
    sequences: torch.Tensor  # (rows, H + R) history then rejected branch, padded with 0 (whole-sequence path)
    sequence_sources: torch.Tensor  # (n,) the rejected outputs among the (rows × (H + R)) sequence outputs


def _plan(segments: SegmentIndex, dtype: torch.dtype, size: int) -> _Plan:
    history, rejected, lengths = segments.history, segments.rejected, segments.rejected_lengths
    rows, width = rejected.shape
    device = rejected.device
    steps_h = torch.arange(int(history.max()) if rows else 0, device=device)
    in_history = steps_h[None] < history[:, None]
    bias = torch.zeros(in_history.shape, dtype=dtype, device=device).masked_fill(~in_history, float("-inf"))
    real = torch.arange(width, device=device)[None] < lengths[:, None]
    sources = real.reshape(-1).nonzero().squeeze(1)
    # whole sequences, history then branch: step j < H is the row's column j, step H + k is rejected token k
    steps = torch.arange(steps_h.numel() + width, device=device)[None].expand(rows, -1)
    branch_step = (steps - history[:, None]).clamp(0, max(width - 1, 0))
    row_start = (torch.arange(rows, device=device) * size)[:, None]
    sequences = torch.where(steps < history[:, None], row_start + steps, rejected.gather(1, branch_step))
    sequences = torch.where(steps < (history + lengths)[:, None], sequences, 0)
    row_of = sources // max(width, 1)
    sequence_sources = row_of * steps.shape[1] + history[row_of] + sources % max(width, 1)
    return _Plan(bias[:, None, None], history > 0, rejected.reshape(-1)[sources], sources, sequences,
                 sequence_sources)


def _flash(query: Any, key: Any, value: Any, causal: bool, scale: float, bias: Any = None) -> tuple[Any, Any]:
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, causal, attn_mask=bias,
                                                                       scale=scale)


def _flash_backward(grad: Any, query: Any, key: Any, value: Any, out: Any, lse: Any, causal: bool, scale: float,
                    bias: Any = None) -> tuple[Any, Any, Any]:
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad, query, key, value, out, lse, 0.0, causal, attn_mask=bias, scale=scale)


class _RowsAttention(torch.autograd.Function):
    """The CPU path in one autograd node: the rows causally, then the rejected queries over their row's history
    (every key) and their own branch (causally) as one softmax, written over the rows' rejected outputs.

    The rejected part is two calls of the flash kernel merged by their log-sum-exps; its backward calls the
    kernel's backward on each part with the *merged* output and log-sum-exp, which is exactly the gradient of
    the single softmax (the identity blockwise flash attention rests on). The rows' backward gets a zero
    gradient where the rejected outputs replaced its own. Nothing is computed twice, and every gradient is
    accumulated into the three full-size buffers the rows' backward returns.
    """

    @staticmethod
    def forward(ctx: Any, query: Any, key: Any, value: Any, plan: _Plan, rejected: Any, scale: float) -> Any:
        rows, heads, size, dim = query.shape
        out_rows, lse_rows = _flash(query, key, value, True, scale)
        where = (rejected // size, rejected % size)  # (rows, R) each: the row and column of each rejected token
        q_r, k_r, v_r = (x.permute(0, 2, 1, 3)[where].permute(0, 2, 1, 3) for x in (query, key, value))
        width = plan.history_bias.shape[-1]
        k_h, v_h = key[:, :, :width], value[:, :, :width]
        out_h, lse_h = _flash(q_r, k_h, v_h, False, scale, plan.history_bias)
        out_r, lse_r = _flash(q_r, k_r, v_r, True, scale)
        lse_h = lse_h.masked_fill(~plan.has_history[:, None, None], float("-inf"))  # the kernel gives 0 for no key
        lse = torch.logaddexp(lse_h, lse_r)
        out_b = (torch.exp(lse_h - lse)[..., None] * out_h + torch.exp(lse_r - lse)[..., None] * out_r).to(query.dtype)
        out = out_rows.transpose(1, 2).reshape(rows * size, heads, dim)  # a copy: the rows' own output stays saved
        out.index_copy_(0, plan.targets, out_b.transpose(1, 2).reshape(-1, heads, dim).index_select(0, plan.sources))
        ctx.save_for_backward(query, key, value, out_rows, lse_rows, q_r, k_r, v_r, out_b, lse, rejected)
        ctx.plan, ctx.scale = plan, scale
        return out.view(rows, size, heads, dim)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        query, key, value, out_rows, lse_rows, q_r, k_r, v_r, out_b, lse, rejected = ctx.saved_tensors
        plan, scale = ctx.plan, ctx.scale
        rows, heads, size, dim = query.shape
        flat = grad.reshape(rows * size, heads, dim)
        grad_b = flat.new_zeros(rejected.numel(), heads, dim)
        grad_b.index_copy_(0, plan.sources, flat.index_select(0, plan.targets))
        grad_b = grad_b.view(*rejected.shape, heads, dim).transpose(1, 2).contiguous()
        grad_rows = flat.index_fill(0, plan.targets, 0.0).view(rows, size, heads, dim).transpose(1, 2)
        dq, dk, dv = _flash_backward(grad_rows, query, key, value, out_rows, lse_rows, True, scale)
        width = plan.history_bias.shape[-1]
        dq_h, dk_h, dv_h = _flash_backward(grad_b, q_r, key[:, :, :width], value[:, :, :width], out_b, lse, False,
                                           scale, plan.history_bias)
        dq_r, dk_r, dv_r = _flash_backward(grad_b, q_r, k_r, v_r, out_b, lse, True, scale)
        dk[:, :, :width] += dk_h
        dv[:, :, :width] += dv_h
        where = (rejected // size, rejected % size)
        for full, part in ((dq, dq_h + dq_r), (dk, dk_r), (dv, dv_r)):
            full.permute(0, 2, 1, 3).index_put_(where, part.permute(0, 2, 1, 3), accumulate=True)
        return dq, dk, dv, None, None, None


def _pick(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``(rows, heads, S, d)`` → ``(n, heads, L, d)`` at the flat row positions ``index`` ``(n, L)``."""
    rows, heads, size, dim = x.shape
    flat = x.transpose(1, 2).reshape(rows * size, heads, dim)
    picked = flat.index_select(0, index.reshape(-1))  # its backward is an index_add, no index_put
    return picked.reshape(*index.shape, heads, dim).transpose(1, 2)


def _repeat(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Grouped-query keys or values repeated to every query head, as transformers' sdpa path does on the CPU."""
    if x.shape[1] == heads:
        return x
    from transformers.integrations.sdpa_attention import repeat_kv

    return repeat_kv(x, heads // x.shape[1])


def _flat(out: torch.Tensor) -> torch.Tensor:
    """``(n, heads, L, d)`` → ``(n × L, heads, d)``."""
    return out.transpose(1, 2).reshape(-1, out.shape[1], out.shape[-1])


def segment_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      segments: SegmentIndex, *, scaling: float | None = None, dropout: float = 0.0,
                      split: bool | None = None) -> torch.Tensor:
    """Attention of the shared rows, each branch seeing its history and itself; ``(rows, S, heads, d)`` like sdpa's.

    ``query`` is ``(rows, heads, S, d)``, ``key``/``value`` ``(rows, kv_heads, S, d)`` as transformers passes them.
    ``split`` (default: on the CPU without dropout) runs everything through :class:`_RowsAttention`;
    otherwise through the whole history + rejected sequences (see the module docstring).
    """
    rows, heads, size, dim = query.shape
    key, value = _repeat(key, heads), _repeat(value, heads)
    if split is None:
        split = query.device.type == "cpu" and dropout == 0.0
    plan = segments.plan(query.dtype, size)
    if split:
        scale = scaling if scaling is not None else dim ** -0.5
        return _RowsAttention.apply(query, key, value, plan, segments.rejected, scale)
    out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, dropout_p=dropout)
    q, k, v = (_pick(x, plan.sequences) for x in (query, key, value))
    whole = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, dropout_p=dropout)
    rejected = _flat(whole).index_select(0, plan.sequence_sources)
    out = out.transpose(1, 2).reshape(rows * size, heads, dim)  # (rows, S, heads, d) is what transformers expects
    return out.index_copy(0, plan.targets, rejected).reshape(rows, size, heads, dim)


def _dispatcher(base: str) -> Any:
    """The attention function registered as ``turnwise_segments_<base>``: segments when given, else ``base``."""

    def dispatch(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                 scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
        segments = kwargs.pop(NAME, None)
        if segments is not None:
            return segment_attention(module, query, key, value, segments, scaling=scaling, dropout=dropout), None
        if base == "eager":
            from transformers.models.llama.modeling_llama import eager_attention_forward as forward
        else:
            from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

            forward = ALL_ATTENTION_FUNCTIONS[base]
        return forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)

    return dispatch


def _masker(base: str) -> Any:
    """The mask function registered beside it: ``base``'s mask, or none inside :func:`segment_forward`."""

    def mask(*args: Any, **kwargs: Any) -> Any:
        if _SKIP_MASK.get():
            return None
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

        return ALL_MASK_ATTENTION_FUNCTIONS[base](*args, **kwargs)

    return mask


def base_kernel(implementation: str | None) -> str | None:
    """The kernel a model had before :func:`install` (None = the model's default, sdpa), given its current one."""
    prefix = f"{NAME}_"
    return implementation[len(prefix):] if implementation and implementation.startswith(prefix) else implementation


@contextlib.contextmanager
def segment_forward():
    """Within it, models switched by :func:`install` build no attention mask (their segment path needs none)."""
    token = _SKIP_MASK.set(True)
    try:
        yield
    finally:
        _SKIP_MASK.reset(token)


def install(model: Any) -> None:
    """Switch ``model`` to the segment-aware attention ``turnwise_segments_<kernel>``; idempotent.

    The previous kernel (sdpa or eager; None counts as sdpa) keeps serving every forward without
    ``turnwise_segments=``, with its own mask. Nothing is written to the model's config: a saved model loads
    with its default kernel. Raises ValueError for a kernel it cannot stand in for (flash attention).
    """
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    current = model.config._attn_implementation
    if base_kernel(current) != current:
        return
    base = current or "sdpa"
    if base not in KERNELS:
        raise ValueError(f"segment attention stands in for {' or '.join(KERNELS)}, not {base}")
    name = f"{NAME}_{base}"
    AttentionInterface.register(name, _dispatcher(base))
    AttentionMaskInterface.register(name, _masker(base))
    model.set_attn_implementation(name)
