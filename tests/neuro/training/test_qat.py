"""Quantization-aware training: the QAT forward is the exported integer graph, bit for bit.

Oracle: the integer reference executor (``neuro.graph.intsim.simulate_int``) on the graph that
``quantize`` makes of the converted model. The accuracy claim (QAT within 1 point of float after
export) is measured by ``examples/qat_delays.py`` (results in ``examples/results/qat_delays.json``).
"""
import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from neuro.datasets import delay_pattern_task
from neuro.graph import from_module
from neuro.graph.formats import fpga
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.layers import Linear, Recurrent, Sequential
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.models.delay_snn import train_delay_snn
from neuro.neurons import LI, LIF, CubaLIF
from neuro.training.qat import QATNeuron, prepare_qat


def _model(seed=0, hidden=16, layers=2):
    torch.manual_seed(seed)
    m = DelaySNN(DelaySNNConfig(n_inputs=12, n_hidden=hidden, n_layers=layers, n_outputs=4,
                                max_delay=5, dropout=0.0, tau=2.0, right_padding=0))
    with torch.no_grad():
        for layer in m.delayed_layers():
            layer.weight.mul_(2.0)
        for bn in m:
            if type(bn).__name__ == "BatchNormTime":  # non-trivial statistics: a real fold
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.bias.uniform_(-0.1, 0.1)
    return m.eval()


@pytest.mark.parametrize("fmt", ["int8", "int8-m12", "int16",
                                 fpga(8, rounding="floor", overflow="wrap", state_bits=12)])
def test_qat_forward_is_the_exported_integer_graph(fmt):
    m = _model()
    qat = prepare_qat(m, fmt)
    x = (torch.rand(60, 4, 12, generator=torch.Generator().manual_seed(1)) < 0.25).float()
    with torch.no_grad():
        out, _ = m(x)
    qat.convert()
    q = quantize(from_module(m), fmt, calibration_inputs=x.numpy())
    assert qat.check_export(q) == []
    ref = simulate_int(q, {"input": x.numpy().astype(np.int64)}, record=True)
    S = q.nodes["9"].q["scale"]  # the LI readout
    got = np.round(out.double().numpy() * S).astype(np.int64)
    np.testing.assert_array_equal(got, ref["output"])
    assert ref["2"].sum() > 0 and ref["6"].sum() > 0  # both hidden layers fire
    assert np.abs(out.double().numpy() * S - ref["output"]).max() < 1e-2


def test_qat_composes_with_train_delay_snn():
    train, test = delay_pattern_task(96, 64, n_steps=20, seed=3)
    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=train.n_channels, n_hidden=16, n_layers=1,
                                n_outputs=train.n_classes, max_delay=5, dropout=0.1))
    train_delay_snn(m, train, test, epochs=1, batch_size=32, progress=False, log=lambda s: None)
    qat = prepare_qat(m, "int8")
    assert isinstance(m[2], QATNeuron) and isinstance(m[1], torch.nn.Identity)  # BN folded
    assert all(not layer.P.requires_grad for layer in m.delayed_layers())
    raw = m[0].parametrizations.weight.original
    before = raw.detach().clone()
    S = qat.scales()["2"]
    w = m[0].weight.detach().double() * S
    np.testing.assert_allclose(w.numpy(), np.round(w.numpy()), atol=1e-4)  # on the integer grid
    r = train_delay_snn(m, train, test, epochs=1, batch_size=32, lr=1e-3, progress=False,
                        log=lambda s: None)
    assert np.isfinite(r.loss[-1]) and not torch.equal(before, raw.detach())  # STE gradients
    m(torch.zeros(5, 2, train.n_channels))
    assert all(layer.integer for layer in m.delayed_layers())  # the pre-hook keeps integer delays
    qat.convert()
    assert not parametrize.is_parametrized(m[0]) and isinstance(m[2], LIF)
    g = from_module(m)
    assert g.nodes["0"].kind == "DelayedAffine" and "1" not in g.nodes


def test_prepare_qat_rejects_what_has_no_integer_form():
    with pytest.raises(ValueError, match="module '1' \\(CubaLIF\\) has no QAT form"):
        prepare_qat(Sequential(Linear(3, 4), CubaLIF(alpha=0.5, beta=0.9)), "int8")
    with pytest.raises(ValueError, match="module '0' \\(Recurrent\\) has no QAT form"):
        prepare_qat(Sequential(Recurrent(3, LIF(), size=4), Linear(4, 2), LI()), "int8")
    with pytest.raises(ValueError, match="'spinnaker' is not an integer FPGA format"):
        prepare_qat(Sequential(Linear(3, 4), LIF()), "spinnaker")
    with pytest.raises(ValueError, match="neuron '0' has no synapse layer"):
        prepare_qat(Sequential(LIF(), Linear(3, 2), LI()), "int8")
