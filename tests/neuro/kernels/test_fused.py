"""The fused multi-step kernels must equal the neuron's step loop.

Spikes and membranes bit for bit; gradients within 1e-6 of the loop's (normalised by the gradient's
largest magnitude, since the two sum the same terms in a different order).
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

from neuro import kernels
from neuro.kernels import lif_multistep, spike_linear
from neuro.neurons import LI, LIF, CubaLIF
from neuro.surrogate import ATan, EGRUPseudoDerivative, FastSigmoid, Sigmoid, Surrogate, Triangle


class Gaussian(Surrogate):
    """A surrogate the C++ kernel does not know: its derivative is passed as a tensor."""

    def derivative(self, x):
        return torch.exp(-x * x)


def _norm_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()


def _compare(make, x, *, params=()):
    fused, loop = make(True), make(False)
    loop.load_state_dict(fused.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, ta = fused(xa, record=True)
    sb, tb = loop(xb, record=True)
    assert torch.equal(sa, sb)
    for fa, fb in zip(ta, tb):
        if fa is not None:
            assert torch.equal(fa, fb)
    w = torch.randn_like(sa)
    ((sa * w).sum() + ta.v.sum()).backward()
    ((sb * w).sum() + tb.v.sum()).backward()
    assert _norm_err(xa.grad, xb.grad) < 1e-6
    for name in params:
        ga, gb = getattr(fused, name).grad, getattr(loop, name).grad
        assert _norm_err(ga, gb) < 1e-6, name
    return sa


CONFIGS = list(itertools.product([False, True], ["subtract", "zero"], [False, True]))
SURROGATES = [ATan(2.0), ATan(5.0), FastSigmoid(), Sigmoid(), Triangle(), EGRUPseudoDerivative(),
              Gaussian()]


@pytest.mark.parametrize("decay_input,reset,detach", CONFIGS)
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
def test_fused_lif_equals_loop(decay_input, reset, detach, surrogate):
    x = torch.rand(40, 3, 16) * 1.6 - 0.1
    beta = torch.rand(16) * 0.6 + 0.3

    def make(fused):
        return LIF(16, beta=beta, threshold=torch.rand(16) * 0.5 + 0.75, decay_input=decay_input,
                   reset=reset, detach_reset=detach, learn_beta=True, learn_threshold=True,
                   surrogate=surrogate, fused=fused)

    s = _compare(make, x, params=("beta", "threshold"))
    assert 0 < s.mean() < 1


@pytest.mark.parametrize("decay_input,reset,detach", CONFIGS)
def test_fused_lif_scalar_params_edge_cases(decay_input, reset, detach):
    def make(fused):
        return LIF(beta=0.5, threshold=1.0, decay_input=decay_input, reset=reset,
                   detach_reset=detach, fused=fused)

    _compare(make, torch.rand(1, 2, 8) * 3)          # T = 1
    s = _compare(make, torch.zeros(20, 2, 8))        # zero input: silent
    assert s.sum() == 0
    # inputs exactly at threshold: h = 1.0 == threshold fires (H(0) = 1)
    x = torch.zeros(6, 1, 4)
    x[0] = 2.0 if decay_input else 1.0               # h = 0.5 * 2.0 or 1.0 -> exactly 1.0
    s = _compare(make, x)
    assert s[0].eq(1).all()


@pytest.mark.parametrize("decay_input,reset", [(False, "subtract"), (True, "zero")])
def test_fused_lif_rows_wider_than_a_tile_equal_loop(decay_input, reset):
    # M = 3 x 5477 = 16431 neurons: more than one 16384-neuron row tile of the forward, rows that
    # start at every alignment (the AVX2 loop's peel and tail), per-neuron parameters; T x M above
    # 2^21, where the forward writes the membrane with non-temporal stores
    n = 5477
    beta = torch.rand(n) * 0.6 + 0.3

    def make(fused):
        return LIF(n, beta=beta, threshold=torch.rand(n) * 0.5 + 0.75, decay_input=decay_input,
                   reset=reset, learn_beta=True, fused=fused)

    s = _compare(make, torch.rand(128, 3, n) * 1.6 - 0.1, params=("beta",))
    assert 0 < s.mean() < 1


@pytest.mark.parametrize("cpp", [True, False], ids=["cpp", "torch"])
def test_both_implementations_and_state_gradient(cpp):
    if cpp:
        assert kernels.use_cpp(torch.zeros(1)), kernels.backend()
    x = (torch.rand(30, 5, 12) * 1.5).requires_grad_()
    v0 = (torch.rand(5, 12) * 0.5).requires_grad_()
    beta, thr = torch.tensor(0.8), torch.tensor(1.0)
    s, h, vl = lif_multistep(x, v0, beta, thr, decay_input=False, reset="subtract",
                             detach_reset=False, surrogate=ATan(), cpp=cpp)
    loop = LIF(beta=0.8, reset="subtract", fused=False)
    xb, v0b = x.detach().clone().requires_grad_(), v0.detach().clone().requires_grad_()
    sb, st = loop(xb, loop.State(v0b))
    assert torch.equal(s, sb) and torch.equal(vl, st.v)
    ((s * torch.arange(30.0)[:, None, None]).sum() + vl.sum()).backward()
    ((sb * torch.arange(30.0)[:, None, None]).sum() + st.v.sum()).backward()
    assert _norm_err(x.grad, xb.grad) < 1e-6
    assert _norm_err(v0.grad, v0b.grad) < 1e-6


def test_li_and_cubalif_fused_equal_loop():
    x = torch.rand(50, 3, 10) * 0.8
    _compare(lambda f: LI(10, beta=torch.rand(10), learn_beta=True, fused=f), x, params=("beta",))
    _compare(lambda f: CubaLIF(10, alpha=0.7, beta=0.85, learn_beta=True, fused=f), x,
             params=("beta",))


def test_state_carries_across_calls():
    lif = LIF(beta=0.9)
    x = torch.rand(40, 2, 6) * 0.5
    s_all, st_all = lif(x)
    s1, st1 = lif(x[:15])
    s2, st2 = lif(x[15:], st1)
    assert torch.equal(torch.cat([s1, s2]), s_all) and torch.equal(st2.v, st_all.v)


@pytest.mark.parametrize("density", [0.02, 0.1, 0.5])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_spike_linear_equals_dense(density, binary, bias):
    x = (torch.rand(7, 9, 50) < density).float()
    if not binary:
        x = x * torch.rand_like(x) * 3
    w = torch.randn(20, 50, requires_grad=True)
    b = torch.randn(20, requires_grad=True) if bias else None
    w2 = w.detach().clone().requires_grad_()
    b2 = b.detach().clone().requires_grad_() if bias else None
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = spike_linear(xa, w, b, cpp=True)
    yb = F.linear(xb, w2, b2)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ya)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.grad, w2.grad, atol=1e-4, rtol=1e-5)
    if bias:
        torch.testing.assert_close(b.grad, b2.grad, atol=1e-4, rtol=1e-5)


def test_kernels_load_the_extension_themselves():
    """The public kernel functions work in a fresh process that never called use_cpp()."""
    import subprocess
    import sys

    code = ("import torch; from neuro.kernels import spike_linear, lif_multistep\n"
            "from neuro.surrogate import ATan\n"
            "x = (torch.rand(5, 3, 40) < 0.1).float(); w = torch.randn(8, 40)\n"
            "y = spike_linear(x, w, None, cpp=True)\n"
            "assert torch.allclose(y, x @ w.t(), atol=1e-5)\n"
            "s, h, v = lif_multistep(y, torch.zeros(3, 8), torch.tensor(0.9), torch.tensor(1.0),"
            " decay_input=False, reset='zero', detach_reset=False, surrogate=ATan(), cpp=True)\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
