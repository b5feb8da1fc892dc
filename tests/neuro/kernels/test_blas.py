"""``neuro.kernels.blas``: the routed float32 product equals a float64 reference for shapes,
transposed / strided / column-major operands, alpha and beta; NEURO_BLAS selects the backend;
a missing OpenBLAS is a clear error under NEURO_BLAS=openblas; thread counts are set and restored."""
from __future__ import annotations

import ctypes

import pytest
import torch

from neuro.kernels import blas


def test_the_extension_is_built_and_finds_numpys_openblas():
    assert blas.load(), blas.build_error()
    info = blas.info()
    assert "openblas" in info["path"] and info["error"] == "", info
    assert info["min_dim"] == 256 and info["min_dim_row_major_b"] == 64


def _operand(rows: int, cols: int, layout: str, g: torch.Generator) -> torch.Tensor:
    """A [rows, cols] float32 view: row-major, transposed (column-major), or strided both ways."""
    if layout == "row":
        return torch.randn(rows, cols, generator=g)
    if layout == "t":
        return torch.randn(cols, rows, generator=g).t()
    return torch.randn(rows * 2, cols * 3, generator=g)[::2, ::3]  # no unit stride: copied


CASES = [  # (M, N, K, layout a, layout b, layout out, alpha, beta)
    (7, 5, 3, "row", "row", "row", 1.0, 0.0),
    (33, 17, 65, "t", "row", "row", 1.0, 0.0),
    (33, 17, 65, "row", "t", "row", 0.5, 0.0),
    (40, 30, 20, "t", "t", "row", -1.5, 1.0),
    (40, 30, 20, "strided", "row", "t", 2.0, 0.25),
    (12, 9, 31, "row", "strided", "strided", 1.0, -0.5),
    (64, 100, 1, "row", "row", "t", 1.0, 1.0),
    (1, 50, 70, "row", "t", "row", 1.0, 0.0),
]


@pytest.mark.parametrize("M,N,K,la,lb,lc,alpha,beta", CASES)
def test_openblas_product_equals_float64_reference(monkeypatch, M, N, K, la, lb, lc, alpha, beta):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")  # route these small shapes too
    g = torch.Generator().manual_seed(M * 1000 + N * 10 + K)
    a, b = _operand(M, K, la, g), _operand(K, N, lb, g)
    out = _operand(M, N, lc, g)
    before = out.clone()
    ref = alpha * (a.double() @ b.double()) + beta * before.double()
    got = blas.gemm(a, b, out, alpha=alpha, beta=beta)
    assert got is out and blas.last_call()["backend"] == "openblas"
    scale = (a.double().abs() @ b.double().abs()).max() * abs(alpha) + before.abs().max() * abs(beta)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=float(scale) * 1e-6)
    assert torch.equal(a, _operand(M, K, la, torch.Generator().manual_seed(M * 1000 + N * 10 + K)))


def test_beta_zero_ignores_nan_in_out(monkeypatch):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")
    a, b = torch.randn(20, 30), torch.randn(30, 10)
    out = torch.full((20, 10), float("nan"))
    blas.gemm(a, b, out)
    torch.testing.assert_close(out, a @ b, rtol=1e-5, atol=1e-5)


def test_addmm_adds_the_bias_to_every_row(monkeypatch):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")
    a, b, bias = torch.randn(25, 40), torch.randn(60, 40).t(), torch.randn(60)
    got = blas.addmm(bias, a, b)
    assert blas.last_call()["backend"] == "openblas"
    torch.testing.assert_close(got, torch.addmm(bias, a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("M,N,K", [(0, 5, 3), (4, 0, 3), (4, 5, 0)])
def test_zero_size_dims_follow_torch(monkeypatch, M, N, K):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")
    a, b = torch.randn(M, K), torch.randn(K, N)
    out = torch.ones(M, N)
    blas.gemm(a, b, out, alpha=2.0, beta=3.0)
    assert blas.last_call()["backend"] == "torch"
    assert torch.equal(out, torch.full((M, N), 3.0))


def test_float64_and_small_products_stay_on_torch(monkeypatch):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    a = torch.randn(300, 300, dtype=torch.float64)
    got = blas.gemm(a, a)
    assert blas.last_call()["backend"] == "torch" and torch.equal(got, a @ a)
    assert blas.backend(300, 300, 300, torch.float64) == "torch"
    # 64 rows: MKL is faster with a transposed b (the crossover is 256), OpenBLAS with a row-major b
    assert blas.backend(64, 4050, 1350, b_transposed=True) == "torch"
    assert blas.backend(255, 4050, 1350, b_transposed=True) == "torch"
    assert blas.backend(256, 256, 256, b_transposed=True) == "openblas"
    assert blas.backend(64, 4050, 1350) == "openblas"
    assert blas.backend(63, 4050, 1350) == "torch"
    blas.gemm(torch.randn(64, 300), torch.randn(300, 300).t())
    assert blas.last_call()["backend"] == "torch"
    blas.gemm(torch.randn(64, 300), torch.randn(300, 300))
    assert blas.last_call()["backend"] == "openblas"
    blas.gemm(torch.randn(32, 300), torch.randn(300, 300))
    assert blas.last_call()["backend"] == "torch"


def test_environment_selects_the_backend(monkeypatch):
    a, b = torch.randn(300, 260), torch.randn(260, 270)
    monkeypatch.setenv("NEURO_BLAS", "torch")
    got = blas.gemm(a, b)
    assert blas.last_call()["backend"] == "torch" and torch.equal(got, a @ b)
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    blas.gemm(a, b)
    assert blas.last_call()["backend"] == "openblas"
    monkeypatch.setenv("NEURO_BLAS", "auto")
    blas.gemm(a, b)
    info = blas.info()
    expected = "openblas" if info["amd"] and info["path"] and not info["error"] else "torch"
    assert blas.last_call()["backend"] == expected
    monkeypatch.delenv("NEURO_BLAS")  # unset = auto
    blas.gemm(a, b)
    assert blas.last_call()["backend"] == expected
    monkeypatch.setenv("NEURO_BLAS", "mkl")
    with pytest.raises(ValueError, match="NEURO_BLAS must be one of .*'mkl'"):
        blas.gemm(a, b)
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "zero")
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    with pytest.raises(RuntimeError, match="NEURO_BLAS_MIN_DIM must be an integer >= 1"):
        blas.gemm(a, b)


def test_missing_openblas_is_an_error_only_when_requested(monkeypatch, tmp_path):
    a, b = torch.randn(300, 260), torch.randn(260, 270)
    bad = tmp_path / "libopenblas_missing.so"
    monkeypatch.setenv("NEURO_BLAS_LIB", str(bad))
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    with pytest.raises(RuntimeError, match=r"NEURO_BLAS=openblas: cannot load NEURO_BLAS_LIB=.*"
                                           r"libopenblas_missing\.so"):
        blas.gemm(a, b)
    with pytest.raises(RuntimeError, match="libopenblas_missing"):  # small products check it too
        blas.gemm(torch.randn(3, 3), torch.randn(3, 3))
    monkeypatch.setenv("NEURO_BLAS", "auto")  # auto falls back to torch
    got = blas.gemm(a, b)
    assert blas.last_call()["backend"] == "torch" and torch.equal(got, a @ b)
    assert "libopenblas_missing" in blas.info()["error"]
    # a library that loads but is not OpenBLAS: the missing symbol is named
    import torch._C as C  # any loaded shared object without cblas_sgemm
    monkeypatch.setenv("NEURO_BLAS_LIB", C.__file__)
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    with pytest.raises(RuntimeError, match="has no cblas_sgemm symbol"):
        blas.gemm(a, b)
    monkeypatch.delenv("NEURO_BLAS_LIB")  # back to numpy's
    blas.gemm(a, b)
    assert blas.last_call()["backend"] == "openblas"


def _openblas_threads() -> int:
    lib = ctypes.CDLL(blas.info()["path"])
    return int(lib.scipy_openblas_get_num_threads64_())


@pytest.mark.parametrize("threads", [1, 2])
def test_each_call_runs_on_torchs_thread_count_and_restores_openblas(monkeypatch, threads):
    monkeypatch.setenv("NEURO_BLAS", "openblas")
    saved = torch.get_num_threads()
    before = _openblas_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(300, 260), torch.randn(260, 270)
        got = blas.gemm(a, b)
        call = blas.last_call()
    finally:
        torch.set_num_threads(saved)
    assert call == {"backend": "openblas", "requested": threads, "effective": threads,
                    "restored": before}
    assert _openblas_threads() == before
    torch.testing.assert_close(got, a @ b, rtol=1e-5, atol=1e-4)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"need a \[M, K\] and b \[K, N\], got \(3, 4\) and \(5, 2\)"):
        blas.gemm(torch.randn(3, 4), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"out must be \(3, 2\)"):
        blas.gemm(torch.randn(3, 4), torch.randn(4, 2), torch.empty(2, 3))
    with pytest.raises(ValueError, match="beta != 0 needs an `out`"):
        blas.gemm(torch.randn(3, 4), torch.randn(4, 2), beta=1.0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_equals_nn_linear_with_gradients(bias):
    from neuro.kernels.blas import Linear

    torch.manual_seed(0)
    ref = torch.nn.Linear(288, 272, bias=bias)
    lin = Linear(288, 272, bias=bias)
    lin.load_state_dict(ref.state_dict())  # the same parameters and state-dict keys
    x = torch.randn(3, 100, 288, requires_grad=True)  # [T, B, in]: every dimension routed
    gy = torch.randn(3, 100, 272)
    y = lin(x)
    y.backward(gy)
    got = [x.grad.clone()] + [p.grad for p in lin.parameters()]
    x.grad = None
    r = ref(x)
    r.backward(gy)
    want = [x.grad] + [p.grad for p in ref.parameters()]
    torch.testing.assert_close(y, r, rtol=1e-5, atol=1e-4)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)
    half = torch.nn.Linear(8, 4).to(torch.bfloat16)  # other dtypes: plain F.linear
    assert Linear.forward(half, torch.ones(2, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16
