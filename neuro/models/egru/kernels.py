"""The EGRU layer's time loop: an event-driven fused C++ kernel and the pure-torch step loop.

Both compute, for ``ax = x W + b_x`` (``[T, B, 3H]``, gate order ``[z | r | g]``), recurrent
weights ``R`` (``[H, 3H]``), recurrent bias ``b_R`` (``[3H]``), thresholds ``theta`` (``[H]``) and a
zoneout keep factor ``k`` (a ``[T, B, H]`` 0/1 mask in training, ``1 - p`` in evaluation, 1 without
zoneout)::

    hb   = y[t-1] R + b_R
    z    = sigmoid(ax_z + hb_z),  r = sigmoid(ax_r + hb_r),  g = tanh(ax_g + r * hb_g)
    u    = k (z c[t-1] + (1 - z) g) + (1 - k) c[t-1]        pre-reset state
    o[t] = H(u - theta)   (H(0) = 0; backward: damp * max(0, 1 - supp |u - theta|))
    y[t] = o[t] u,   c[t] = u - o[t] theta

returning ``y, c, o`` (``[T, B, H]``, ``c`` after the reset).

The fused kernel (``csrc/egru.cpp``, ``torch.ops.neuro_egru``) exploits activity sparsity:

* forward: the recurrent product reads only the rows ``R[i]`` of units with ``y[t-1, b, i] != 0``
  (``nnz(y) * 3H`` multiply-adds instead of ``T B H 3H``). ``R`` is packed once per call into
  column panels of 256 bytes (``H x 64`` float32); the product is *streamed*: each panel is read
  once per step, row by row in order (hardware-prefetched), every row held in eight vector
  registers while it is added to the batch rows that have an event in that unit (event lists per
  unit), whose 256-byte output panels stay in L1 (the earlier per-batch-row gather read the panel
  in random order and was latency-bound: 2.2 -> 0.6 s per E3 step at 95 % sparsity). A step whose
  ``y[t-1]`` has more than 30 % events is one GEMM over the union of event rows instead (dense
  enough for BLAS to win); ``T * B <= 8`` (token-by-token inference) reads the rows of ``R`` in
  place. Gates use ATen's vectorised sigmoid/tanh (the step loop's values bit for bit: the LM's
  graph executor is tested equal to the model).
* backward: the pseudo-derivative is evaluated only where ``|u - theta| < 1/supp``; ``dL/dy[t-1]
  = dhb R^T`` is computed only for units that use it (an event at ``t-1`` or inside the support)
  with vector dot products, or as one GEMM per step when 10 % or more of them are needed (the dot
  products read the rows of ``R`` from memory for every batch row: at 30 % needed they took 2.8 s
  per E3 step where the GEMM takes 1.1 s; the support of the LM config covers most units, so the
  GEMM is the common case); ``dR = sum_t y[t-1]^T dhb[t]`` is one streamed pass after the loop
  over the event rows only (``dhb`` packed in column panels, ``(t, b)`` cut into L2-sized chunks,
  units in blocks of 64), or one GEMM when the sequence has 30 % or more events.
* ``csr=True`` visits the rows through a CSR index of the non-zeros of ``R`` in the forward and
  the sparse ``dL/dy`` (pruned or DropConnect-dropped weights are never read); ``dR`` is masked to
  the stored weights.
* :func:`input_projection`: ``x W + b`` for a mostly-zero ``x`` (the events of the layer below)
  and its weight gradient visit only the non-zeros of ``x`` (the same streamed products; rows in
  blocks of 64, every panel of ``W`` read from memory once).

The thresholds were set by measurement (H = 1350, B = 64, 1 thread, 2-core AMD EPYC; see
``benchmarks/egru_speed.py``); ``NEURO_EGRU_DENSE_FWD`` / ``_DY`` / ``_DR`` override them (the
tests force every path), ``NEURO_EGRU_STREAM_ROWS`` the row block of the input projection (64).
``NEURO_EGRU_PROFILE=1`` turns on the kernels' phase timers (``benchmarks/egru_profile.py``). ``backend="auto"`` picks the fused kernels whenever they can run: they
were faster than the torch step loop at 50, 80 and 95 % activity sparsity at that size (the GEMM
paths cover dense activity).

Dense products: every GEMM above (the recurrent product of a dense step, ``dL/dy``, the dense
``dR``, the dense input projection ``x W + b`` and ``dx``/``dW``) goes through
:mod:`neuro.kernels.blas` (``neuro/kernels/csrc/blas.h`` in C++): float32 products large enough
run on numpy's OpenBLAS on AMD CPUs, where it is 1.1-1.7x faster than torch's MKL; the per-step
``dL/dy = dhb R^T`` stays on MKL, faster there. ``NEURO_BLAS=torch`` gives the previous behaviour.
Float32 results then differ from MKL's by summation order only.

:class:`SparsityStats` reports per call: forward sparsity (fraction of ``y`` rows not read) and
backward sparsity (fraction of units outside the pseudo-derivative's support, and the fraction of
``dL/dy`` entries skipped). The torch loop gives the same values (tests in float64).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...kernels import blas
from ...kernels.extension import extension_error, load_extension
from ...surrogate import EGRUPseudoDerivative

_SOURCE = Path(__file__).with_name("csrc") / "egru.cpp"
BACKENDS = ("auto", "fused", "torch")


def load() -> bool:
    """Build (if needed) and load ``csrc/egru.cpp``; whether ``torch.ops.neuro_egru`` exists."""
    return load_extension("neuro_egru", _SOURCE, "egru_forward")


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = load


def build_error() -> str | None:
    return extension_error("neuro_egru")


def available() -> bool:
    """Whether the fused kernels can run (extension built, not disabled by NEURO_DISABLE_EXT)."""
    return os.environ.get("NEURO_DISABLE_EXT") != "1" and load()


class SparsityStats:
    """Activity and gradient sparsity of one layer's last forward (and backward) pass.

    ``forward``: fraction of ``y`` entries that are zero (rows of ``R`` not read).
    ``backward``: fraction of ``(t, b, h)`` with ``|u - theta| >= 1/supp`` (pseudo-derivative 0).
    ``backward_dy_skipped``: fraction of ``dL/dy`` entries the fused backward did not compute
    (None until a fused backward ran).

    Without autograd (inference) the two fractions are computed when first read, from the
    forward's ``y, c, o, theta`` (held until then): at batch 1, token by token, their five small
    reductions per layer cost as much as the layer's kernel. With autograd they are computed at
    once (the tensors are not kept alive past the step)."""

    def __init__(self, forward: float = float("nan"), backward: float = float("nan"),
                 backward_dy_skipped: float | None = None) -> None:
        self._forward, self._backward = forward, backward
        self.backward_dy_skipped = backward_dy_skipped
        self._pending: tuple[Tensor, Tensor, Tensor, Tensor, float] | None = None

    def defer(self, y: Tensor, c: Tensor, o: Tensor, theta: Tensor, support: float) -> None:
        """Compute ``forward``/``backward`` from these tensors when first read."""
        self._pending = (y, c, o, theta, support)

    def _resolve(self) -> None:
        if self._pending is None:
            return
        y, c, o, theta, support = self._pending
        self._pending = None
        with torch.no_grad():
            self._forward = float((y == 0).float().mean())
            u = c + o * theta
            self._backward = float(((u - theta).abs() * support >= 1).float().mean())

    @property
    def forward(self) -> float:
        self._resolve()
        return self._forward

    @forward.setter
    def forward(self, value: float) -> None:
        self._resolve()
        self._forward = value

    @property
    def backward(self) -> float:
        self._resolve()
        return self._backward

    @backward.setter
    def backward(self, value: float) -> None:
        self._resolve()
        self._backward = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SparsityStats) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"SparsityStats({self.as_dict()})"

    def as_dict(self) -> dict[str, Any]:
        return {"forward": self.forward, "backward": self.backward,
                "backward_dy_skipped": self.backward_dy_skipped}


def _keep_tensor(keep: Tensor | float, like: Tensor) -> tuple[Tensor, float]:
    if isinstance(keep, Tensor):
        return keep.to(like.dtype).contiguous(), 1.0
    return like.new_empty(0), float(keep)


class _EGRUFused(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, ax: Tensor, R: Tensor, br: Tensor, theta: Tensor, c0: Tensor, y0: Tensor,
                keep: Tensor | float, damp: float, supp: float, csr: bool,
                stats: SparsityStats | None) -> tuple[Tensor, Tensor, Tensor]:
        kt, ks = _keep_tensor(keep, ax)
        args = [t.detach().contiguous() for t in (ax, R, br, theta, c0, y0)]
        y, c, o, cache, _ = torch.ops.neuro_egru.egru_forward(*args, kt, ks, csr)
        ctx.save_for_backward(args[1], args[3], args[4], args[5], kt, y, c, o, cache)
        ctx.params = (ks, damp, supp, csr, stats)
        return y, c, o

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Tensor | None, gc: Tensor | None, go: Tensor | None):
        R, theta, c0, y0, kt, y, c, o, cache = ctx.saved_tensors
        ks, damp, supp, csr, stats = ctx.params
        gy, gc, go = (torch.zeros_like(y) if g is None else g.contiguous() for g in (gy, gc, go))
        need_y0 = bool(ctx.needs_input_grad[5])
        dax, dbr, dR, dth, dc0, dy0, st = torch.ops.neuro_egru.egru_backward(
            R, theta, c0, y0, kt, ks, y, c, o, cache, gy, gc, go, damp, supp, csr, need_y0)
        if stats is not None:
            T, B, H = y.shape
            stats.backward = float(st[0]) / max(T * B * H, 1)
            full = (T - 1) * B * H + (B * H if need_y0 else 0)
            stats.backward_dy_skipped = 1.0 - float(st[1]) / full if full else 0.0
        return (dax, dR, dbr, dth.sum(0), dc0, dy0 if need_y0 else None,
                None, None, None, None, None)


#: Input density (fraction of non-zero x) below which :func:`input_projection` uses the
#: event-driven product instead of one GEMM (measured on the E3 stack, 2-core AMD EPYC: the gather
#: breaks even with MKL's SGEMM near 30 % density).
EVENT_INPUT_DENSITY = 0.3


class _EventLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, W: Tensor, b: Tensor) -> Tensor:
        x2 = x.detach().reshape(-1, x.shape[-1]).contiguous()
        out = torch.ops.neuro_egru.event_linear_forward(x2, W.detach().contiguous(),
                                                        b.detach().contiguous())
        ctx.save_for_backward(x2, W)
        ctx.shape = x.shape
        return out.reshape(*x.shape[:-1], W.shape[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor):
        x2, W = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1]).contiguous()
        dx = blas.gemm(g2, W.t()).reshape(ctx.shape) if ctx.needs_input_grad[0] else None
        dW = torch.ops.neuro_egru.event_linear_wgrad(x2, g2) if ctx.needs_input_grad[1] else None
        db = g2.sum(0) if ctx.needs_input_grad[2] else None
        return dx, dW, db


class _DenseLinear(torch.autograd.Function):
    """``x W + b`` with its three gradients, every product through :mod:`neuro.kernels.blas`."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, W: Tensor, b: Tensor) -> Tensor:
        x2 = x.detach().reshape(-1, x.shape[-1])
        out = blas.addmm(b.detach(), x2, W.detach())
        ctx.save_for_backward(x2, W)
        ctx.shape = x.shape
        return out.reshape(*x.shape[:-1], W.shape[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor):
        x2, W = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        dx = blas.gemm(g2, W.t()).reshape(ctx.shape) if ctx.needs_input_grad[0] else None
        dW = blas.gemm(x2.t(), g2) if ctx.needs_input_grad[1] else None
        db = g2.sum(0) if ctx.needs_input_grad[2] else None
        return dx, dW, db


def input_projection(x: Tensor, W: Tensor, b: Tensor, backend: str = "auto") -> Tensor:
    """``x W + b`` (``[..., I] x [I, 3H]``). When ``x`` is mostly zero (the events of the layer
    below: density under :data:`EVENT_INPUT_DENSITY`), CPU float32/float64 and the fused kernels are
    available, the product and the weight gradient visit only the non-zeros of ``x`` (packed
    column blocks of ``W`` / of the gradient, as the recurrent product); ``dx = g W^T`` stays a
    GEMM. Else one GEMM. Outside ``backend="torch"``, the GEMMs of CPU float32 tensors (``x W``,
    ``dx = g W^T``, ``dW = x^T g``) go through :mod:`neuro.kernels.blas` (OpenBLAS on AMD CPUs for
    large products: 1.4-1.7x faster than MKL there at the E3 sizes)."""
    if (backend != "torch" and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and W.dtype == x.dtype and x.shape[-1] >= 64 and available()):
        with torch.no_grad():
            density = float((x != 0).sum()) / x.numel()
        if density < EVENT_INPUT_DENSITY:
            return _EventLinear.apply(x, W, b)
    if (backend != "torch" and x.device.type == "cpu" and x.dtype == torch.float32
            and W.dtype == b.dtype == x.dtype and W.dim() == 2 and b.dim() == 1
            and blas.backend(x.numel() // max(x.shape[-1], 1), W.shape[1], W.shape[0]) == "openblas"):
        return _DenseLinear.apply(x, W, b)
    return x @ W + b


def egru_loop(ax: Tensor, R: Tensor, br: Tensor, theta: Tensor, c0: Tensor, y0: Tensor,
              keep: Tensor | float, damp: float, supp: float) -> tuple[Tensor, Tensor, Tensor]:
    """The step loop in torch ops (autograd; any device): the reference of the fused kernel."""
    spike = EGRUPseudoDerivative(damp, supp)
    c, y = c0, y0
    ys, cs, os_ = [], [], []
    for t in range(ax.shape[0]):
        hb = y @ R + br
        az, ar, an = ax[t].chunk(3, -1)
        bz, brr, bn = hb.chunk(3, -1)
        z = torch.sigmoid(az + bz)
        r = torch.sigmoid(ar + brr)
        g = torch.tanh(an + r * bn)
        u = z * c + (1 - z) * g
        k = keep[t] if isinstance(keep, Tensor) else keep
        if not (isinstance(k, float) and k == 1.0):
            u = (u - c) * k + c
        o = spike(u - theta, strict=True)
        y = o * u
        c = u - o * theta
        ys.append(y)
        cs.append(c)
        os_.append(o)
    return torch.stack(ys), torch.stack(cs), torch.stack(os_)


def egru_sequence(ax: Tensor, R: Tensor, br: Tensor, theta: Tensor, c0: Tensor, y0: Tensor,
                  keep: Tensor | float = 1.0, *, dampening: float = 0.7, support: float = 1.0,
                  backend: str = "auto", csr: bool = False,
                  stats: SparsityStats | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Run one EGRU layer over time (module docstring): ``(y, c, o)``, each ``[T, B, H]``.

    ``backend``: ``"fused"`` (C++; CPU float32/float64), ``"torch"`` (the step loop), ``"auto"``
    (fused where it can run). ``csr``: the fused kernel visits only the non-zeros of ``R``.
    ``stats`` (optional) receives the forward/backward sparsity."""
    if backend not in BACKENDS:
        raise ValueError(f"EGRU backend must be one of {BACKENDS}, got {backend!r}")
    if ax.dim() != 3 or R.dim() != 2 or R.shape[1] != 3 * R.shape[0] or ax.shape[-1] != R.shape[1]:
        raise ValueError(f"EGRU: ax must be [T, B, 3H] and R [H, 3H], got {tuple(ax.shape)} and "
                         f"{tuple(R.shape)}")
    fusable = (ax.device.type == "cpu" and ax.dtype in (torch.float32, torch.float64)
               and available())
    if backend == "fused" and not fusable:
        raise ValueError("EGRU backend 'fused' needs CPU float32/float64 tensors and the C++ "
                         f"extension ({extension_error('neuro_egru') or 'not built'})")
    use_fused = backend == "fused" or (backend == "auto" and fusable)
    if use_fused:
        y, c, o = _EGRUFused.apply(ax, R, br, theta, c0, y0, keep, float(dampening),
                                   float(support), bool(csr), stats)
    else:
        y, c, o = egru_loop(ax, R, br, theta, c0, y0, keep, float(dampening), float(support))
    if stats is not None:
        stats.defer(y.detach(), c.detach(), o.detach(), theta.detach(), float(support))
        if torch.is_grad_enabled():
            stats._resolve()
        if not use_fused:
            stats.backward_dy_skipped = None
    return y, c, o


__all__ = ["BACKENDS", "EVENT_INPUT_DENSITY", "SparsityStats", "available", "egru_loop",
           "egru_sequence", "input_projection", "load"]
