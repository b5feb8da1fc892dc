"""Behaviour of each neuron type: golden traces with literal numbers, options, describe(), errors."""
import json

import pytest
import torch

from neuro.neurons import EGRU, IF, LI, LIF, CubaLIF, Neuron
from neuro.surrogate import EGRUPseudoDerivative


def _impulse(T=6, value=0.6):
    x = torch.zeros(T, 1, 1)
    x[0] = value
    x[1] = value
    return x


def test_lif_default_reset_is_zero_so_defaults_deploy():
    # the default is chosen for the hardware (Loihi 2, NEST and SpiNNaker reset to a potential)
    from neuro.graph import from_module, quantize
    from neuro.layers import Linear, Sequential

    assert LIF().reset == "zero" and IF().reset == "zero"
    g = from_module(Sequential(Linear(3, 2), LIF(beta=0.5)))
    assert quantize(g, "loihi2", calibration_inputs=torch.ones(4, 3)).nodes


def test_lif_golden_trace_subtract():
    # beta 0.5, threshold 1: h = 0.5 v + x
    x = torch.tensor([0.6, 0.8, 0.0, 1.5, 0.0, 0.0]).view(6, 1, 1)
    s, tr = LIF(beta=0.5, threshold=1.0, reset="subtract")(x, record=True)
    assert s.flatten().tolist() == [0, 1, 0, 1, 0, 0]
    # h: 0.6, 1.1 -> v 0.1, 0.05, 1.525 -> 0.525, 0.2625, 0.13125
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([0.6, 0.1, 0.05, 0.525, 0.2625, 0.13125]))


def test_lif_golden_trace_zero_reset_and_decay_input():
    x = torch.tensor([0.6, 0.8, 0.0, 1.5, 0.0, 0.0]).view(6, 1, 1)
    s, tr = LIF(beta=0.5, reset="zero")(x, record=True)
    assert s.flatten().tolist() == [0, 1, 0, 1, 0, 0]
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([0.6, 0.0, 0.0, 0.0, 0.0, 0.0]))
    # decay_input: h = v + (x - v) (1 - beta) = 0.5 v + 0.5 x
    s, tr = LIF(beta=0.5, decay_input=True, reset="subtract")(torch.full((3, 1, 1), 1.5), record=True)
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([0.75, 0.125, 0.8125]))
    assert s.flatten().tolist() == [0, 1, 0]


def test_deferred_reset_is_snntorch_convention():
    x = torch.tensor([1.2, 0.0, 0.0]).view(3, 1, 1)
    s, tr = LIF(beta=0.5, reset="subtract", reset_timing="deferred")(x, record=True)
    # t0: U=1.2 spikes (pre-reset kept); t1: U = 0.5*1.2 - 1 = -0.4; t2: -0.2
    assert s.flatten().tolist() == [1, 0, 0]
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([1.2, -0.4, -0.2]))


def test_refractory_period_blocks_input():
    lif = LIF(beta=1.0, threshold=1.0, reset="zero", refractory=2)
    s, tr = lif(torch.full((8, 1, 1), 1.0), record=True)
    # fires, ignores 2 steps, fires again...
    assert s.flatten().tolist() == [1, 0, 0, 1, 0, 0, 1, 0]
    assert tr.refractory.flatten().tolist() == [2, 1, 0, 2, 1, 0, 2, 1]


def test_if_neuron_integrates_without_leak():
    s, tr = IF(threshold=1.0, reset="subtract")(torch.full((4, 1, 1), 0.3), record=True)
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([0.3, 0.6, 0.9, 0.2]))
    assert s.flatten().tolist() == [0, 0, 0, 1]
    with pytest.raises(TypeError, match="does not leak"):
        IF(beta=0.5)


def test_li_readout_is_membrane():
    out, st = LI(beta=0.5)(torch.ones(3, 1, 2))
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([1.0, 1.5, 1.75]))
    torch.testing.assert_close(st.v, out[-1])


def test_cubalif_current_filter():
    s, tr = CubaLIF(alpha=0.5, beta=0.5, threshold=10.0)(_impulse(4, 1.0), record=True)
    torch.testing.assert_close(tr.i.flatten(), torch.tensor([1.0, 1.5, 0.75, 0.375]))
    torch.testing.assert_close(tr.v.flatten(), torch.tensor([1.0, 2.0, 1.75, 1.25]))


def test_lif_with_recurrent_input_for_reservoirs():
    from neuro.layers import Recurrent

    w_rec = torch.zeros(2, 2)
    w_rec[1, 0] = 1.0  # neuron 0 -> neuron 1
    rec = Recurrent(1, LIF(2, beta=0.0), w_in=torch.tensor([[1.0], [0.0]]), w_rec=w_rec)
    u = torch.zeros(4, 1, 1)
    u[0] = 1.0
    s, _ = rec(u)
    # neuron 0 fires at t=0, neuron 1 one step later through the recurrent weight
    assert s[:, 0].tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]


def test_lif_over_tokens_for_spikegpt():
    """SpikeGPT's LIF: tau 2, decay_input, hard reset; membranes carry from token to token."""
    lif = LIF(beta=0.5, decay_input=True, reset="zero")
    x = torch.rand(16, 3, 8) * 3  # [tokens, batch, channels]
    s, _ = lif(x)
    s_perm, _ = lif(x[:, [2, 0, 1]])
    assert torch.equal(s[:, [2, 0, 1]], s_perm)  # batch entries are independent
    s_step = []
    st = lif.init_state((3, 8))
    for t in range(16):
        out, st = lif.step(x[t], st)
        s_step.append(out)
    assert torch.equal(torch.stack(s_step), s)


def test_egru_equations_and_events():
    torch.manual_seed(0)
    egru = EGRU(5, 7, thr_mean=0.3)
    x = torch.randn(12, 2, 5)
    y, st = egru(x, record=True)
    assert y.shape == (12, 2, 7)
    o = st.o
    assert set(o.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y == 0, (o == 0) | (y == 0))  # output only at events
    # step-by-step equals multi-step
    state = egru.init_state((2,))
    ys = []
    for t in range(12):
        out, state = egru.step(x[t], state)
        ys.append(out)
    torch.testing.assert_close(torch.stack(ys), y)
    # events reset by subtracting theta; c after reset < c before
    assert isinstance(egru.surrogate, EGRUPseudoDerivative)
    y.sum().backward()
    assert egru.threshold.grad is not None and egru.recurrent_kernel.grad is not None


def test_egru_threshold_init_mean_and_clamp():
    torch.manual_seed(1)
    egru = EGRU(3, 4000, thr_mean=0.3)
    assert egru.threshold.mean().item() == pytest.approx(0.3, abs=0.01)
    with torch.no_grad():
        egru.threshold[0] = 1.7
    assert egru._theta().max() <= 1.0
    with pytest.raises(ValueError, match="thr_mean"):
        EGRU(3, 4, thr_mean=1.2)


@pytest.mark.parametrize("neuron", [
    LIF(beta=0.9), LIF(4, beta=torch.rand(4), learn_threshold=True), IF(), LI(), CubaLIF(),
    EGRU(3, 4),
], ids=lambda n: n.kind)
def test_describe_is_plain_json(neuron):
    d = neuron.describe()
    assert isinstance(neuron, Neuron)
    assert d["kind"] == neuron.kind
    assert json.loads(json.dumps(d)) == d


# ------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors():
    lif = LIF(8)
    with pytest.raises(TypeError, match="floating-point"):
        lif(torch.ones(5, 2, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"trailing dimensions must be \(8,\)"):
        lif(torch.ones(5, 2, 7))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        LIF()(torch.ones(5))
    st = lif.init_state((3,))
    with pytest.raises(ValueError, match="another batch size"):
        lif(torch.ones(5, 2, 8), st)
    with pytest.raises(TypeError, match="LIFState"):
        lif(torch.ones(5, 2, 8), (torch.zeros(2, 8),))
    with pytest.raises(ValueError, match="beta must lie"):
        LIF(beta=1.5)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        LIF(threshold=0.0)
    with pytest.raises(ValueError, match="reset must be"):
        LIF(reset="none")
    with pytest.raises(ValueError, match="shape"):
        LIF(4, beta=torch.rand(5))
    with pytest.raises(ValueError, match="refractory"):
        LIF(refractory=2, reset_timing="deferred")
    with pytest.raises(TypeError, match="surrogate"):
        LIF(surrogate=lambda x: x)
    with pytest.raises(ValueError, match=r"trailing dimensions must be \(3,\)"):
        EGRU(3, 4)(torch.ones(5, 2, 4))
