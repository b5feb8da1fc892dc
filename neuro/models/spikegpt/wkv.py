r"""WKV: the linear-attention recurrence of RWKV-4, the time mixing of SpikeGPT.

Per batch row and channel, with ``w = -exp(time_decay)`` (a per-step log-decay, < 0) and
``u = time_first`` (the log-bonus of the current token), for tokens ``t = 0 .. T-1``::

    y_t = ( S_t + e^{u + k_t} v_t ) / ( Z_t + e^{u + k_t} )
    S_{t+1} = e^w S_t + e^{k_t} v_t          Z_{t+1} = e^w Z_t + e^{k_t}

with ``S_0 = Z_0 = 0`` for a fresh sequence, i.e. the closed form

.. math::

    y_t = \frac{\sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t}
               {\sum_{i<t} e^{(t-1-i) w + k_i} + e^{u + k_t}}

(the newest past token has decay ``e^0``; the current one gets the bonus ``u`` instead).
``y_t`` is a convex combination of ``v_0 .. v_t`` (unitless weights; ``y`` has ``v``'s unit).

Numerics: ``S`` and ``Z`` are held as ``S = a e^p``, ``Z = b e^p`` (max subtraction), so no
exponential of an unbounded argument is taken; ``k = +-100`` works in float32 where a naive
``e^k`` overflows. The state ``WKVState(a, b, p)`` (``[B, C]`` each, float64; a fresh one is
``(0, 0, -1e38)``) lets a sequence be cut anywhere: ``wkv`` over ``[0, T)`` equals ``wkv`` over
``[0, t)`` then over ``[t, T)`` from the returned state, bit for bit.

Backward (hand-written in the C++ kernel; ``D_t`` the denominator, ``beta_t = e^{u+k_t}/D_t``,
``g_t = dL/dy_t``)::

    dL/dv_i = g_i beta_i + e^{k_i} R_i            R_i = sum_{t>i} g_t e^{(t-1-i) w} / D_t
    dL/dk_i = g_i beta_i (v_i - y_i) + e^{k_i} (v_i R_i - Q_i),   Q_i: R_i with g_t y_t
    dL/du   = sum_t g_t beta_t (v_t - y_t)
    dL/dw   = sum_t g_t (dS_t/dw - y_t dZ_t/dw) / D_t,  dS_{t+1}/dw = e^w (S_t + dS_t/dw)

``R`` and ``Q`` run backwards in max-subtracted form. No gradient flows into a given state
(truncated back-propagation through time at the cut).

Two implementations, same results: the C++ kernel ``csrc/wkv.cpp`` (CPU, float32/float64, built
on first use with :func:`neuro.kernels.extension.load_extension`; arithmetic in float64) and a
pure-torch recurrence (any device; also float64 arithmetic; autograd for the backward).
:func:`wkv_closed_form` is the ``O(T^2)`` oracle the tests compare both with.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from neuro.kernels.extension import extension_error, load_extension

_SOURCE = Path(__file__).with_name("csrc") / "wkv.cpp"
FRESH = -1e38  #: ``p`` of a fresh state (log-scale of the empty sums)


class WKVState(NamedTuple):
    """Max-subtracted sums ``S = a e^p``, ``Z = b e^p``; each ``[B, C]`` float64."""

    a: Tensor
    b: Tensor
    p: Tensor


def init_state(batch: int, channels: int, device: torch.device | str | None = None) -> WKVState:
    """A fresh state (empty past) for ``batch`` rows and ``channels`` channels."""
    z = torch.zeros(batch, channels, dtype=torch.float64, device=device)
    return WKVState(z, z.clone(), torch.full_like(z, FRESH))


def load() -> bool:
    """Build (if needed) and load ``csrc/wkv.cpp``; whether ``torch.ops.neuro_wkv`` exists."""
    return load_extension("neuro_wkv", _SOURCE, "wkv_forward")


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = load


def build_error() -> str | None:
    return extension_error("neuro_wkv")


def backend(x: Tensor) -> str:
    """``"cpp"`` when the C++ kernel handles ``x`` (CPU float32/64, extension built), else
    ``"torch"``. ``NEURO_WKV=torch`` forces the torch path; ``NEURO_DISABLE_EXT=1`` too."""
    if os.environ.get("NEURO_WKV") == "torch" or os.environ.get("NEURO_DISABLE_EXT") == "1":
        return "torch"
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and load():
        return "cpp"
    return "torch"


class _WKVFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor, u: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor,
                p: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        y, a1, b1, p1 = torch.ops.neuro_wkv.wkv_forward(w, u, k, v, a, b, p)
        ctx.save_for_backward(w, u, k, v, a, b, p)
        ctx.mark_non_differentiable(a1, b1, p1)
        return y, a1, b1, p1

    @staticmethod
    def backward(ctx: Any, gy: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        w, u, k, v, a, b, p = ctx.saved_tensors
        gw, gu, gk, gv = torch.ops.neuro_wkv.wkv_backward(w, u, k, v, a, b, p, gy.contiguous())
        return gw, gu, gk, gv, None, None, None


def _wkv_torch(w: Tensor, u: Tensor, k: Tensor, v: Tensor,
               state: WKVState) -> tuple[Tensor, WKVState]:
    """The same recurrence with torch ops (float64 arithmetic; autograd gives the backward)."""
    dt = k.dtype
    w, u, k, v = (t.to(torch.float64) for t in (w, u, k, v))
    a, b, p = state
    ys = []
    for t in range(k.shape[0]):
        kt, vt = k[t], v[t]
        m = torch.maximum(p, u + kt)
        e1, e2 = torch.exp(p - m), torch.exp(u + kt - m)
        ys.append((e1 * a + e2 * vt) / (e1 * b + e2))
        m = torch.maximum(w + p, kt)
        e1, e2 = torch.exp(w + p - m), torch.exp(kt - m)
        a, b, p = e1 * a + e2 * vt, e1 * b + e2, m
    y = torch.stack(ys).to(dt) if ys else k.new_zeros(k.shape).to(dt)
    return y, WKVState(a.detach(), b.detach(), p.detach())


def wkv(time_decay: Tensor, time_first: Tensor, k: Tensor, v: Tensor,
        state: WKVState | None = None) -> tuple[Tensor, WKVState]:
    """WKV over a time-first sequence (module docstring).

    Args:
        time_decay: ``[C]``, raw; the decay per step is ``exp(-exp(time_decay))``.
        time_first: ``[C]``, the current token's log-bonus ``u``.
        k, v: ``[T, B, C]`` keys and values.
        state: the past (``None``: a fresh sequence).
    Returns:
        ``(y [T, B, C], state after the last token)``.
    """
    if k.dim() != 3 or v.shape != k.shape:
        raise ValueError(f"wkv: k and v must be [T, B, C] of one shape, got {tuple(k.shape)} "
                         f"and {tuple(v.shape)}")
    if not k.is_floating_point() or v.dtype != k.dtype:
        raise ValueError(f"wkv: k and v must be floating point of one dtype, got {k.dtype} and "
                         f"{v.dtype}")
    C = k.shape[2]
    if time_decay.shape != (C,) or time_first.shape != (C,):
        raise ValueError(f"wkv: time_decay and time_first must be [{C}], got "
                         f"{tuple(time_decay.shape)} and {tuple(time_first.shape)}")
    if state is None:
        state = init_state(k.shape[1], C, device=k.device)
    elif any(s.shape != (k.shape[1], C) for s in state):
        raise ValueError(f"wkv: state tensors must be [{k.shape[1]}, {C}], got "
                         f"{[tuple(s.shape) for s in state]}")
    w = -torch.exp(time_decay.to(k.dtype))
    u = time_first.to(k.dtype)
    if backend(k) == "cpp":
        st = [s.detach().to(torch.float64).contiguous() for s in state]
        y, a, b, p = _WKVFunction.apply(w.contiguous(), u.contiguous(), k.contiguous(),
                                        v.contiguous(), *st)
        return y, WKVState(a, b, p)
    return _wkv_torch(w, u, k, v, WKVState(*(s.detach().to(torch.float64) for s in state)))


def wkv_closed_form(time_decay: Tensor, time_first: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """The ``O(T^2)`` closed form (module docstring) as a softmax over log-weights; the oracle
    for tests, differentiable, in the inputs' dtype. ``k, v`` ``[T, B, C]``."""
    T = k.shape[0]
    w = -torch.exp(time_decay)
    t = torch.arange(T, device=k.device)
    lag = (t[:, None] - 1 - t[None, :]).to(k.dtype)  # [t, i]: t-1-i
    logw = lag[:, :, None, None] * w + k[None]  # [t, i, B, C]
    diag = time_first + k  # [T, B, C] on i == t
    eye = (t[:, None] == t[None, :])[:, :, None, None]
    logw = torch.where(eye, diag[None].expand_as(logw), logw)
    logw = logw.masked_fill((t[None, :] > t[:, None])[:, :, None, None], float("-inf"))
    return (torch.softmax(logw, dim=1) * v[None]).sum(1)


__all__ = ["FRESH", "WKVState", "backend", "init_state", "load", "wkv", "wkv_closed_form"]
