"""The fast DCLS convolution paths (neuro.kernels.dcls: event-driven, spectral) against the dense
conv1d reference."""
import pytest
import torch

from neuro.kernels import dcls
from neuro.kernels.dcls import dcls_conv, dcls_conv_dense

TOL = 1e-5  # max |a - b| / max |b|


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _inputs(T, B, n_in, kind, density, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "spikes":
        return (torch.rand(T, B, n_in, generator=g) < density).float()
    if kind == "counts":  # SHD frames hold event counts
        mask = torch.rand(T, B, n_in, generator=g) < density
        return mask * torch.randint(1, 6, (T, B, n_in), generator=g).float()
    if kind == "real":  # dropout-scaled spikes and arbitrary signs
        mask = torch.rand(T, B, n_in, generator=g) < density
        return mask * torch.randn(T, B, n_in, generator=g)
    if kind == "ones":
        return torch.ones(T, B, n_in)
    if kind == "empty":
        return torch.zeros(T, B, n_in)
    raise AssertionError(kind)


def _run(path, x, kernel, b, R, x_grad, seed):
    xs = x.clone().requires_grad_(x_grad)
    ks = kernel.clone().requires_grad_(True)
    bs = b.clone().requires_grad_(True) if b is not None else None
    y = dcls_conv(xs, ks, bs, R, path=path)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 2), dtype=y.dtype)
    y.backward(gy)
    return y.detach(), xs.grad, ks.grad, bs.grad if b is not None else None, y.grad_fn


def _compare(x, n_out, K, R, bias, seed, x_grad=True, paths=("event", "spectral")):
    """Forward and every gradient of the fast paths vs the dense conv1d reference."""
    g = torch.Generator().manual_seed(seed + 1)
    kernel = torch.randn(n_out, x.shape[2], K, generator=g, dtype=x.dtype)
    b = torch.randn(n_out, generator=g, dtype=x.dtype) if bias else None
    de = _run("dense", x, kernel, b, R, x_grad, seed)
    assert de[0].shape == (x.shape[0] + R, x.shape[1], n_out)
    out = {}
    for path in paths:
        ev = _run(path, x, kernel, b, R, x_grad, seed)
        name = {"event": "_DclsEvents", "spectral": "DclsSpectral"}[path]
        assert type(ev[4]).__name__.startswith(name), f"the {path} path did not run"
        assert ev[0].shape == de[0].shape
        assert _rel(ev[0], de[0]) <= TOL, path
        if x_grad:
            assert _rel(ev[1], de[1]) <= TOL, path
        else:
            assert ev[1] is None
        if (x != 0).any():
            assert _rel(ev[2], de[2]) <= TOL, path
        else:
            assert float(ev[2].abs().max()) <= TOL * float(de[2].abs().max().clamp_min(1.0)), path
        if bias:
            assert _rel(ev[3], de[3]) <= TOL, path
        out[path] = ev
    return out, de


@pytest.fixture(autouse=True)
def _ext_built():
    assert dcls.available(), "the neuro_dcls C++ extension did not build"


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_equal_conv1d(seed):
    g = torch.Generator().manual_seed(100 + seed)
    T, B = int(torch.randint(1, 40, (1,), generator=g)), int(torch.randint(1, 6, (1,), generator=g))
    n_in, n_out = int(torch.randint(1, 40, (1,), generator=g)), int(torch.randint(1, 70, (1,), generator=g))
    K = 2 * int(torch.randint(0, 16, (1,), generator=g)) + 1
    R = [0, (K - 1) // 2, K + 3][seed % 3]
    kind = ["spikes", "counts", "real"][seed % 3]
    x = _inputs(T, B, n_in, kind, 0.1 + 0.05 * seed, seed)
    _compare(x, n_out, K, R, bias=seed % 2 == 0, seed=seed)


@pytest.mark.parametrize("R", [0, 1, 12, 30])
def test_shd_like_counts_with_right_padding(R):
    x = _inputs(50, 8, 140, "counts", 0.05, 7)
    _compare(x, 256, 25, R, bias=False, seed=7, x_grad=False)


def test_hidden_layer_spikes_k25():
    x = _inputs(60, 8, 64, "spikes", 0.15, 3) / 0.6  # dropout-scaled spikes
    _compare(x, 48, 25, 12, bias=True, seed=3)


def test_no_events_gives_bias_and_zero_kernel_gradient():
    x = _inputs(20, 3, 9, "empty", 0.0, 0)
    out, _ = _compare(x, 5, 7, 3, bias=True, seed=0)
    y = out["event"][0]
    assert torch.equal(y, y[0, 0].expand_as(y))  # the bias at every step
    assert torch.equal(out["event"][2], torch.zeros_like(out["event"][2]))


def test_all_ones_input():
    _compare(_inputs(15, 2, 6, "ones", 1.0, 0), 17, 5, 2, bias=True, seed=1)


@pytest.mark.parametrize("K", [1, 3, 31])
def test_kernel_sizes(K):
    _compare(_inputs(25, 3, 11, "counts", 0.2, K), 33, K, (K - 1) // 2, bias=False, seed=K)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_agree(threads):
    """Small n_out (one output chunk) splits the kernel gradient over threads (partial sums)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _compare(_inputs(30, 7, 13, "spikes", 0.2, threads), 5, 9, 4, bias=True, seed=threads)
        _compare(_inputs(30, 7, 13, "spikes", 0.2, threads), 40, 9, 4, bias=False, seed=threads)
    finally:
        torch.set_num_threads(before)


def test_non_contiguous_input():
    x = _inputs(4, 20, 16, "spikes", 0.2, 5).permute(1, 0, 2)  # [20, 4, 16], a strided view
    assert not x.is_contiguous()
    _compare(x, 8, 5, 2, bias=False, seed=5)


def _path_of(y):
    return type(y.grad_fn).__name__


def test_auto_chooses_by_density_and_taps(monkeypatch):
    shape = (40, 4, 6)
    limit = dcls.event_density_limit(*shape, 4, 25, 2, True)
    assert 0 < limit < 1
    sparse = _inputs(*shape, "spikes", limit / 3, 0).requires_grad_()
    assert 0 < float((sparse != 0).float().mean()) < limit
    dense = _inputs(*shape, "ones", 1.0, 0).requires_grad_()
    k25, k5 = torch.randn(4, 6, 25), torch.randn(4, 6, 5)
    assert dcls.SPECTRAL_MIN_TAPS > 5
    assert _path_of(dcls_conv(sparse, k25, None, 2)).startswith("_DclsEvents")
    assert _path_of(dcls_conv(sparse, k5, None, 2)).startswith("_DclsEvents")
    assert _path_of(dcls_conv(dense, k25, None, 2)).startswith("DclsSpectral")
    assert not _path_of(dcls_conv(dense, k5, None, 2)).startswith(("_DclsEvents", "DclsSpectral"))
    # other dtypes: the conv1d reference
    y = dcls_conv(sparse.double(), k25.double(), None, 2)
    assert not _path_of(y).startswith(("_DclsEvents", "DclsSpectral"))
    # NEURO_DCLS_PATH overrides "auto"
    monkeypatch.setenv("NEURO_DCLS_PATH", "dense")
    assert not _path_of(dcls_conv(sparse, k25, None, 2)).startswith(("_DclsEvents", "DclsSpectral"))
    monkeypatch.setenv("NEURO_DCLS_PATH", "spectral")
    assert _path_of(dcls_conv(sparse, k25, None, 2)).startswith("DclsSpectral")
    monkeypatch.setenv("NEURO_DCLS_PATH", "fast")
    with pytest.raises(ValueError, match="NEURO_DCLS_PATH"):
        dcls_conv(sparse, k25, None, 2)


def test_event_density_limit_follows_the_costs():
    """Fewer outputs per event or more steps make events relatively cheaper."""
    shd = [dcls.event_density_limit(100, 256, 140, 256, 25, 12, False),
           dcls.event_density_limit(112, 256, 256, 256, 25, 12, True),
           dcls.event_density_limit(124, 256, 256, 20, 25, 12, True)]
    assert 0.02 < shd[0] < 0.2 and 0.02 < shd[1] < 0.15 and shd[2] > shd[1]
    assert dcls.event_density_limit(112, 256, 256, 256, 5, 2, True) == 1 / dcls.EVENT_COST


def test_fallback_without_the_extension(monkeypatch):
    x = _inputs(12, 2, 6, "spikes", 0.2, 0).requires_grad_()
    monkeypatch.setenv("NEURO_DISABLE_EXT", "1")
    k = torch.randn(3, 6, 25)
    y = dcls_conv(x, k, None, 2)  # pure torch: the spectral path
    assert _path_of(y).startswith("DclsSpectral")
    assert _rel(y.detach(), dcls_conv_dense(x, k, None, 2).detach()) <= TOL
    with pytest.raises(ValueError, match="event-driven path cannot run"):
        dcls_conv(x, k, None, 2, path="event")


def test_spectral_float64_is_exact_to_float64_rounding():
    x = _inputs(33, 3, 10, "counts", 0.3, 9).double()
    out, de = _compare(x, 7, 25, 12, bias=True, seed=9, paths=("spectral",))
    assert all(_rel(a, b) <= 1e-12 for a, b in zip(out["spectral"][:4], de[:4]))


@pytest.mark.parametrize("T", [1, 3, 500])
def test_spectral_lengths_short_and_long(T):
    """No circular wrap-around for short inputs (T < K) and long ones."""
    _compare(_inputs(T, 2, 12, "counts", 0.3, T), 9, 25, 12, bias=False, seed=T)
    _compare(_inputs(T, 2, 12, "counts", 0.3, T), 9, 25, 40, bias=False, seed=T)


def test_bad_input():
    x, k = torch.zeros(5, 2, 3), torch.zeros(4, 3, 5)
    with pytest.raises(ValueError, match="path"):
        dcls_conv(x, k, None, 0, path="fast")
    with pytest.raises(ValueError, match="x must be"):
        dcls_conv(x[0], k)
    with pytest.raises(ValueError, match="kernel must be"):
        dcls_conv(x, torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="bias must be"):
        dcls_conv(x, k, torch.zeros(3))
    with pytest.raises(ValueError, match="right_padding"):
        dcls_conv(x, k, None, -1)
    with pytest.raises(ValueError, match="CPU float32"):
        dcls_conv(x.double(), k.double(), None, 0, path="event")
    with pytest.raises(ValueError, match="spectral"):  # the message lists the paths
        dcls_conv(x, k, None, 0, path="fft")


@pytest.mark.parametrize("K", [5, 25])  # input gradient of the event path: per-tap GEMMs / spectral
@pytest.mark.parametrize("R", [0, 12, 30])
def test_event_input_gradient_both_forms(K, R):
    assert 5 < dcls.SPECTRAL_MIN_TAPS <= 25
    _compare(_inputs(30, 3, 16, "spikes", 0.15, K + R), 20, K, R, bias=True, seed=K + R,
             paths=("event",))
