"""The spectral path of the DCLS delay convolution (:mod:`neuro.kernels.dcls`): the convolution
over time as per-frequency products of real DFTs, every step a real GEMM (pure torch, any device
and float dtype).

With ``N = max(T + K - 1, T + R)`` (no circular wrap-around), ``F = N // 2 + 1`` frequencies,
the DFT ``X_f = sum_t x[t] e^{-2 pi i f t / N}`` of the input ``x [T, B, I]`` over time and that of
the taps ``a[d, i, o] = kernel[o, i, K-1-d]``:

    forward           Y_f  = X_f A_f                  y = first T + R steps of the inverse
    input gradient    GX_f = G_f conj(A_f)^T          gx = first T steps        (a correlation)
    kernel gradient   W_f  = conj(X_f)^T G_f          w[d] = first K lags, gkernel[:, :, K-1-d]

with ``G_f`` the DFT of ``gy [T + R, B, O]``. Complex values are kept as (real, imaginary) pairs
``[2, F, ...]``; a DFT is one GEMM with a ``[2F, L]`` cos/sin matrix, a product four real batched
GEMMs, the inverse one GEMM. Cost per pass ~``F (2 T B I + 4 B I O + 2 Tout B O)`` multiply-adds
instead of the direct ``T K B I O`` (~6x fewer for the SHD layers, T ~ 100, K = 25). Values equal
the direct convolution up to float32 rounding (the DFT matrices are computed in float64).
Frequencies are processed in chunks (:data:`CHUNK_BYTES`).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor

#: With fewer taps than this, the dense ``conv1d`` (and, on the event path, per-tap GEMMs for the
#: input gradient) replaces the spectral products: their cost does not shrink with ``K`` while
#: the direct convolution's does.
SPECTRAL_MIN_TAPS = 8


def spectral_length(steps: int, taps: int, right_padding: int) -> int:
    """DFT length ``N`` without circular wrap-around: ``N >= T + K - 1`` (forward, input and
    kernel gradients) and ``N >= T + R`` (every output step)."""
    return max(steps + taps - 1, steps + right_padding)


#: Frequencies are processed in equal chunks whose largest temporary (a spectrum or a product,
#: ``2 * chunk * max(B*I, B*O, I*O)`` values) stays below this many bytes: pieces that the
#: allocator reuses instead of mapping (and page-faulting) fresh memory for every call, in few
#: enough GEMM calls (each a parallel region) to stay cheap when the CPU is shared. Measured on
#: the SHD layer-2 input gradient, one thread: 8-32 MiB equally fast, unchunked 20 % slower.
CHUNK_BYTES = 32 << 20


@functools.lru_cache(maxsize=32)
def _dft_chunks(n: int, length: int, chunk: int, dtype: torch.dtype,
                device: torch.device) -> tuple[tuple[Tensor, Tensor], ...]:
    """Real DFT matrices of length ``n`` for signals of up to ``length`` steps, per chunk of
    ``chunk`` frequencies ``f`` (of ``F = n // 2 + 1``): ``D_c [2 Fc, length]`` (rows
    ``cos(2 pi f t / n)``, then ``-sin``: the real and imaginary parts of
    ``X_f = sum_t x_t e^{-2 pi i f t / n}``) and the inverse for real signals restricted to the
    chunk ``E_c [length, 2 Fc]`` (``x_t = sum_f w_f (Re X_f cos - Im X_f sin) / n``, ``w_f = 2``
    except ``w_0 = 1`` and ``w_{n/2} = 1``; summing ``E_c @ X_c`` over the chunks inverts).
    Computed in float64 (exact phases), returned in ``dtype``."""
    f = torch.arange(n // 2 + 1, dtype=torch.float64)
    t = torch.arange(length, dtype=torch.float64)
    theta = 2 * math.pi * torch.outer(f, t).remainder_(n) / n  # [F, length]
    w = torch.full_like(f, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    cos, sin = theta.cos(), theta.sin()
    out = []
    for f0 in range(0, len(f), chunk):
        c = slice(f0, min(len(f), f0 + chunk))
        d = torch.cat([cos[c], -sin[c]])
        e = torch.cat([cos[c] * w[c, None], -sin[c] * w[c, None]]).t() / n
        out.append((d.to(dtype=dtype, device=device),
                    e.contiguous().to(dtype=dtype, device=device)))
    return tuple(out)


def _dft(n: int, length: int, per_freq: int, dtype: torch.dtype,
         device: torch.device) -> tuple[tuple[Tensor, Tensor], ...]:
    """:func:`_dft_chunks` with the chunk size for ``per_freq`` values per frequency."""
    itemsize = torch.finfo(dtype).bits // 8
    freqs = n // 2 + 1
    pieces = -(-freqs // max(1, CHUNK_BYTES // (2 * per_freq * itemsize)))  # ceil
    return _dft_chunks(n, length, -(-freqs // pieces), dtype, device)  # balanced chunks


def _taps(kernel: Tensor) -> Tensor:
    """Taps by delay ``a[d, i, o] = kernel[o, i, K-1-d]``: ``[K, I, O]`` contiguous."""
    return kernel.flip(-1).permute(2, 1, 0).contiguous()


def _spectrum(d: Tensor, v: Tensor) -> Tensor:
    """``[2, Fc, ...]``: real and imaginary DFT parts of ``v [L, ...]`` over dim 0 (one GEMM)."""
    L = v.shape[0]
    out = d[:, :L] @ v.reshape(L, -1)
    return out.view(2, out.shape[0] // 2, *v.shape[1:])


def _complex_bmm(a: Tensor, b: Tensor, conj_a: bool, conj_b: bool, ta: bool, tb: bool) -> Tensor:
    """Per-frequency complex products of ``[2, Fc, m, k]`` (real, imaginary) pairs:
    ``op(a) @ op(b)`` with ``op`` = optional conjugate and transpose of the last two dims."""
    ar, ai = (a[0].transpose(1, 2), a[1].transpose(1, 2)) if ta else (a[0], a[1])
    br, bi = (b[0].transpose(1, 2), b[1].transpose(1, 2)) if tb else (b[0], b[1])
    sa, sb = (-1.0 if conj_a else 1.0), (-1.0 if conj_b else 1.0)
    out = ar.new_empty(2, ar.shape[0], ar.shape[1], br.shape[2])
    # (ar + i sa ai)(br + i sb bi) = (ar br - sa sb ai bi) + i (sb ar bi + sa ai br)
    torch.bmm(ar, br, out=out[0])
    out[0].baddbmm_(ai, bi, alpha=-sa * sb)
    torch.bmm(ai, br, out=out[1])
    if sa != 1.0:
        out[1].neg_()
    out[1].baddbmm_(ar, bi, alpha=sb)
    return out


def _inverse_add(e: Tensor, spec: Tensor, steps: int, out: Tensor | None) -> Tensor:
    """``out [steps, prod(...)] +=`` the first ``steps`` time steps of the real signal with the
    chunk of spectrum ``spec [2, Fc, ...]`` (one GEMM; ``out=None`` starts the sum)."""
    spec = spec.reshape(spec.shape[0] * spec.shape[1], -1)
    if out is None:
        return e[:steps] @ spec
    return out.addmm_(e[:steps], spec)


def _input_grad(chunks: tuple[tuple[Tensor, Tensor], ...], gy: Tensor, taps: Tensor,
                steps: int) -> Tensor:
    """``gx [steps, B, I]``: the correlation ``gx_f = gy_f conj(a_f)^T`` of ``gy [Tout, B, O]``
    with the taps ``[K, I, O]``, chunk by chunk."""
    gx = None
    for d, e in chunks:
        gx = _inverse_add(e, _complex_bmm(_spectrum(d, gy), _spectrum(d, taps),
                                          False, True, False, True), steps, gx)
    assert gx is not None  # _dft_chunks gives at least one chunk (n // 2 + 1 >= 1 frequencies)
    return gx.view(steps, gy.shape[1], taps.shape[1])


class DclsSpectral(torch.autograd.Function):
    """Forward, input and kernel gradients as per-frequency products of real DFTs over time,
    every step a real GEMM (pure torch), in chunks of frequencies."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel: Tensor, bias: Tensor | None, right_padding: int) -> Tensor:
        T, B, n_in = x.shape
        n_out, _, K = kernel.shape
        Tout = T + right_padding
        length = max(T, Tout, K)
        per_freq = max(B * n_in, B * n_out, n_in * n_out)
        chunks = _dft(spectral_length(T, K, right_padding), length, per_freq, x.dtype, x.device)
        x = x.detach().contiguous()
        taps = _taps(kernel.detach())
        y = None
        for d, e in chunks:
            y = _inverse_add(e, _complex_bmm(_spectrum(d, x), _spectrum(d, taps),
                                             False, False, False, False), Tout, y)
        assert y is not None  # at least one chunk
        y = y.view(Tout, B, n_out)
        if bias is not None:
            y = y + bias.detach()
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              taps if ctx.needs_input_grad[0] else None)
        ctx.chunks, ctx.steps, ctx.taps = chunks, T, K
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: Tensor):
        x, taps = ctx.saved_tensors
        gy = gy.contiguous()
        gx = gk = gb = None
        if ctx.needs_input_grad[0]:
            gx = _input_grad(ctx.chunks, gy, taps, ctx.steps)
        if ctx.needs_input_grad[1]:
            # w[d, i, o] = sum_{s, b} x[s, b, i] gy[s + d, b, o]  (w_f = conj(x_f)^T gy_f), the
            # first K lags; tap K-1-d
            w = None
            for d, e in ctx.chunks:
                w = _inverse_add(e, _complex_bmm(_spectrum(d, x), _spectrum(d, gy),
                                                 True, False, True, False), ctx.taps, w)
            assert w is not None  # at least one chunk
            gk = w.view(ctx.taps, x.shape[2], gy.shape[2]).permute(2, 1, 0).flip(-1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 1))
        return gx, gk, gb, None


def spectral_input_grad(gy: Tensor, kernel: Tensor, steps: int) -> Tensor:
    """``gx [T, B, I]`` (``T = steps``) from ``gy [T + R, B, O]`` and the kernel ``[O, I, K]``:
    ``gx[s, b, i] = sum_{o, d} kernel[o, i, K-1-d] * gy[s + d, b, o]`` (``gy`` zero past its end)."""
    Tout, B, n_out = gy.shape
    _, n_in, K = kernel.shape
    chunks = _dft(spectral_length(steps, K, Tout - steps), max(steps, Tout, K),
                  max(B * n_in, B * n_out, n_in * n_out), gy.dtype, gy.device)
    return _input_grad(chunks, gy.contiguous(), _taps(kernel), steps)


def dcls_spectral(x: Tensor, kernel: Tensor, bias: Tensor | None, right_padding: int) -> Tensor:
    """``x [T, B, I]``, ``kernel [O, I, K]`` -> ``[T + R, B, O]`` (differentiable in all three)."""
    return DclsSpectral.apply(x, kernel, bias, int(right_padding))


__all__ = ["CHUNK_BYTES", "SPECTRAL_MIN_TAPS", "DclsSpectral", "dcls_spectral", "spectral_input_grad",
           "spectral_length"]
