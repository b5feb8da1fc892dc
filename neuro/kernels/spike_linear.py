"""Event-driven linear layer for spike inputs: ``y = x @ W^T + b`` with ``x`` mostly zero.

Spikes are binary and sparse, so instead of a dense GEMM the C++ kernel walks the non-zeros of
each input row and adds the matching weight rows (cost ~ nnz x out_features rather than
rows x in x out). The same non-zero list (CSR) is saved for the weight gradient
``dW^T[k, :] += x[r, k] * dy[r, :]``, which also keeps memory low: a binary input is saved as
int32 column indices, not as float32 activations. ``dx = dy @ W`` stays a dense GEMM, as do the
forward and weight gradient of a layer whose input is too dense; these go through
:mod:`neuro.kernels.blas` (numpy's OpenBLAS on AMD CPUs for the products where it measured faster
than torch's MKL, else torch).

The result equals ``torch.nn.functional.linear`` up to float summation order.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _ext, blas

#: Above this fraction of non-zero inputs the dense GEMM is faster. Measured forward + weight
#: gradient, event-driven vs ``addmm`` + ``gy^T @ x`` (MKL), 1 thread, AMD EPYC (Zen 3), torch
#: 2.13, Bernoulli inputs [3200-32000, 128-1024] (README, "LIF training across shapes"): with
#: 128-1024 outputs
#: the event path wins 1.7-3.1x at 10 %, 1.3-2.0x at 15 %, 1.3-1.5x at 20 %, and loses (0.8x)
#: at 30 %.
DENSITY_LIMIT = 0.20
#: The same for fewer than :data:`NARROW` outputs (a readout): break-even near 15 % (35 outputs:
#: 1.37x at 10 %, 1.05x at 15 %, 0.85x at 20 %).
NARROW_DENSITY_LIMIT = 0.12
NARROW = 64


#: Attribute under which :func:`packed_slabs` keeps a weight's packed copy.
_CACHE_ATTR = "_neuro_packed_slabs"


def packed_slabs(weight: Tensor) -> Tensor | None:
    """The event kernel's packed copy of ``weight`` [N, K], cached while the weight is unchanged.

    The forward kernel reads the weight as column slabs (``W^T`` cut into blocks of output
    columns, ``ceil(N / 64) * K * 64`` floats; ``spike_linear_pack``). Packing costs one pass over
    the weight, ~0.5-1 ms for 768 x 768 on one core: at batch 1 and T = 100 that is as much as
    the event products of the layer. Inference (no gradient) therefore keeps the packed copy on
    the weight tensor and reuses it while the weight's storage, version counter (every in-place
    change, e.g. ``optimizer.step()`` or ``load_state_dict``, bumps it), offset, shape and strides
    are unchanged; any change repacks. Training does not cache (the weight changes every step).
    Returns None for tensors that cannot carry the cache (inference-mode tensors have no
    version counter); the kernel then packs per call. Memory: one extra float32 copy of the weight.
    """
    if weight.is_inference():
        return None
    storage = weight.untyped_storage()
    key = (weight._version, weight.storage_offset(), tuple(weight.shape), weight.stride())
    cached = getattr(weight, _CACHE_ATTR, None)
    if cached is not None and cached[0]() is storage and cached[1] == key:
        return cached[2]
    packed = torch.ops.neuro_ops.spike_linear_pack(weight.detach().contiguous())
    setattr(weight, _CACHE_ATTR, (weakref.ref(storage), key, packed))
    return packed


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        limit = DENSITY_LIMIT if weight.shape[0] >= NARROW else NARROW_DENSITY_LIMIT
        y, row_ptr, col, val = torch.ops.neuro_ops.spike_linear_forward(
            x, weight.detach().contiguous(), bias.detach() if bias is not None else None, limit,
            None,
        )
        if y.numel() == 0:  # too dense: the dense GEMM is faster
            ctx.dense = True
            ctx.save_for_backward(x, weight)
            ctx.has_bias = bias is not None
            return blas.linear_forward(x, weight, bias)
        ctx.dense = False
        ctx.save_for_backward(row_ptr, col, val, weight)
        ctx.in_features = x.shape[1]
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor):
        if ctx.dense:
            x, weight = ctx.saved_tensors
            return blas.linear_backward(gy, x, weight, ctx.needs_input_grad, ctx.has_bias)
        gy = gy.contiguous()
        row_ptr, col, val, weight = ctx.saved_tensors
        gx = blas.gemm(gy, weight) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            gw = torch.ops.neuro_ops.spike_linear_backward_weight(
                row_ptr, col, val, gy, ctx.in_features
            )
        gb = gy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def spike_linear(x: Tensor, weight: Tensor, bias: Tensor | None, *, cpp: bool) -> Tensor:
    """``F.linear`` over the last dimension, event-driven when ``x`` is sparse.

    ``x`` is ``[..., in]``; the event-driven path is taken when ``cpp`` is true, ``x`` and the
    weight are float32 and at most :data:`DENSITY_LIMIT` of ``x`` is non-zero
    (:data:`NARROW_DENSITY_LIMIT` for fewer than :data:`NARROW` outputs).
    """
    if not (cpp and _ext.load()) or x.dtype != torch.float32 or weight.dtype != torch.float32 or x.numel() == 0:
        return F.linear(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    y = _SpikeLinear.apply(x2, weight, bias) if needs_grad else _infer(x2, weight, bias)
    return y.view(*x.shape[:-1], weight.shape[0])


def _infer(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The forward without autograd, with the packed weight cached (:func:`packed_slabs`)."""
    limit = DENSITY_LIMIT if weight.shape[0] >= NARROW else NARROW_DENSITY_LIMIT
    cached = getattr(weight, _CACHE_ATTR, None)
    packed = packed_slabs(weight) if cached is not None else None
    y = torch.ops.neuro_ops.spike_linear_forward(
        x, weight.detach().contiguous(), bias.detach() if bias is not None else None, limit, packed
    )[0]
    if y.numel() == 0 and x.shape[0] > 0:  # too dense: the dense GEMM is faster
        return blas.linear_forward(x, weight, bias)
    if packed is None:  # the event path ran: keep the packed weight for the next call
        packed_slabs(weight)
    return y
