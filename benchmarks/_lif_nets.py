"""The LIF network of the LIF benchmarks, at any shape, in neuro, snnTorch and SpikingJelly.

``layers = [n_in, h_1, ..., h_d, n_out]``: ``d`` hidden LIF layers (decay 0.9, threshold 1, soft
reset, ATan surrogate with alpha 2) behind linear layers, then a linear layer into a non-spiking
leaky-integrator readout (decay 0.9) whose membrane ``[T, B, n_out]`` is the output. The three
libraries get the same initial weights: ``nn.Linear``'s init (seed ``seed``) with the weights
multiplied by ``weight_scale`` (biases unchanged).

Imported as ``_lif_nets`` by ``benchmarks/lif_sweep.py`` and its workers (the script's folder is
on ``sys.path``); torch and the libraries are imported inside the builders only.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

BETA = 0.9
THRESHOLD = 1.0

Forward = Callable[[Any], Any]  # x[T, B, n_in] -> readout membrane [T, B, n_out]


def reference_linears(layers: list[int], seed: int) -> list[Any]:
    """The shared initial weights: one ``nn.Linear`` per pair of consecutive sizes."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return [nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:])]


def copy_weights(targets: list[Any], layers: list[int], seed: int, weight_scale: float) -> None:
    """Load the shared initial weights (x ``weight_scale``) into ``targets`` (linear layers)."""
    import torch

    with torch.no_grad():
        for dst, src in zip(targets, reference_linears(layers, seed), strict=True):
            dst.weight.copy_(src.weight * weight_scale)
            dst.bias.copy_(src.bias)


def build_neuro(layers: list[int], seed: int, weight_scale: float) -> tuple[Any, Forward]:
    """``neuro.models.SpikingMLP``: fused C++ LIF kernels, event-driven linear layers."""
    from neuro.models import SpikingMLP, SpikingMLPConfig

    model = SpikingMLP(SpikingMLPConfig(layers=list(layers), beta=BETA, threshold=THRESHOLD,
                                        reset="subtract", readout_beta=BETA))
    copy_weights([model[i] for i in range(0, len(model), 2)], layers, seed, weight_scale)

    def forward(x: Any) -> Any:
        out, _ = model(x)
        return out

    return model, forward


def build_snntorch(layers: list[int], seed: int, weight_scale: float) -> tuple[Any, Forward]:
    """``nn.Linear`` + ``snntorch.Leaky`` in the standard per-step loop (membranes threaded by
    hand); ``reset_delay=False`` so that the reset is applied at the spike's step, as in neuro and
    SpikingJelly (same spikes, same loss)."""
    import snntorch
    import torch
    from torch import nn

    class SnnTorchNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
            self.lifs = nn.ModuleList(
                snntorch.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="subtract",
                               reset_delay=False)
                for _ in layers[1:-1]
            )
            self.readout = snntorch.Leaky(beta=BETA, reset_mechanism="none")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mems = [lif.reset_mem() for lif in self.lifs]
            mem_out = self.readout.reset_mem()
            outs = []
            for t in range(x.shape[0]):
                h = x[t]
                for i, lif in enumerate(self.lifs):
                    h, mems[i] = lif(self.fcs[i](h), mems[i])
                _, mem_out = self.readout(self.fcs[-1](h), mem_out)
                outs.append(mem_out)
            return torch.stack(outs)

    model = SnnTorchNet()
    copy_weights(list(model.fcs), layers, seed, weight_scale)
    return model, model


def build_spikingjelly(layers: list[int], seed: int, weight_scale: float) -> tuple[Any, Forward]:
    """``layer.Linear`` + ``neuron.LIFNode`` in multi-step mode (the default CPU backend); the
    readout is a ``LIFNode`` that never fires (threshold 1e9) whose membrane sequence is kept."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from torch import nn

    tau = 1.0 / (1.0 - BETA)  # v - v / tau + x == BETA * v + x

    def lif(threshold: float, store: bool = False) -> Any:
        return neuron.LIFNode(tau=tau, decay_input=False, v_threshold=threshold, v_reset=None,
                              surrogate_function=surrogate.ATan(), step_mode="m",
                              store_v_seq=store)

    mods: list[Any] = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        mods.append(layer.Linear(a, b, step_mode="m"))
        mods.append(lif(THRESHOLD) if i < len(layers) - 2 else lif(1e9, store=True))
    model = nn.Sequential(*mods)
    copy_weights([model[i] for i in range(0, len(model), 2)], layers, seed, weight_scale)
    readout = model[-1]

    def forward(x: Any) -> Any:
        functional.reset_net(model)
        model(x)
        return readout.v_seq

    return model, forward


BUILDERS: dict[str, Callable[[list[int], int, float], tuple[Any, Forward]]] = {
    "neuro": build_neuro,
    "snntorch": build_snntorch,
    "spikingjelly": build_spikingjelly,
}


def neuro_spike_rates(model: Any, x: Any) -> list[float]:
    """Mean spike rate of each hidden LIF layer of a neuro ``SpikingMLP`` on ``x``."""
    import torch

    rates, h = [], x
    with torch.no_grad():
        for i, module in enumerate(model):
            if i % 2 == 0:
                h = module(h)
            else:
                h, _ = module(h)
                if i < len(model) - 1:
                    rates.append(float(h.mean()))
    return rates
