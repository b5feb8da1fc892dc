"""Fused multi-step LIF: one autograd function for the whole ``[T, M]`` sequence.

Per element and step (``M`` = batch x neurons flattened, parameters broadcast to ``[M]``)::

    decay_input:  h[t] = v[t-1] + (x[t] - v[t-1]) * (1 - beta)
    otherwise:    h[t] = beta * v[t-1] + x[t]
    s[t] = H(h[t] - thr)                             (H(0) = 1)
    v[t] = h[t] - s[t] * thr      (reset="subtract")
           h[t] * (1 - s[t])      (reset="zero")

Forward returns ``(spikes[T, M], h[T, M], v_last[M])``; ``h`` (membrane before reset) is kept for
the backward pass instead of the autograd graph of T steps, and is differentiable so that membrane
traces and non-spiking readouts can be trained. The backward pass runs the recurrence in reverse
with the surrogate derivative ``surrogate.derivative(h - thr)``; ``detach_reset`` drops the
gradient through the spike in the reset term, as in SpikingJelly.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..surrogate import ATan, EGRUPseudoDerivative, FastSigmoid, Sigmoid, Surrogate, Triangle
from . import _ext


def _surrogate_code(surrogate: Surrogate | None) -> tuple[int, float, float]:
    """(kind, p0, p1) understood by the C++ backward; kind 0 means "values given in a tensor"."""
    if surrogate is None:
        return 5, 0.0, 0.0
    if type(surrogate) is ATan:
        return 1, surrogate.alpha / 2, math.pi / 2 * surrogate.alpha
    if type(surrogate) is FastSigmoid:
        return 2, surrogate.slope, 0.0
    if type(surrogate) is Sigmoid:
        return 3, surrogate.alpha, 0.0
    if type(surrogate) is Triangle:
        return 4, surrogate.height, 1.0 / surrogate.width
    if type(surrogate) is EGRUPseudoDerivative:
        return 4, surrogate.dampening, surrogate.support
    return 0, 0.0, 0.0


def _reset(h: Tensor, s: Tensor, thr: Tensor, subtract: bool) -> Tensor:
    return h - s * thr if subtract else h * (1 - s)


def _forward_torch(x, v0, beta, alpha, thr, decay_input, subtract):
    spikes = torch.empty_like(x)
    hseq = torch.empty_like(x)
    v = v0
    for t in range(x.shape[0]):
        h = v + (x[t] - v) * alpha if decay_input else beta * v + x[t]
        s = (h - thr >= 0).to(x.dtype)
        hseq[t] = h
        spikes[t] = s
        v = _reset(h, s, thr, subtract)
    return spikes, hseq, v


def _backward_torch(gs, gh_ext, gvl, h, sg, x, v0, beta, alpha, thr, decay_input, subtract,
                    detach_reset, need_beta, need_thr):
    gx = torch.empty_like(h)
    gbeta = torch.zeros_like(v0)
    gthr = torch.zeros_like(v0)
    gv = gvl
    for t in range(h.shape[0] - 1, -1, -1):
        ht, d = h[t], sg[t]
        s = (ht - thr >= 0).to(h.dtype)
        if subtract:
            dvdh = torch.ones_like(ht) if detach_reset else 1 - thr * d
            dvdthr = -s if detach_reset else thr * d - s
        else:
            dvdh = 1 - s if detach_reset else (1 - s) - ht * d
            dvdthr = torch.zeros_like(ht) if detach_reset else ht * d
        gh = gs[t] * d + gv * dvdh
        if gh_ext is not None:
            gh = gh + gh_ext[t]
        if need_thr:
            gthr = gthr + (gv * dvdthr - gs[t] * d)
        if need_beta:
            if t > 0:
                sp = (h[t - 1] - thr >= 0).to(h.dtype)
                vprev = _reset(h[t - 1], sp, thr, subtract)
            else:
                vprev = v0
        if decay_input:
            gx[t] = gh * alpha
            gv = gh - gh * alpha
            if need_beta:
                gbeta = gbeta + gh * (vprev - x[t])
        else:
            gx[t] = gh
            gv = gh * beta
            if need_beta:
                gbeta = gbeta + gh * vprev
    return gx, gv, gbeta, gthr


class _LIFMultiStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, v0: Tensor, beta: Tensor, thr: Tensor, decay_input: bool,
                subtract: bool, detach_reset: bool, surrogate: Surrogate, cpp: bool):
        # unused outputs (h when no membrane is recorded) get no gradient buffer: a zero-filled
        # [T, M] tensor would cost as much memory as the saved state
        ctx.set_materialize_grads(False)
        alpha = 1 - beta
        if cpp:
            spikes, h, vlast = torch.ops.neuro_ops.lif_forward(
                x, v0, beta, alpha, thr, decay_input, subtract
            )
        else:
            spikes, h, vlast = _forward_torch(x, v0, beta, alpha, thr, decay_input, subtract)
        need_beta = ctx.needs_input_grad[2]
        keep_x = x if (need_beta and decay_input) else x.new_empty(0)
        ctx.save_for_backward(h, keep_x, v0, beta, alpha, thr)
        ctx.flags = (decay_input, subtract, detach_reset, cpp)
        ctx.surrogate = surrogate
        return spikes, h, vlast

    @staticmethod
    def backward(ctx: Any, gs: Tensor | None, gh: Tensor | None, gvl: Tensor | None):
        h, x, v0, beta, alpha, thr = ctx.saved_tensors
        decay_input, subtract, detach_reset, cpp = ctx.flags
        need_beta, need_thr = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        gs = torch.zeros_like(h) if gs is None else gs.contiguous()
        gvl = torch.zeros_like(v0) if gvl is None else gvl.contiguous()
        if cpp:
            kind, p0, p1 = _surrogate_code(ctx.surrogate)
            sg = ctx.surrogate.derivative(h - thr).contiguous() if kind == 0 else h.new_empty(0)
            gh_arg = h.new_empty(0) if gh is None else gh.contiguous()
            gx, gv0, gbeta, gthr = torch.ops.neuro_ops.lif_backward(
                gs, gh_arg, gvl, h, sg, x, v0, beta, alpha, thr, decay_input,
                subtract, detach_reset, need_beta, need_thr, kind, p0, p1,
            )
        else:
            sg = (ctx.surrogate.derivative(h - thr) if ctx.surrogate is not None
                  else torch.zeros_like(h))
            gx, gv0, gbeta, gthr = _backward_torch(
                gs, gh, gvl, h, sg, x, v0, beta, alpha, thr, decay_input, subtract, detach_reset,
                need_beta, need_thr,
            )
        return (gx, gv0, gbeta if need_beta else None, gthr if need_thr else None,
                None, None, None, None, None)


def lif_multistep(
    x: Tensor,
    v0: Tensor,
    beta: Tensor,
    thr: Tensor,
    *,
    decay_input: bool,
    reset: str,
    detach_reset: bool,
    surrogate: Surrogate | None,
    cpp: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fused LIF over time.

    Args:
        x: input current ``[T, *S]``; v0: initial membrane ``[*S]``.
        beta, thr: decay factor and threshold, broadcastable to ``S``.
        surrogate: spike surrogate; ``None`` for a non-spiking use (infinite threshold), whose
            spike output then carries no gradient.
        cpp: use the C++ kernel (CPU float32; ignored when the extension is unavailable or the
            input is not a CPU float32 tensor) instead of the torch implementation.

    Returns:
        ``(spikes[T, *S], h[T, *S], v_last[*S])`` with ``h`` the membrane before reset.
    """
    cpp = cpp and x.dtype == torch.float32 and x.device.type == "cpu" and _ext.load()
    T, step_shape = x.shape[0], x.shape[1:]
    M = v0.numel()
    xf = x.reshape(T, M).contiguous()
    bf = (beta if beta.shape == step_shape else beta.expand(step_shape)).reshape(M).contiguous()
    tf = (thr if thr.shape == step_shape else thr.expand(step_shape)).reshape(M).contiguous()
    v0f = v0.reshape(M).contiguous()
    if cpp and not (torch.is_grad_enabled() and any(
            t.requires_grad for t in (x, v0, beta, thr))):
        # inference: the kernel without the autograd Function around it (at batch 1 the
        # per-call overhead, ~20 small torch calls at 3-8 us each here, is as much as the work)
        s, h, vl = torch.ops.neuro_ops.lif_forward(xf, v0f, bf, 1 - bf, tf, decay_input,
                                                   reset == "subtract")
    else:
        s, h, vl = _LIFMultiStep.apply(
            xf, v0f, bf, tf, decay_input, reset == "subtract", detach_reset, surrogate, cpp,
        )
    return s.view(x.shape), h.view(x.shape), vl.view(step_shape)
