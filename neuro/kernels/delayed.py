"""Integer-delay synapses: ``y[t, o] = sum_i W[o, i] x[t - D[o, i], i] + b[o]``.

One function shared by ``neuro.layers.DelayedLinear`` (integer-delay mode) and the graph
executor's ``DelayedAffine`` node, so both perform the same float operations in the same order:
for each distinct delay ``d`` in increasing order, the input shifted by ``d`` steps times the
weights with that delay, accumulated onto the bias.
"""
from __future__ import annotations

import torch
from torch import Tensor


def shift_time(x: Tensor, d: int) -> Tensor:
    """``y[t] = x[t - d]`` along dim 0, zeros before the start."""
    if d == 0:
        return x
    if d >= x.shape[0]:
        return torch.zeros_like(x)
    return torch.cat([torch.zeros_like(x[:d]), x[:-d]])


def delayed_affine(x: Tensor, weight: Tensor, delay: Tensor, bias: Tensor | None) -> Tensor:
    """``x [T, ..., in]``, ``weight [out, in]``, integer ``delay [out, in]`` >= 0 -> ``[T, ..., out]``."""
    delay = torch.as_tensor(delay)
    out = x.new_zeros(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        out = out + bias
    for d in torch.unique(delay).tolist():
        w = weight * (delay == d).to(weight.dtype)
        out = out + shift_time(x, int(d)) @ w.t()
    return out
