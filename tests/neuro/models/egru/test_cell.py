"""The EGRU layer against the golden traces of evnn-pytorch 0.2.0 (tests/fixtures/egru, copied
from the authors' package's pure-PyTorch path; README of the golden set: float64 primary oracle),
and its regularisers: zoneout, DropConnect, threshold clamp and init, activity regulariser."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuro.models.egru import EGRULayer, activity_regularization, output_trace
from neuro.models.egru.kernels import available
from neuro.neurons.egru import beta_thresholds

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "egru"
PARAMS = ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "thr", "x")
BACKENDS = ["torch"] + (["fused"] if available() else [])


def _golden(precision: str):
    d = np.load(FIXTURES / f"golden_egru_{precision}.npz")
    dtype = torch.float64 if precision == "f64" else torch.float32
    # evnn keeps dampening_factor as a float32 tensor: 0.7 is float32(0.7) in both files
    layer = EGRULayer(5, 7, thr_mean=0.3, dampening=float(np.float32(0.7)), support=1.0)
    layer = layer.to(dtype).train()
    with torch.no_grad():
        for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            getattr(layer, name).copy_(torch.from_numpy(d[name]))
        layer.threshold.copy_(torch.from_numpy(d["thresholds"]))
    return d, layer


def _run(layer, d, backend):
    layer.backend = backend
    x = torch.from_numpy(d["x"]).clone().requires_grad_(True)
    y, st = layer(x, record=True)
    return x, y, st.c, st.o, output_trace(y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("precision,tol", [("f64", 1e-12), ("f32", 1e-5)])
def test_matches_golden_outputs_and_gradients(precision, tol, backend):
    d, layer = _golden(precision)
    x, y, c, o, tr = _run(layer, d, backend)
    for name, got in (("y", y), ("c", c), ("o", o), ("trace", tr)):
        np.testing.assert_allclose(got.detach().numpy(), d[name], rtol=0, atol=tol, err_msg=name)
    assert 0.05 < (y != 0).double().mean() < 0.2  # the README's 10.7 % events: paths exercised
    cot = {k: torch.from_numpy(d[f"cot_{k}"]) for k in ("y", "c", "o", "trace")}
    losses = {
        "L1": (cot["y"] * y).sum(),
        "Lfull": (cot["y"] * y).sum() + (cot["c"] * c).sum() + (cot["o"] * o).sum()
        + (cot["trace"] * tr).sum(),
    }
    tensors = dict(zip(PARAMS, (layer.kernel, layer.recurrent_kernel, layer.bias,
                                layer.recurrent_bias, layer.threshold, x)))
    for lname, loss in losses.items():
        np.testing.assert_allclose(loss.item(), d[f"loss_{lname}"], rtol=tol, atol=tol)
        grads = torch.autograd.grad(loss, list(tensors.values()), retain_graph=True)
        for (pname, _), g in zip(tensors.items(), grads):
            want = d[f"grad_{lname}_{pname}"]
            np.testing.assert_allclose(g.numpy(), want, rtol=0, atol=tol * max(1, np.abs(want).max()),
                                       err_msg=f"{lname} d/d{pname}")


def test_recurrent_input_is_y_not_c():
    """A unit with no event contributes nothing to the recurrence: zeroing R's rows of units that
    never fired leaves y unchanged; the reset gate acts after R y (golden values already pin it)."""
    d, layer = _golden("f64")
    with torch.no_grad():
        y, st = layer(torch.from_numpy(d["x"]), record=True)
        silent = (st.o.sum((0, 1)) == 0).nonzero().flatten()
        assert silent.numel() > 0
        layer.recurrent_kernel[silent] = 123.0
        y2, _ = layer(torch.from_numpy(d["x"]), record=True)
    torch.testing.assert_close(y, y2, rtol=0, atol=0)


def test_zoneout_train_mask_and_eval_expectation():
    torch.manual_seed(0)
    x = torch.randn(20, 4, 3, dtype=torch.float64)
    base = EGRULayer(3, 16, thr_mean=0.3).double()
    zo = EGRULayer(3, 16, thr_mean=0.3, zoneout=0.5).double()
    zo.load_state_dict(base.state_dict())
    # training: every unit either keeps c[t-1] exactly (mask 0) or moves as without zoneout
    _, st = zo.train()(x, record=True)
    prev = torch.cat([torch.zeros_like(st.c[:1]), st.c[:-1]])
    u = st.c + st.o * zo._theta()
    kept = (u == prev)
    assert 0.3 < kept.double().mean() < 0.7  # p = 0.5
    # evaluation: u = (1 - p) u_new + p c[t-1], deterministic and different from no zoneout
    zo.eval(), base.eval()
    y1, _ = zo(x)
    y2, _ = zo(x)
    torch.testing.assert_close(y1, y2)
    assert not torch.equal(y1, base(x)[0])
    with pytest.raises(ValueError, match="zoneout"):
        EGRULayer(3, 4, zoneout=1.0)


def test_dropconnect_drops_recurrent_weights_in_training_only():
    torch.manual_seed(1)
    layer = EGRULayer(3, 32, dropconnect=0.7).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64) * 3
    layer.train()
    y, _ = layer(x)
    y.sum().backward()
    g = layer.recurrent_kernel.grad
    rows = (g != 0).any(1)  # rows of units that fired get gradient only where R survived
    frac_zero = (g[rows] == 0).double().mean().item()
    assert 0.6 < frac_zero < 0.8
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    with pytest.raises(ValueError, match="dropconnect"):
        EGRULayer(3, 4, dropconnect=-0.1)


def test_threshold_clamped_in_place_and_beta_init_mean():
    torch.manual_seed(2)
    for m in (0.01, 0.3, 0.6):
        thr = beta_thresholds(20000, m)
        assert thr.mean().item() == pytest.approx(m, abs=0.01 * max(m, 0.1))
        assert 0 <= thr.min() and thr.max() <= 1
    layer = EGRULayer(2, 1000, thr_mean=0.3)  # the layer draws from the same law
    assert layer.threshold.mean().item() == pytest.approx(0.3, abs=0.025)
    with pytest.raises(ValueError, match="thr_mean"):
        beta_thresholds(3, 1.0)
    layer = EGRULayer(2, 4)
    with torch.no_grad():
        layer.threshold.copy_(torch.tensor([-0.5, 0.2, 1.5, 0.9]))
    layer(torch.randn(3, 1, 2))
    assert layer.threshold.tolist() == pytest.approx([0.0, 0.2, 1.0, 0.9])


def test_activity_regularizer_three_terms():
    torch.manual_seed(3)
    c = torch.randn(5, 2, 3, dtype=torch.float64)
    o = (torch.rand(5, 2, 3) < 0.4).double()
    a, b, g = 0.3, 0.7, 1.1
    diffs = [(c[t + 1, i, j] - c[t, i, j]) ** 2 for t in range(4) for i in range(2)
             for j in range(3) if o[t, i, j]]
    want = a * c.mean() + b * sum(diffs) / len(diffs) + g * o.mean()
    assert activity_regularization(c, o, a, b, g).item() == pytest.approx(want.item(), rel=1e-12)
    assert activity_regularization(c, o, a, 0, 0).item() == pytest.approx(a * c.mean().item())
    assert activity_regularization(c, o, 0, 0, g).item() == pytest.approx(g * o.mean().item())
    assert activity_regularization(c, o).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        activity_regularization(c, o[:3])
