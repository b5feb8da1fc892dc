"""Oracle: NeuroBench 2.3's SynapticOperations and ActivationSparsity on the snnTorch model equal
neuro's counts on the same model brought in through NIR, run on the same inputs.

NeuroBench is installed with ``pip install --no-deps neurobench==2.3.0`` (its tonic/torchaudio
dependencies are only used by its datasets and audio preprocessors); its metrics, models and
benchmark modules import torch, snntorch and tqdm only. Imported directly: a missing oracle fails.
"""
import warnings

import numpy as np
import pytest
import snntorch as snn
import torch
from neurobench.benchmarks import Benchmark
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
from neurobench.models import SNNTorchModel
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from torch.utils.data import DataLoader, TensorDataset

from neuro.energy import count
from neuro.graph import from_nir, simulate

NI, NH, NO, T, B = 10, 12, 5, 40, 4

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _vec(v, n):
    return torch.full((n,), float(v))


class _Recurrent(torch.nn.Module):
    """Linear -> RLeaky (its recurrent Linear is a connection layer too) -> Linear -> Leaky."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(NI, NH)
        self.rlif = snn.RLeaky(beta=_vec(0.9, NH), threshold=_vec(1.0, NH), linear_features=NH,
                               init_hidden=True)
        self.fc2 = torch.nn.Linear(NH, NO)
        self.lif = snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True)

    def forward(self, x):
        return self.lif(self.fc2(self.rlif(self.fc1(x))))


def _feedforward():
    return torch.nn.Sequential(
        torch.nn.Linear(NI, NH),
        snn.Leaky(beta=_vec(0.9, NH), threshold=_vec(1.0, NH), init_hidden=True),
        torch.nn.Linear(NH, NO),
        snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True))


def _snntorch_spikes(net, x):
    snn_utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(x[t])[0] for t in range(x.shape[0])])


@pytest.mark.parametrize("inputs", ["spikes", "real"])
@pytest.mark.parametrize("make", [_feedforward, _Recurrent], ids=["feedforward", "recurrent"])
def test_counts_equal_neurobench_on_the_snntorch_model(make, inputs):
    torch.manual_seed(0)
    net = make()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
                m.weight[m.weight.abs() < 0.3] = 0  # zero weights must not count
    if inputs == "spikes":
        x = (torch.rand(T, B, NI) < 0.3).float()
    else:
        x = torch.rand(T, B, NI) * (torch.rand(T, B, NI) < 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = from_nir(export_to_nir(net, torch.zeros(1, NI), ignore_dims=[0]), 1e-4,
                         reset="subtract", reset_timing="deferred")  # snnTorch's default reset
    # the same run: neuro's graph gives snnTorch's spikes
    ref = _snntorch_spikes(net, x)
    assert ref.sum() > 0
    assert torch.equal(simulate(graph, x)[graph.outputs()[0]], ref)

    ours = count(graph, x, progress=False)
    bench = Benchmark(SNNTorchModel(net), DataLoader(TensorDataset(x.transpose(0, 1), torch.zeros(B)),
                                                     batch_size=2),
                      [], [], [[], [SynapticOperations, ActivationSparsity]])
    theirs = bench.run(quiet=True)
    nb = ours.neurobench()
    assert nb["SynapticOperations"] == theirs["SynapticOperations"]
    assert nb["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=0, abs=1e-12)
    so = theirs["SynapticOperations"]
    if inputs == "spikes":
        assert so["Effective_ACs"] > 0 and so["Effective_MACs"] == 0
    else:
        assert so["Effective_MACs"] > 0 and so["Effective_ACs"] > 0  # first layer MACs, hidden ACs
    assert 0 < nb["ActivationSparsity"] < 1
    assert np.isclose(ours.total("effective_acs") / B, so["Effective_ACs"])


def test_conv_and_pooling_counts_equal_neurobench():
    """A Conv2d -> Leaky -> AvgPool2d -> Flatten -> Linear -> Leaky model: NeuroBench counts the
    convolution per non-zero input and kernel tap inside the input (ACs on spikes), pooling
    free, and the Linear after the pool as MACs (its input, a mean of spikes, is not binary)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1),
        snn.Leaky(beta=torch.full((4, 5, 5), 0.9), threshold=torch.full((4, 5, 5), 1.0),
                  init_hidden=True),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, NO),
        snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[0].weight[net[0].weight.abs() < 0.2] = 0
        net[4].weight.mul_(4.0)
    x = (torch.rand(T, B, 2, 10, 10) < 0.3).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = from_nir(export_to_nir(net, torch.zeros(1, 2, 10, 10), ignore_dims=[0]), 1e-4,
                         reset="subtract", reset_timing="deferred")
    ref = _snntorch_spikes(net, x)
    assert ref.sum() > 0
    assert torch.equal(simulate(graph, x)[graph.outputs()[0]], ref)
    ours = count(graph, x, progress=False).neurobench()
    bench = Benchmark(SNNTorchModel(net), DataLoader(TensorDataset(x.transpose(0, 1), torch.zeros(B)),
                                                     batch_size=2),
                      [], [], [[], [SynapticOperations, ActivationSparsity]])
    theirs = bench.run(quiet=True)
    so = theirs["SynapticOperations"]
    assert ours["SynapticOperations"] == so
    assert so["Effective_ACs"] > 0 and so["Effective_MACs"] > 0
    assert ours["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=0, abs=1e-12)
