"""neuro's neurons against independent implementations: snnTorch and SpikingJelly.

These peers are installed by the set-up (``make test``); the tests import them directly so a
missing oracle is a failure, never a skip.
"""
import math

import pytest
import snntorch
import torch
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate as sj_surrogate

from neuro.neurons import LIF, CubaLIF
from neuro.surrogate import ATan

T, B, N = 60, 4, 32


def _input(scale=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, N, generator=g) * scale - 0.2


# ---------------------------------------------------------------------------- SpikingJelly
@pytest.mark.parametrize("tau", [2.0, 1.5, 10.0])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("hard_reset", [True, False])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_lif_matches_spikingjelly_lifnode(tau, decay_input, hard_reset, detach_reset):
    x = _input(scale=2.0 if decay_input else 1.0)
    sj = sj_neuron.LIFNode(
        tau=tau, decay_input=decay_input, v_threshold=1.0, v_reset=0.0 if hard_reset else None,
        detach_reset=detach_reset, surrogate_function=sj_surrogate.ATan(alpha=2.0),
        step_mode="m", store_v_seq=True,
    )
    ours = LIF(beta=1 - 1 / tau, threshold=1.0, decay_input=decay_input,
               reset="zero" if hard_reset else "subtract", detach_reset=detach_reset,
               surrogate=ATan(alpha=2.0))
    x_sj = x.clone().requires_grad_()
    x_ours = x.clone().requires_grad_()
    s_sj = sj(x_sj)
    s_ours, trace = ours(x_ours, record=True)
    assert s_ours.sum() > 0, "test input must make the neurons fire"
    assert torch.equal(s_ours, s_sj)
    torch.testing.assert_close(trace.v, sj.v_seq, atol=1e-6, rtol=0)
    # gradients through time with the same surrogate
    w = torch.randn(T, B, N, generator=torch.Generator().manual_seed(1))
    (s_sj * w).sum().backward()
    (s_ours * w).sum().backward()
    scale = x_sj.grad.abs().max().clamp(min=1)
    assert ((x_ours.grad - x_sj.grad).abs().max() / scale) < 1e-5
    sj_functional.reset_net(sj)


@pytest.mark.parametrize("alpha", [2.0, 5.0])
def test_atan_surrogate_equals_spikingjelly(alpha):
    x = torch.linspace(-2, 2, 401)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    sa = ATan(alpha=alpha)(a)
    sb = sj_surrogate.ATan(alpha=alpha)(b)
    assert torch.equal(sa, sb)  # both Heaviside with H(0) = 1
    g = torch.rand(401)
    (sa * g).sum().backward()
    (sb * g).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-6)
    assert ATan(alpha=alpha).derivative(torch.tensor(0.0)).item() == pytest.approx(alpha / 2)


def test_fused_lif_gradient_matches_spikingjelly_atan5():
    """The DCLS reference's neuron: decay_input=False, hard reset, detach_reset, ATan(5)."""
    tau = 1.5
    x = _input(scale=1.2, seed=3)
    sj = sj_neuron.LIFNode(tau=tau, decay_input=False, v_reset=0.0, detach_reset=True,
                           surrogate_function=sj_surrogate.ATan(alpha=5.0), step_mode="m")
    ours = LIF(beta=1 - 1 / tau, decay_input=False, reset="zero", detach_reset=True,
               surrogate=ATan(alpha=5.0))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ours(xa)[0], sj(xb)
    assert torch.equal(sa, sb)
    (sa.sum(0) ** 2).sum().backward()
    (sb.sum(0) ** 2).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- snnTorch
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.95])
def test_lif_matches_snntorch_leaky(reset, beta):
    x = _input(scale=1.0, seed=5)
    leaky = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism=reset,
                           spike_grad=snntorch.surrogate.atan(alpha=2.0))
    ours = LIF(beta=beta, threshold=1.0, reset=reset, reset_timing="deferred",
               surrogate=ATan(alpha=2.0))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    mem = leaky.reset_mem()
    spk_ref, mem_ref = [], []
    for t in range(T):
        spk, mem = leaky(xb[t], mem)
        spk_ref.append(spk)
        mem_ref.append(mem)
    spk_ref, mem_ref = torch.stack(spk_ref), torch.stack(mem_ref)
    s_ours, trace = ours(xa, record=True)
    assert s_ours.sum() > 0
    assert torch.equal(s_ours, spk_ref)
    torch.testing.assert_close(trace.v, mem_ref, atol=1e-6, rtol=0)
    w = torch.randn(T, B, N, generator=torch.Generator().manual_seed(2))
    (s_ours * w).sum().backward()
    (spk_ref * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)


def test_cubalif_matches_snntorch_synaptic():
    x = _input(scale=0.6, seed=7)
    syn = snntorch.Synaptic(alpha=0.8, beta=0.9, threshold=1.0, reset_mechanism="subtract")
    ours = CubaLIF(alpha=0.8, beta=0.9, threshold=1.0, reset="subtract", reset_timing="deferred")
    i_ref, m_ref = syn.reset_mem()
    spk_ref, mem_ref = [], []
    for t in range(T):
        spk, i_ref, m_ref = syn(x[t], i_ref, m_ref)
        spk_ref.append(spk)
        mem_ref.append(m_ref)
    s_ours, trace = ours(x, record=True)
    assert s_ours.sum() > 0
    assert torch.equal(s_ours, torch.stack(spk_ref))
    torch.testing.assert_close(trace.v, torch.stack(mem_ref), atol=1e-6, rtol=0)


def test_decay_from_tau_matches_snntorch_and_nir_convention():
    from neuro.neurons import decay_from_tau

    assert decay_from_tau(10e-3, 1e-3) == pytest.approx(math.exp(-0.1))
    assert decay_from_tau(2.0, 1.0, "euler") == 0.5
