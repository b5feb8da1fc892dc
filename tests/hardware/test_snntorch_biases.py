"""snnTorch's own networks with biases, exported by snnTorch to NIR, on every integer target.

* ``Synaptic`` after a biased ``nn.Linear``: the bias is a constant input *current* (float
  ``i_t = alpha i_{t-1} + W s_t + b``). ``quantize`` realises it exactly as a one-neuron
  population spiking every step with weight column ``b`` into the current
  (``neuro.graph.populations.current_bias_sources``);
* ``RLeaky``: the feed-forward and recurrent ``nn.Linear`` biases are one summed bias in front
  of the neuron (``merge_biases``), rounded once, so Loihi's ``bias_mant << bias_exp`` holds it.

Each target must accept them and reproduce the integer reference executor bit for bit. Networks
are imported with ``reset="zero"`` (Loihi's only reset; snnTorch's default subtract is refused by
name there). NEST has no CubaLIF mapping and says so.
"""
from __future__ import annotations

import copy
import warnings

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir

from neuro.graph import nodes as N
from neuro.graph import quantize, read_nir, simulate
from neuro.graph.nir_io import SNNTORCH_DT
from neuro.graph.populations import BIAS_SOURCE, current_bias_sources, merge_biases
from neuro.hardware import get_backend
from neuro.hardware.base import check_target

T, B, NI, NH, NO = 40, 2, 10, 12, 5


def _vec(v: float, n: int) -> torch.Tensor:
    return torch.full((n,), float(v))


class _RNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(NI, NH)
        self.rlif = snn.RLeaky(beta=_vec(0.9, NH), threshold=_vec(1.0, NH), linear_features=NH,
                               init_hidden=True)
        self.fc2 = torch.nn.Linear(NH, NO)
        self.lif = snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True,
                             output=True)

    def forward(self, x):
        return self.lif(self.fc2(self.rlif(self.fc1(x))))


def _synaptic() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(NI, NH),
        snn.Synaptic(alpha=_vec(0.7, NH), beta=_vec(0.9, NH), threshold=_vec(1.0, NH),
                     init_hidden=True),
        torch.nn.Linear(NH, NO),
        snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True))


def _imported(make, tmp_path, name: str):
    torch.manual_seed(0)
    net = make()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
                m.bias.copy_(torch.linspace(-0.3, 0.4, m.bias.numel()))  # every synapse biased
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_to_nir(net, torch.zeros(1, NI), ignore_dims=[0])
    nir.write(tmp_path / f"{name}.nir", exported)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file records no reset: we give it
        g = read_nir(tmp_path / f"{name}.nir", SNNTORCH_DT, reset="zero")
    x = (np.random.default_rng(1).random((T, B, NI)) < 0.3).astype(np.float32)
    return g, x


NETS = {"Synaptic": _synaptic, "RLeaky": _RNet}


@pytest.mark.parametrize("net", sorted(NETS))
def test_bias_rewrites_are_exact_in_float(net, tmp_path):
    """The rewritten float graph computes exactly what the imported one does (every node)."""
    g, x = _imported(NETS[net], tmp_path, net)
    biased = [s for s, n in g.nodes.items() if n.role == "synapse" and np.any(getattr(n, "bias", 0))]
    assert len(biased) >= 2
    g2 = copy.deepcopy(g)
    changed = current_bias_sources(g2)
    merge_biases(g2)
    assert changed == ([n for n, v in g.nodes.items() if type(v) is N.CubaLIF] if net == "Synaptic"
                       else [])
    a = simulate(g, torch.from_numpy(x), record=True)
    b = simulate(g2, torch.from_numpy(x), record=True)
    neurons = [n for n, v in g.nodes.items() if v.role == "neuron"]
    for n in neurons:
        assert torch.equal(a[n], b[n]), n
    assert sum(float(a[n].sum()) for n in neurons) > 0
    if changed:
        assert float(b[changed[0] + BIAS_SOURCE].sum()) == T * B  # it spikes on every step


@pytest.mark.parametrize("target", ["loihi", "spinnaker", "fpga"])
@pytest.mark.parametrize("net", sorted(NETS))
def test_snntorch_biased_network_runs_bit_exact(net, target, tmp_path):
    g, x = _imported(NETS[net], tmp_path, net)
    backend = get_backend(target)
    assert backend.supports(g) == []
    check = check_target(backend, g, x, tmp_path / "artifact")
    assert check.comparison.identical, check.comparison.table()
    assert "format" in check.graph.metadata
    if net == "Synaptic":  # the bias source runs on the target like any population
        cuba = next(n for n, v in g.nodes.items() if type(v) is N.CubaLIF)
        src = cuba + BIAS_SOURCE
        assert np.asarray(check.result.spikes[src]).sum() == T * B
    out = g.outputs()[0]
    assert int(np.asarray(check.result.outputs[out]).sum()) > 0  # active: equality on silence proves nothing


def test_nest_says_why_it_cannot_run_synaptic(tmp_path):
    g, _ = _imported(_synaptic, tmp_path, "Synaptic")
    problems = get_backend("nest").supports(g)
    assert any("CubaLIF" in p and "no mapping" in p for p in problems), problems


def test_quantized_synaptic_bias_is_a_weight_column(tmp_path):
    g, x = _imported(_synaptic, tmp_path, "Synaptic")
    cuba = next(n for n, v in g.nodes.items() if type(v) is N.CubaLIF)
    q = quantize(g, "spinnaker", calibration_inputs=torch.from_numpy(x))
    assert cuba + BIAS_SOURCE in q.nodes
    assert all(not np.any(getattr(q.nodes[s], "bias", 0)) for s in q.predecessors(cuba)
               if q.nodes[s].role == "synapse")
