"""Float32 matrix products through OpenBLAS where it beats torch's MKL (AMD CPUs), else torch.

``gemm(a, b, out, alpha=, beta=)`` computes ``out = alpha * a @ b + beta * out`` for 2-D CPU
tensors (``a [M, K]``, ``b [K, N]``, ``out [M, N]``); ``op(a)`` is a strided view (``w.t()`` for
``W^T``), passed to BLAS without a copy when it has a unit stride along either dimension.
``addmm(bias, a, b)`` is ``bias + a @ b`` (``bias [N]`` added to every row). The C++ side is the
header ``neuro/kernels/csrc/blas.h`` (``neuro::blas::gemm_out / mm_out / addmm_out``), which every
neuro extension can include (``#include "blas.h"``; :mod:`neuro.kernels.extension` puts it on the
include path); this module calls it through the small extension ``torch.ops.neuro_blas``.

Why: on the 2-core AMD EPYC (Zen 3, AVX2) of the EGRU benchmarks, torch's MKL 2024.2 runs large
single-thread SGEMMs at 42-54 GFLOP/s, the OpenBLAS 0.3.30 in
numpy's wheel at 65-79 GFLOP/s: ``4480 x 1350 @ 1350 x 4050`` 1093 vs 651 ms,
``(4480 x 1350)^T @ 4480 x 4050`` 958 vs 719 ms. With 64 rows (the EGRU's per-step products) they
are close: OpenBLAS wins when ``b`` is read along its rows (``64 x 1350 @ 1350 x 4050``: 13.8 vs
17.1 ms), MKL when ``b`` is a transposed view (``64 x 4050 @ (1350 x 4050)^T``: 15.2 vs 13.4 ms);
from 256 rows on OpenBLAS is 1.2-1.8x faster either way. So a product is routed when
``min(M, N, K)`` is at least 64 (``b`` row-major) or 256 (``b`` transposed);
``NEURO_BLAS_MIN_DIM`` sets one threshold for both (``benchmarks/blas_crossover.py`` measures the
table).

Selection (environment, read at every call):

* ``NEURO_BLAS=auto`` (default): OpenBLAS on AMD CPUs (cpuid vendor ``AuthenticAMD``) when it is
  found, torch (``at::mm_out`` / ``at::addmm_out``) otherwise;
* ``NEURO_BLAS=torch``: always torch;
* ``NEURO_BLAS=openblas``: OpenBLAS for every float32 product above the threshold; a
  ``RuntimeError`` naming what is missing when it cannot be found or the extension is not built;
* ``NEURO_BLAS_LIB``: the OpenBLAS library to use; unset, the one already loaded in the process
  (numpy's: ``import numpy``, which torch does, loads it; found by its path containing
  ``"openblas"``). Nothing is linked: the symbols are looked up with ``dlsym``.

Only float32 is routed; other dtypes, devices and the small products use torch (``torch.addmm``
/ ``torch.mm``). Each OpenBLAS call runs on ``torch.get_num_threads()`` threads and restores
OpenBLAS's own count afterwards. Float32 results differ from MKL's in summation order (relative
differences around 1e-7 of the product's scale).
"""
from __future__ import annotations

import os

import numpy  # noqa: F401  (loads numpy's OpenBLAS into the process, where blas.h finds it)
import torch
from torch import Tensor

from .extension import SHARED_INCLUDE, extension_error, load_extension

_SOURCE = SHARED_INCLUDE / "blas_ops.cpp"
MODES = ("auto", "torch", "openblas")


def load() -> bool:
    """Build (if needed) and load ``csrc/blas_ops.cpp``; whether ``torch.ops.neuro_blas`` exists."""
    return load_extension("neuro_blas", _SOURCE, "gemm_out")


#: ``python -m neuro.kernels.build`` protocol
build = load


def build_error() -> str | None:
    return extension_error("neuro_blas")


def _mode() -> str:
    mode = os.environ.get("NEURO_BLAS") or "auto"
    if mode not in MODES:
        raise ValueError(f"NEURO_BLAS must be one of {MODES}, got {mode!r}")
    return mode


def _ext() -> bool:
    """Whether the extension can run; with NEURO_BLAS=openblas its absence is an error."""
    mode = _mode()
    ok = os.environ.get("NEURO_DISABLE_EXT") != "1" and load()
    if not ok and mode == "openblas":
        raise RuntimeError("NEURO_BLAS=openblas needs the C++ extension neuro_blas "
                           f"({build_error() or 'disabled by NEURO_DISABLE_EXT=1'})")
    return ok


def backend(m: int, n: int, k: int, dtype: torch.dtype = torch.float32, *,
            b_transposed: bool = False) -> str:
    """``"openblas"`` or ``"torch"``: what computes an ``[m, k] @ [k, n]`` product of ``dtype``
    (``b_transposed``: ``b`` is a transposed view such as ``w.t()``) under the current environment
    (raises like :func:`gemm` for ``NEURO_BLAS=openblas`` without OpenBLAS)."""
    if not _ext():
        return "torch"
    code = torch.ops.neuro_blas.choose(m, n, k, dtype == torch.float32, b_transposed)
    return "openblas" if code else "torch"


def info() -> dict[str, object]:
    """The OpenBLAS library found (``path``; ``""`` if none), why it cannot be used (``error``;
    ``""`` if it can), ``amd`` (cpuid vendor), the smallest routed dimension ``min_dim`` (``b``
    transposed) and ``min_dim_row_major_b``, and ``mode``."""
    mode = _mode()
    if not _ext():
        return {"path": "", "error": build_error() or "extension disabled", "amd": False,
                "min_dim": 0, "min_dim_row_major_b": 0, "mode": mode}
    path, error, amd, min_t, min_r = torch.ops.neuro_blas.info()
    return {"path": path, "error": error, "amd": bool(amd), "min_dim": int(min_t),
            "min_dim_row_major_b": int(min_r), "mode": mode}


def last_call() -> dict[str, int | str]:
    """What the last :func:`gemm`/:func:`addmm` on this thread did in C++: ``backend``, and for
    OpenBLAS the thread count ``requested`` (``torch.get_num_threads()``), the count OpenBLAS ran
    with (``effective``) and the count restored afterwards (``restored``)."""
    be, req, eff, res = torch.ops.neuro_blas.last_call()
    return {"backend": {-1: "none", 0: "torch", 1: "openblas"}[int(be)], "requested": int(req),
            "effective": int(eff), "restored": int(res)}


def _check(a: Tensor, b: Tensor) -> None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"blas.gemm: need a [M, K] and b [K, N], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")


def gemm(a: Tensor, b: Tensor, out: Tensor | None = None, *, alpha: float = 1.0,
         beta: float = 0.0) -> Tensor:
    """``out = alpha * a @ b + beta * out`` (``out`` is written in place and returned; a new
    ``[M, N]`` tensor when None, then ``beta`` must be 0). No autograd."""
    _check(a, b)
    if out is None:
        if beta != 0.0:
            raise ValueError("blas.gemm: beta != 0 needs an `out` to accumulate into")
        out = a.new_empty(a.shape[0], b.shape[1])
    if tuple(out.shape) != (a.shape[0], b.shape[1]):
        raise ValueError(f"blas.gemm: out must be {(a.shape[0], b.shape[1])}, got "
                         f"{tuple(out.shape)}")
    with torch.no_grad():
        if (a.device.type == "cpu" and a.dtype == b.dtype == out.dtype and _ext()):
            torch.ops.neuro_blas.gemm_out(a, b, out, float(alpha), float(beta))
        elif alpha == 1.0 and beta == 0.0:
            torch.mm(a, b, out=out)
        else:
            torch.addmm(out, a, b, beta=beta, alpha=alpha, out=out)
    return out


def addmm(bias: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``bias + a @ b`` (``bias [N]`` added to every row; a new ``[M, N]`` tensor). No autograd."""
    _check(a, b)
    with torch.no_grad():
        if a.device.type == "cpu" and a.dtype == b.dtype == bias.dtype and _ext():
            out = a.new_empty(a.shape[0], b.shape[1])
            torch.ops.neuro_blas.addmm_out(bias, a, b, out)
            return out
        return torch.addmm(bias, a, b)


def linear_forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x W^T + b`` for 2-D ``x [M, K]``, ``weight [N, K]`` through :func:`gemm` / :func:`addmm`
    (no autograd: the forward of :func:`linear` and of the spike layer's dense path)."""
    w_t = weight.detach().t()
    if bias is None:
        return gemm(x.detach(), w_t)
    return addmm(bias.detach(), x.detach(), w_t)


def linear_backward(gy: Tensor, x: Tensor, weight: Tensor, needs: tuple[bool, ...],
                    has_bias: bool) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of :func:`linear_forward` for ``dL/dy = gy [M, N]``: ``(gy W, gy^T x,
    gy summed over rows)``, each only where ``needs`` (autograd's ``needs_input_grad``) asks."""
    gy = gy.contiguous()
    gx = gemm(gy, weight.detach()) if needs[0] else None
    gw = gemm(gy.t(), x.detach()) if needs[1] else None
    gb = gy.sum(0) if has_bias and needs[2] else None
    return gx, gw, gb


class _Linear(torch.autograd.Function):
    """``y = x W^T + b`` over 2-D ``x [M, K]``, ``W [N, K]``; forward and both gradients through
    :func:`gemm` / :func:`addmm`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return linear_forward(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        return linear_backward(gy, x, weight, ctx.needs_input_grad, ctx.has_bias)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.linear`` (``x [..., K]``, ``weight [N, K]``) with the products of the
    forward and the backward through :func:`gemm` (OpenBLAS where it is selected and faster).
    Other devices, dtypes than float32/float64 CPU, or an extension that cannot be built: the
    plain ``F.linear``."""
    if (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64)
            or weight.dtype != x.dtype or x.numel() == 0 or not _ext()):
        return torch.nn.functional.linear(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    return _Linear.apply(x2, weight, bias).view(*x.shape[:-1], weight.shape[0])


class Linear(torch.nn.Linear):
    """``torch.nn.Linear`` (same parameters and state dict) computing through :func:`linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


__all__ = ["MODES", "Linear", "addmm", "backend", "build", "build_error", "gemm", "info",
           "last_call", "linear", "linear_backward", "linear_forward", "load"]
