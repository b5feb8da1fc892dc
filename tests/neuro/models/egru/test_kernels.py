"""The fused event-driven C++ kernel equals the torch step loop in forward and gradient
(float64), with zoneout masks, evaluation zoneout, DropConnect-like zeros and the CSR path, and
reports its forward/backward sparsity."""
from __future__ import annotations

import pytest
import torch

from neuro.models.egru import EGRULayer
from neuro.models.egru.kernels import SparsityStats, available, egru_sequence


def test_the_fused_kernel_is_built():
    """The set-up builds the extension; a build failure fails here instead of skipping."""
    assert available()
DT = torch.float64


def _case(seed: int, keep_mode: str, T=9, B=3, H=6):
    g = torch.Generator().manual_seed(seed)
    ax = torch.randn(T, B, 3 * H, dtype=DT, generator=g) * 2
    R = torch.randn(H, 3 * H, dtype=DT, generator=g) * 0.7
    R[R.abs() < 0.3] = 0  # some exact zeros (pruned / dropped)
    br = torch.randn(3 * H, dtype=DT, generator=g) * 0.1
    th = torch.rand(H, dtype=DT, generator=g) * 0.5
    c0 = torch.randn(B, H, dtype=DT, generator=g) * 0.3
    y0 = torch.randn(B, H, dtype=DT, generator=g) * (torch.rand(B, H, generator=g) < 0.5)
    keep = {"none": 1.0, "eval": 0.8,
            "mask": (torch.rand(T, B, H, generator=g) < 0.7).to(DT)}[keep_mode]
    cot = [torch.randn(T, B, H, dtype=DT, generator=g) for _ in range(3)]
    return [ax, R, br, th, c0, y0], keep, cot


def _run(inputs, keep, cot, backend, csr, support=1.3):
    ins = [t.clone().requires_grad_(True) for t in inputs]
    st = SparsityStats()
    y, c, o = egru_sequence(*ins, keep, dampening=0.7, support=support, backend=backend, csr=csr,
                            stats=st)
    loss = (cot[0] * y).sum() + (cot[1] * c).sum() + (cot[2] * o).sum()
    loss.backward()
    return [y, c, o] + [t.grad for t in ins], st


def test_inference_stats_are_computed_when_read_and_equal_the_eager_ones():
    inputs, keep, cot = _case(11, "none")
    _, eager = _run(inputs, keep, cot, "fused", False)
    lazy = SparsityStats()
    with torch.no_grad():
        y, c, o = egru_sequence(*inputs, keep, dampening=0.7, support=1.3, backend="fused",
                                stats=lazy)
    assert lazy._pending is not None  # nothing computed yet
    assert lazy.forward == pytest.approx(float((y == 0).double().mean()))
    assert lazy._pending is None
    assert lazy.as_dict()["backward"] == pytest.approx(eager.backward)
    lazy.backward = 0.25  # a later (fused backward) value replaces it
    assert lazy.backward == 0.25


@pytest.mark.parametrize("keep_mode", ["none", "mask", "eval"])
@pytest.mark.parametrize("csr", [False, True])
def test_fused_equals_loop_forward_and_gradient(keep_mode, csr):
    inputs, keep, cot = _case(7, keep_mode)
    ref, st_ref = _run(inputs, keep, cot, "torch", False)
    got, st = _run(inputs, keep, cot, "fused", csr)
    names = ["y", "c", "o", "dax", "dR", "dbr", "dtheta", "dc0", "dy0"]
    if csr:  # CSR: only the stored (non-zero) weights have a gradient
        ref[4] = ref[4] * (inputs[1] != 0)
    for name, a, b in zip(names, got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
    assert st.forward == pytest.approx(st_ref.forward)
    assert st.backward == pytest.approx(st_ref.backward)
    assert 0 < st.forward < 1 and 0 < st.backward < 1
    assert 0 < st.backward_dy_skipped < 1


def test_event_rows_only_are_read():
    """Rows of R of units that are silent at every step are never read in the forward: filling
    them with NaN changes nothing (the dense loop would give NaN); dR has no entry in them."""
    inputs, keep, cot = _case(3, "none")
    ax, R, br, th, c0, _ = inputs
    y0 = torch.zeros_like(c0)
    th = th.clone()
    th[:2] = 1.0  # |u| < 1 always (convex mix of tanh and |c0| < 1): units 0 and 1 never fire
    y, _, o = egru_sequence(ax, R, br, th, c0, y0, keep, backend="fused")
    silent = (o.sum((0, 1)) == 0).nonzero().flatten()
    assert silent.tolist()[:2] == [0, 1] and (o.sum() > 0)
    R2 = R.clone()
    R2[silent] = float("nan")
    y2, _, _ = egru_sequence(ax, R2, br, th, c0, y0, keep, backend="fused")
    torch.testing.assert_close(y2, y, rtol=0, atol=0)
    assert torch.isnan(egru_sequence(ax, R2, br, th, c0, y0, keep, backend="torch")[0]).any()
    R = R.clone().requires_grad_(True)
    y3, _, _ = egru_sequence(ax, R, br, th, c0, y0, keep, backend="fused")
    (y3 * cot[0]).sum().backward()
    assert (R.grad[silent] == 0).all() and (R.grad != 0).any()


def test_layer_backends_agree_and_report_per_layer_sparsity():
    torch.manual_seed(0)
    layer = EGRULayer(4, 12, thr_mean=0.3, zoneout=0.2, dropconnect=0.3).double().train()
    x = torch.randn(10, 3, 4, dtype=DT) * 2
    outs = {}
    for backend in ("torch", "fused"):
        layer.backend = backend
        layer.zero_grad()
        torch.manual_seed(5)  # same DropConnect and zoneout masks
        y, _ = layer(x)
        y.pow(2).sum().backward()
        outs[backend] = (y.detach(), layer.recurrent_kernel.grad.clone(), layer.last_stats)
    torch.testing.assert_close(outs["fused"][0], outs["torch"][0], rtol=0, atol=1e-12)
    torch.testing.assert_close(outs["fused"][1], outs["torch"][1], rtol=0, atol=1e-12)
    st = outs["fused"][2]
    assert 0 < st.forward < 1 and 0 <= st.backward <= 1 and st.backward_dy_skipped is not None


def test_bad_arguments_raise_value_error():
    inputs, keep, _ = _case(1, "none")
    with pytest.raises(ValueError, match="backend"):
        egru_sequence(*inputs, backend="cuda-magic")
    with pytest.raises(ValueError, match=r"\[T, B, 3H\]"):
        egru_sequence(inputs[0][..., :-1], *inputs[1:])
    with pytest.raises(ValueError, match="fused"):
        egru_sequence(*[t.half() for t in inputs], backend="fused")


@pytest.mark.parametrize("fwd,dy,dr", [("0", "0", "0"), ("0.3", "0.5", "2"), ("2", "2", "0.1")])
@pytest.mark.parametrize("csr", [False, True])
def test_gemm_paths_equal_loop(monkeypatch, fwd, dy, dr, csr):
    """The steps the fused kernel does as one GEMM (dense enough activity, or dL/dy needed almost
    everywhere) give the step loop's values too; NEURO_EGRU_DENSE_* force them on small sizes."""
    monkeypatch.setenv("NEURO_EGRU_DENSE_FWD", fwd)
    monkeypatch.setenv("NEURO_EGRU_DENSE_DY", dy)
    monkeypatch.setenv("NEURO_EGRU_DENSE_DR", dr)
    inputs, keep, cot = _case(11, "mask", T=7, B=4, H=5)
    ref, _ = _run(inputs, keep, cot, "torch", False)
    got, _ = _run(inputs, keep, cot, "fused", csr)
    if csr:
        ref[4] = ref[4] * (inputs[1] != 0)
    for name, a, b in zip(["y", "c", "o", "dax", "dR", "dbr", "dtheta", "dc0", "dy0"], got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)


def test_token_by_token_equals_sequence():
    """Batch 1, one step per call (the in-place row path of inference) gives the sequence's y."""
    inputs, keep, _ = _case(5, "none", T=6, B=1, H=7)
    ax, R, br, th, c0, y0 = inputs
    y_seq, c_seq, _ = egru_sequence(*inputs, backend="fused")
    c, y = c0, y0
    for t in range(6):
        yt, ct, _ = egru_sequence(ax[t:t + 1], R, br, th, c, y, backend="fused")
        y, c = yt[0], ct[0]
        torch.testing.assert_close(y, y_seq[t], rtol=0, atol=1e-12)
    ref = egru_sequence(*inputs, backend="torch")[0]
    torch.testing.assert_close(y_seq, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("density", [0.1, 0.6])
def test_input_projection_event_path_equals_gemm(density):
    """x W + b over the non-zeros of a sparse x (and its gradients) equals the dense product."""
    from neuro.models.egru.kernels import input_projection

    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 50, 40, dtype=DT, generator=g) * (torch.rand(6, 50, 40, generator=g) < density)
    W = torch.randn(40, 90, dtype=DT, generator=g)
    b = torch.randn(90, dtype=DT, generator=g)
    cot = torch.randn(6, 50, 90, dtype=DT, generator=g)
    outs = []
    for backend in ("fused", "torch"):
        ins = [t.clone().requires_grad_(True) for t in (x, W, b)]
        y = input_projection(*ins, backend=backend)
        (y * cot).sum().backward()
        outs.append([y] + [t.grad for t in ins])
    for name, a, c in zip(["y", "dx", "dW", "db"], *outs):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-11, msg=name)


def test_input_projection_single_row_event_path():
    """One row (token-by-token inference) reads the event rows of W in place; equals x W + b."""
    from neuro.models.egru.kernels import input_projection

    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 1, 80, dtype=DT, generator=g) * (torch.rand(1, 1, 80, generator=g) < 0.1)
    W = torch.randn(80, 30, dtype=DT, generator=g)
    b = torch.randn(30, dtype=DT, generator=g)
    torch.testing.assert_close(input_projection(x, W, b, "fused"), x @ W + b, rtol=0, atol=1e-12)


def test_streamed_products_over_several_panels_blocks_and_chunks(monkeypatch):
    """The streamed event products at sizes that cut them into several 256-byte column panels (3H =
    210: seven float64 panels, the last one padded), batch blocks (B = 70 > 64), unit blocks of dR
    (H = 70 > 64) and (t, b) chunks of dR (T B = 700 > 512) equal the step loop in float64."""
    monkeypatch.setenv("NEURO_EGRU_DENSE_FWD", "2")  # never the GEMM paths
    monkeypatch.setenv("NEURO_EGRU_DENSE_DR", "2")
    g = torch.Generator().manual_seed(21)
    T, B, H = 10, 70, 70
    ax = torch.randn(T, B, 3 * H, dtype=DT, generator=g) * 2
    R = torch.randn(H, 3 * H, dtype=DT, generator=g) * 0.3
    br = torch.randn(3 * H, dtype=DT, generator=g) * 0.1
    th = 0.3 + torch.rand(H, dtype=DT, generator=g) * 0.5
    c0 = torch.randn(B, H, dtype=DT, generator=g) * 0.3
    y0 = torch.randn(B, H, dtype=DT, generator=g) * (torch.rand(B, H, generator=g) < 0.2)
    cot = [torch.randn(T, B, H, dtype=DT, generator=g) for _ in range(3)]
    ref, _ = _run([ax, R, br, th, c0, y0], 1.0, cot, "torch", False)
    got, st = _run([ax, R, br, th, c0, y0], 1.0, cot, "fused", False)
    assert 0.5 < st.forward < 0.95  # the event paths, not a dense or an empty sequence
    for name, a, b in zip(["y", "c", "o", "dax", "dR", "dbr", "dtheta", "dc0", "dy0"], got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-11), (torch.float32, 2e-4)])
def test_streamed_input_projection_over_blocks_and_chunks(dtype, atol):
    """x W + b and x^T g over the non-zeros of x with several row blocks (M = 1200), unit blocks
    (K = 150 > 64), gradient chunks (M > 512) and padded column panels (N = 70) equal the GEMMs."""
    from neuro.models.egru.kernels import input_projection

    g = torch.Generator().manual_seed(8)
    x = torch.randn(12, 100, 150, generator=g) * (torch.rand(12, 100, 150, generator=g) < 0.1)
    W, b = torch.randn(150, 70, generator=g), torch.randn(70, generator=g)
    cot = torch.randn(12, 100, 70, generator=g)
    outs = []
    for backend in ("fused", "torch"):
        ins = [t.to(dtype).requires_grad_(True) for t in (x, W, b)]
        y = input_projection(*ins, backend=backend)
        (y * cot.to(dtype)).sum().backward()
        outs.append([y] + [t.grad for t in ins])
    for name, a, c in zip(["y", "dx", "dW", "db"], *outs):
        torch.testing.assert_close(a, c, rtol=0, atol=atol, msg=name)


def test_float32_fused_equals_the_step_loop():
    """float32 forward: the fused kernel gives the step loop's events and its values to float32
    rounding (the event sum and the GEMM add in different orders)."""
    g = torch.Generator().manual_seed(13)
    T, B, H = 6, 9, 100
    ax = torch.randn(T, B, 3 * H, generator=g) * 4  # gate inputs across the tanh branches
    R = torch.randn(H, 3 * H, generator=g) * 0.3
    br = torch.randn(3 * H, generator=g) * 0.1
    th = 0.2 + torch.rand(H, generator=g) * 0.5
    c0, y0 = torch.randn(B, H, generator=g) * 0.3, torch.zeros(B, H)
    fused = egru_sequence(ax, R, br, th, c0, y0, backend="fused")
    ref = egru_sequence(ax, R, br, th, c0, y0, backend="torch")
    assert torch.equal(fused[2], ref[2])
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=5e-6)


def _float32_case(seed: int = 17, T: int = 6, B: int = 5, H: int = 40):
    g = torch.Generator().manual_seed(seed)
    ax = torch.randn(T, B, 3 * H, generator=g) * 2
    R = torch.randn(H, 3 * H, generator=g) * 0.3
    br = torch.randn(3 * H, generator=g) * 0.1
    th = 0.2 + torch.rand(H, generator=g) * 0.3
    c0 = torch.randn(B, H, generator=g) * 0.3
    y0 = torch.randn(B, H, generator=g) * (torch.rand(B, H, generator=g) < 0.5)
    cot = [torch.randn(T, B, H, generator=g) for _ in range(3)]
    return [ax, R, br, th, c0, y0], cot


def test_openblas_routed_gemm_paths_equal_torchs(monkeypatch):
    """float32, every GEMM path of the fused kernel forced (recurrent product, dL/dy, dR) and
    routed through OpenBLAS (NEURO_BLAS=openblas, NEURO_BLAS_MIN_DIM=1): the same events and the
    values and gradients of the MKL run to float32 rounding; a missing OpenBLAS is named."""
    for name in ("NEURO_EGRU_DENSE_FWD", "NEURO_EGRU_DENSE_DY", "NEURO_EGRU_DENSE_DR"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")
    inputs, cot = _float32_case()
    runs = []
    for mode in ("torch", "openblas"):
        monkeypatch.setenv("NEURO_BLAS", mode)
        runs.append(_run(inputs, 1.0, cot, "fused", False)[0])
    torch.testing.assert_close(runs[1][2], runs[0][2], rtol=0, atol=0)  # the events
    for name, a, b in zip(["y", "c", "o", "dax", "dR", "dbr", "dtheta", "dc0", "dy0"], *runs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    monkeypatch.setenv("NEURO_BLAS_LIB", "/nonexistent/libopenblas.so")  # the kernel asks blas.h
    with pytest.raises(RuntimeError, match="NEURO_BLAS=openblas: cannot load NEURO_BLAS_LIB="
                                           "/nonexistent/libopenblas.so"):
        egru_sequence(*inputs, backend="fused")


def test_dense_input_projection_routed_through_openblas(monkeypatch):
    """Dense float32 input: ``x W + b`` and its three gradients through neuro.kernels.blas equal
    torch's to float32 rounding; under NEURO_BLAS=torch it is torch's own expression."""
    from neuro.models.egru.kernels import input_projection
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 70, generator=g)
    W, b = torch.randn(70, 90, generator=g), torch.randn(90, generator=g)
    cot = torch.randn(4, 3, 90, generator=g)
    outs = []
    monkeypatch.setenv("NEURO_BLAS_MIN_DIM", "1")
    for mode in ("torch", "openblas"):
        monkeypatch.setenv("NEURO_BLAS", mode)
        ins = [t.clone().requires_grad_(True) for t in (x, W, b)]
        y = input_projection(*ins)
        assert ("DenseLinear" in type(y.grad_fn).__name__) == (mode == "openblas")
        (y * cot).sum().backward()
        outs.append([y] + [t.grad for t in ins])
    for name, a, c in zip(["y", "dx", "dW", "db"], *outs):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5, msg=name)
