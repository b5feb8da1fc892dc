"""The DCLS delay convolution of ``neuro.layers.DelayedLinear`` (training path): event-driven for
sparse inputs, spectral otherwise.

For an input ``x [T, B, I]`` (time first), a kernel ``[O, I, K]`` (``K`` odd, tap ``k`` holds the
delay ``d = K - 1 - k`` steps) and ``R`` right-padding steps::

    y[t, b, o] = bias[o] + sum_i sum_{d=0}^{K-1} kernel[o, i, K-1-d] * x[t - d, b, i]
    t = 0 .. T + R - 1,   x[s] = 0 for s < 0 or s >= T

which is ``F.conv1d`` over the input padded with ``K - 1`` zero steps on the left and ``R`` on the
right (:func:`dcls_conv_dense`, the reference, ``T * B * I * K * O`` multiply-adds per pass).
Output ``[T + R, B, O]``; all values float, no fixed-point format. Two faster paths compute the
same values (up to float32 rounding; tests: ``tests/neuro/kernels/test_dcls_kernels.py``):

* ``"event"`` (C++ kernels in ``csrc/dcls_ops.cpp``) visits only the non-zero inputs
  ``c = x[s, b, i]`` (spikes, or event counts of SHD frames):
  forward ``y[s + d, b, :] += c * kernel[:, i, K-1-d]`` for ``d < K``, and the kernel gradient
  ``gkernel[:, i, K-1-d] += c * gy[s + d, b, :]`` (its transpose), ``nnz(x) * K * O``
  multiply-adds each; the input gradient (dense, only when ``x`` requires one: not for data) is
  :func:`dcls_input_grad`.
* ``"spectral"`` (:mod:`neuro.kernels.dcls_spectral`, pure torch, any device and float dtype):
  per-frequency products of real DFTs over time, all GEMMs, ~``4 (N/2 + 1) B I O`` multiply-adds
  per pass instead of ``T K B I O`` (~6x fewer for the SHD layers); its cost does not depend on
  the sparsity of ``x``.

Gradients reach the weights and positions through the dense kernel (autograd of
``DelayedLinear.kernel``). :func:`dcls_conv` with ``path="auto"`` takes, on CPU float32, the event
path when the extension builds and at most :func:`event_density_limit` of ``x`` is non-zero (a
cost model of both paths' multiply-adds), else the spectral path (``K >= SPECTRAL_MIN_TAPS``),
else the dense ``conv1d``; on GPU and for other dtypes the dense ``conv1d``. ``NEURO_DCLS_PATH``
(``event``, ``spectral``, ``dense``) overrides the choice.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .dcls_spectral import SPECTRAL_MIN_TAPS, dcls_spectral, spectral_input_grad, spectral_length
from .extension import extension_error, load_extension

_SOURCE = Path(__file__).with_name("csrc") / "dcls_ops.cpp"

#: Cost of one multiply-add of the event-driven kernels relative to one of the GEMMs of the
#: spectral path (scattered reads from the L2 cache vs blocked GEMMs): the event path is chosen
#: when its multiply-adds times this are fewer than the spectral path's
#: (:func:`event_density_limit`). Fitted to the measured crossovers, forward + backward of the SHD
#: layer shapes at batch 256, 2 threads, torch 2.13, on the 2-core Xeon (AVX-512) of the benchmark
#: machine while it was otherwise idle: hidden 256 -> 256 ~5 %, input 140 -> 256 ~4.5 %, readout
#: 256 -> 20 ~7.5 % non-zero inputs (predicted 4.4, 5.3, 8.6 %). On a busy machine the event path
#: fares relatively better (its threads do not wait on each other).
EVENT_COST = 3.0


def load() -> bool:
    """Build (if needed) and load ``csrc/dcls_ops.cpp``; whether ``torch.ops.neuro_dcls`` exists."""
    return load_extension("neuro_dcls", _SOURCE, "dcls_forward")


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = load


def build_error() -> str | None:
    return extension_error("neuro_dcls")


def available() -> bool:
    """Whether the event-driven kernels can run (extension built, not disabled)."""
    return os.environ.get("NEURO_DISABLE_EXT") != "1" and load()


def event_density_limit(steps: int, batch: int, n_in: int, n_out: int, taps: int,
                        right_padding: int, input_grad: bool) -> float:
    """The fraction of non-zero inputs below which the event path is expected to be faster.

    Multiply-adds of the forward pass and the kernel gradient (the input gradient is the same on
    both paths): event-driven ``2 nnz K O'`` (``O`` rounded up to whole vectors of the C++
    kernels; times :data:`EVENT_COST`); spectral, with
    ``F = N // 2 + 1`` frequencies, ``F (4 T B I + 8 B I O + 2 Tout B O)`` (the DFT of ``x`` twice,
    the products of both passes, the inverse of ``y``) plus the DFT of ``gy`` ``2 F Tout B O``
    when no input gradient shares it; with ``K < SPECTRAL_MIN_TAPS`` the dense convolution's
    ``2 T B I K O``."""
    tout = steps + right_padding
    vw = int(torch.ops.neuro_dcls.dcls_vector_width()) if available() else 1
    padded_out = -(-n_out // vw) * vw  # the kernels work on whole vectors of outputs
    per_density = 2.0 * steps * batch * n_in * taps * padded_out * EVENT_COST
    if per_density == 0:
        return 1.0
    if taps < SPECTRAL_MIN_TAPS:
        return 1.0 / EVENT_COST
    f = spectral_length(steps, taps, right_padding) // 2 + 1
    spectral = f * (4.0 * steps * batch * n_in + 8.0 * batch * n_in * n_out
                    + 2.0 * tout * batch * n_out * (1 if input_grad else 2))
    return spectral / per_density


def _check(x: Tensor, kernel: Tensor, bias: Tensor | None, right_padding: int) -> None:
    if x.dim() != 3:
        raise ValueError(f"dcls_conv: x must be [T, B, I], got {tuple(x.shape)}")
    if kernel.dim() != 3 or kernel.shape[1] != x.shape[2]:
        raise ValueError(f"dcls_conv: kernel must be [O, I={x.shape[2]}, K], got {tuple(kernel.shape)}")
    if bias is not None and bias.shape != (kernel.shape[0],):
        raise ValueError(f"dcls_conv: bias must be [{kernel.shape[0]}], got {tuple(bias.shape)}")
    if right_padding < 0:
        raise ValueError(f"dcls_conv: right_padding must be >= 0 steps, got {right_padding}")


def dcls_conv_dense(x: Tensor, kernel: Tensor, bias: Tensor | None, right_padding: int) -> Tensor:
    """The reference: ``F.conv1d`` over ``x`` padded with ``K-1`` steps left, ``R`` right.

    ``x [T, B, I]``, ``kernel [O, I, K]`` -> ``[T + R, B, O]``; any device and dtype.
    """
    _check(x, kernel, bias, right_padding)
    xb = F.pad(x.permute(1, 2, 0), (kernel.shape[-1] - 1, right_padding))  # [B, I, T + K-1 + R]
    return F.conv1d(xb, kernel, bias).permute(2, 0, 1)


def dcls_input_grad(gy: Tensor, kernel: Tensor, steps: int) -> Tensor:
    """``gx [T, B, I]`` (``T = steps``) from ``gy [T + R, B, O]``: the transpose of the layer,
    ``gx[s, b, i] = sum_{o, d} kernel[o, i, K-1-d] * gy[s + d, b, o]`` (``gy`` zero past its end).

    Spectral (:func:`neuro.kernels.dcls_spectral.spectral_input_grad`) when
    ``K >= SPECTRAL_MIN_TAPS``, else one GEMM per tap over the time-first rows.
    """
    Tout, B, n_out = gy.shape
    _, n_in, K = kernel.shape
    T = steps
    gy = gy.contiguous()
    if K >= SPECTRAL_MIN_TAPS:
        return spectral_input_grad(gy, kernel, T)
    taps = kernel.permute(2, 0, 1).flip(0).contiguous()  # taps[d] = kernel[:, :, K-1-d]: [K, out, in]
    gx = gy.new_zeros(T * B, n_in)
    flat = gy.view(Tout * B, n_out)
    for k in range(K):
        hi = min(T + k, Tout)  # rows s + k < Tout
        if hi > k:
            gx[: (hi - k) * B].addmm_(flat[k * B: hi * B], taps[k])
    return gx.view(T, B, n_in)


class _DclsEvents(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel: Tensor, bias: Tensor | None, right_padding: int,
                events: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        k = kernel.detach().contiguous()
        b = bias.detach().contiguous() if bias is not None else None
        y = torch.ops.neuro_dcls.dcls_forward(*events, k, b, x.shape[0] + right_padding)
        ctx.save_for_backward(k, *events)
        ctx.steps, ctx.in_features = x.shape[0], x.shape[2]
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Tensor):
        kernel, *events = ctx.saved_tensors
        gy = gy.contiguous()
        gx = gk = gb = None
        if ctx.needs_input_grad[0]:
            gx = dcls_input_grad(gy, kernel, ctx.steps)
        if ctx.needs_input_grad[1]:
            gk = torch.ops.neuro_dcls.dcls_backward_kernel(*events, gy, ctx.in_features,
                                                           kernel.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 1))
        return gx, gk, gb, None, None


PATHS = ("auto", "event", "spectral", "dense")


def dcls_conv(x: Tensor, kernel: Tensor, bias: Tensor | None = None, right_padding: int = 0, *,
              path: str = "auto") -> Tensor:
    """The delay convolution ``[T, B, I] -> [T + R, B, O]`` (module docstring).

    ``path``:

    * ``"auto"``: on CPU float32, ``"event"`` when the extension is available and at most
      :func:`event_density_limit` of ``x`` is non-zero, else ``"spectral"`` when
      ``K >= SPECTRAL_MIN_TAPS``, else ``"dense"``; other devices and dtypes: ``"dense"``. The
      environment variable ``NEURO_DCLS_PATH`` (one of the paths) overrides ``"auto"``;
    * ``"event"``: event-driven forward and kernel gradient (C++; ``ValueError`` when it cannot
      run: not CPU float32, or the extension is unavailable);
    * ``"spectral"``: per-frequency products of real DFTs over time, all GEMMs (pure torch, any
      device and float dtype);
    * ``"dense"``: the ``conv1d`` reference.
    """
    if path not in PATHS:
        raise ValueError(f"dcls_conv: path must be one of {PATHS}, got {path!r}")
    if path == "auto":
        path = os.environ.get("NEURO_DCLS_PATH") or "auto"
        if path not in PATHS:
            raise ValueError(f"NEURO_DCLS_PATH must be one of {PATHS}, got {path!r}")
    _check(x, kernel, bias, right_padding)
    right_padding = int(right_padding)
    tensors = (x, kernel) if bias is None else (x, kernel, bias)
    if path == "dense" or x.numel() == 0:
        return dcls_conv_dense(x, kernel, bias, right_padding)
    if path == "spectral":
        return dcls_spectral(x, kernel, bias, right_padding)
    cpu32 = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
    if path == "event":
        if not (cpu32 and available()):
            why = ("the C++ kernels are unavailable: " + str(extension_error("neuro_dcls")) if cpu32
                   else "x, kernel and bias must be CPU float32")
            raise ValueError(f"dcls_conv: the event-driven path cannot run ({why})")
        events = torch.ops.neuro_dcls.dcls_events(x.detach().contiguous(), 1.0)
        return _DclsEvents.apply(x, kernel, bias, right_padding, tuple(events))
    if not cpu32:
        return dcls_conv_dense(x, kernel, bias, right_padding)
    if available():
        T, B, n_in = x.shape
        limit = event_density_limit(T, B, n_in, kernel.shape[0], kernel.shape[-1], right_padding,
                                    x.requires_grad)
        events = torch.ops.neuro_dcls.dcls_events(x.detach().contiguous(), limit)
        if events[0].numel() > 0:  # sparse enough
            return _DclsEvents.apply(x, kernel, bias, right_padding, tuple(events))
    if kernel.shape[-1] >= SPECTRAL_MIN_TAPS:
        return dcls_spectral(x, kernel, bias, right_padding)
    return dcls_conv_dense(x, kernel, bias, right_padding)


__all__ = ["EVENT_COST", "PATHS", "SPECTRAL_MIN_TAPS", "available", "dcls_conv", "dcls_conv_dense",
           "dcls_input_grad", "event_density_limit", "load"]
