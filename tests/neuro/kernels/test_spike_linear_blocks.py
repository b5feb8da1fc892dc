"""The event-driven linear kernels at sizes that cross their blocks, against exact references.

The weight-gradient kernel regroups the spikes by input column in blocks of 128 rows and sums
64 output columns in registers; it must equal, bit for bit, the plain scatter
``for r: gw^T[cols of row r, :] += x[r, cols] * gy[r, :]`` (same terms, same order), for binary and
graded inputs, with row blocks > 1 and output widths that are not multiples of 64 (or of 8).
The forward (slabs packed from W directly) must equal the same ordered sums row by row.
"""
import pytest
import torch

from neuro.kernels import _ext, malloc


def _ops():
    assert _ext.load(), _ext.error()
    return torch.ops.neuro_ops


def _scatter_reference(x: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """gw [N, K] by the ordered scatter (rows ascending; one add per non-zero and column)."""
    gwt = torch.zeros(x.shape[1], gy.shape[1])
    for r in range(x.shape[0]):
        cols = x[r].nonzero().flatten()
        if len(cols):
            gwt[cols] += x[r, cols, None] * gy[r]
    return gwt.t().contiguous()


@pytest.mark.parametrize("n_out", [130, 37, 64])
@pytest.mark.parametrize("binary", [True, False])
def test_weight_gradient_bit_exact_across_blocks(n_out, binary):
    g = torch.Generator().manual_seed(n_out + binary)
    R, K = 2300, 90  # 18 row blocks of 128, the last one partial
    x = (torch.rand(R, K, generator=g) < 0.05).float()
    if not binary:
        x = x * torch.rand(R, K, generator=g) * 3
    w = torch.randn(n_out, K, generator=g)
    ops = _ops()
    y, row_ptr, col, val = ops.spike_linear_forward(x, w, None, 0.1, None)
    assert y.numel() and (val.numel() == 0) == binary
    gy = torch.randn(R, n_out, generator=g)
    gw = ops.spike_linear_backward_weight(row_ptr, col, val, gy, K)
    assert gw.shape == (n_out, K) and gw.is_contiguous()
    assert torch.equal(gw, _scatter_reference(x, gy))
    torch.testing.assert_close(gw, gy.t() @ x, rtol=1e-4, atol=1e-4)


def test_forward_equals_ordered_row_sums():
    g = torch.Generator().manual_seed(3)
    R, K, N = 300, 77, 70
    x = (torch.rand(R, K, generator=g) < 0.08).float()
    w, b = torch.randn(N, K, generator=g), torch.randn(N, generator=g)
    y = _ops().spike_linear_forward(x, w, b, 0.1, None)[0]
    ref = b.expand(R, N).clone()
    for r in range(R):
        for k in x[r].nonzero().flatten().tolist():  # bias first, then events ascending
            ref[r] += w[:, k]
    assert torch.equal(y, ref)


def test_weight_with_other_width_is_refused():
    with pytest.raises(RuntimeError, match="weight \\[N, K\\]"):
        _ops().spike_linear_forward(torch.zeros(4, 10), torch.zeros(3, 11), None, 0.1, None)


def test_inference_caches_the_packed_weight_until_it_changes():
    import importlib

    sl = importlib.import_module("neuro.kernels.spike_linear")

    g = torch.Generator().manual_seed(5)
    R, K, N = 100, 300, 130  # N crosses a 64-column slab and is not a multiple of it
    x = (torch.rand(R, K, generator=g) < 0.08).float()
    layer = torch.nn.Linear(K, N)
    with torch.no_grad():
        first = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)
        cached = getattr(layer.weight, sl._CACHE_ATTR)[2]
        again = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)
        assert getattr(layer.weight, sl._CACHE_ATTR)[2] is cached  # reused, not repacked
    trained = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)  # autograd path, packs per call
    assert torch.equal(first, again) and torch.equal(first, trained.detach())
    torch.testing.assert_close(first, torch.nn.functional.linear(x, layer.weight, layer.bias))
    with torch.no_grad():
        layer.weight.mul_(-2.0)  # in place: the version counter moves
        y = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)
        torch.testing.assert_close(y, torch.nn.functional.linear(x, layer.weight, layer.bias))
        layer.weight.data = torch.randn(N, K, generator=g)  # new storage, same version
        y = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)
        torch.testing.assert_close(y, torch.nn.functional.linear(x, layer.weight, layer.bias))
        layer.load_state_dict({"weight": torch.randn(N, K, generator=g), "bias": layer.bias})
        y = sl.spike_linear(x, layer.weight, layer.bias, cpp=True)
        torch.testing.assert_close(y, torch.nn.functional.linear(x, layer.weight, layer.bias))
        dense = torch.ones(R, K)  # above the density limit: the dense product, nothing cached
        fresh = torch.nn.Linear(K, N)
        torch.testing.assert_close(sl.spike_linear(dense, fresh.weight, fresh.bias, cpp=True),
                                   torch.nn.functional.linear(dense, fresh.weight, fresh.bias))
        assert getattr(fresh.weight, sl._CACHE_ATTR, None) is None
    with torch.inference_mode():  # inference tensors carry no version counter: no cache
        w = torch.randn(N, K)
        torch.testing.assert_close(sl.spike_linear(x, w, None, cpp=True), x @ w.t())


def test_packed_weight_of_other_size_is_refused():
    ops = _ops()
    with pytest.raises(RuntimeError, match="packed_weight has 64 entries"):
        ops.spike_linear_forward(torch.zeros(4, 10), torch.zeros(3, 10), None, 0.1, torch.zeros(64))
    assert ops.spike_linear_pack(torch.zeros(65, 10)).numel() == 2 * 10 * 64


def test_malloc_tuning_reports_its_state(monkeypatch):
    import os
    import platform

    _ops()  # loading the kernels applies the tuning
    user_set = any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)
    glibc = platform.libc_ver()[0] == "glibc"
    assert (malloc.status() == "tuned") == (glibc and not user_set and
                                            os.environ.get("NEURO_MALLOC_TUNE") != "0")
    monkeypatch.setattr(malloc, "_state", {})
    monkeypatch.setenv("NEURO_MALLOC_TUNE", "0")
    assert malloc.tune() is False and malloc.status() == "not tuned (NEURO_MALLOC_TUNE=0)"
    monkeypatch.setattr(malloc, "_state", {})
    monkeypatch.delenv("NEURO_MALLOC_TUNE")
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert malloc.tune() is False and "MALLOC_" in malloc.status()


@pytest.mark.parametrize("density", [0.05, 0.5])  # event path / dense path (above the limit)
def test_large_layer_through_blas_equals_linear(density):
    import importlib

    sl = importlib.import_module("neuro.kernels.spike_linear")
    g = torch.Generator().manual_seed(9)
    R, K, N = 320, 288, 272  # every dimension >= 256: routed to OpenBLAS where it is chosen
    x = (torch.rand(R, K, generator=g) < density).float().requires_grad_(True)
    w = torch.randn(N, K, generator=g, requires_grad=True)
    b = torch.randn(N, generator=g, requires_grad=True)
    gy = torch.randn(R, N, generator=g)
    y = sl.spike_linear(x, w, b, cpp=True)
    y.backward(gy)
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    ref = torch.nn.functional.linear(x, w, b)
    ref.backward(gy)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)
    for got, t in zip(grads, (x, w, b)):
        torch.testing.assert_close(got, t.grad, rtol=1e-5, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(sl.spike_linear(x, w, b, cpp=True), ref, rtol=1e-5, atol=1e-4)


def test_malloc_tuning_asks_torch_for_huge_pages_unless_told_otherwise():
    import os
    import subprocess
    import sys

    code = ("from neuro.kernels import malloc; ok = malloc.tune(); import os; "
            "print(ok, os.environ.get('THP_MEM_ALLOC_ENABLE'))")
    env = {k: v for k, v in os.environ.items()
           if k != "THP_MEM_ALLOC_ENABLE" and not (k.startswith("MALLOC_") and k.endswith("_"))}
    env.pop("NEURO_MALLOC_TUNE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == (["True", "1"] if out[0] == "True" else ["False", "None"])
    env["THP_MEM_ALLOC_ENABLE"] = "0"  # the user's choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "0"
    del env["THP_MEM_ALLOC_ENABLE"]
    env["NEURO_MALLOC_TUNE"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "None"]
