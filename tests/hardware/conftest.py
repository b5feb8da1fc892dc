"""Float graphs shared by every backend's tests: feed-forward LIF, delay, recurrent, EGRU and
SpikeGPT networks.

Use the ``networks`` fixture: ``graph, spikes = networks["delay"](T=300)``. Each builder returns ``(graph, spikes)`` with spikes ``[T, B, N]`` float32 0/1. The networks have
negative weights, biases where a format allows them, and fire at a moderate rate, so the
integer arithmetic (rounding of negative membranes, saturation/wrap, exact threshold) is exercised.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.graph import Graph, from_module
from neuro.layers import Linear, Recurrent, Sequential
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.neurons import LI, LIF


def _spikes(T: int, B: int, n: int, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((T, B, n)) < rate).astype(np.float32)


def feedforward(T: int = 200, B: int = 2, sizes: tuple[int, ...] = (20, 32, 16, 5), *,
                bias: bool = False, seed: int = 0, weight_scale: float = 3.0) -> tuple[Graph, np.ndarray]:
    """``Linear -> LIF`` layers (zero reset, beta 0.9) and a ``Linear -> LI`` readout."""
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = Linear(a, b, bias=bias)
        with torch.no_grad():
            lin.weight.mul_(weight_scale)
        mods.append(lin)
        mods.append(LIF(beta=0.9, threshold=1.0, reset="zero") if i < len(sizes) - 2 else LI(beta=0.9))
    return from_module(Sequential(*mods)), _spikes(T, B, sizes[0], 0.2, seed + 1)


def delay_network(T: int = 200, B: int = 2, *, n_in: int = 12, hidden: int = 16, n_out: int = 4,
                  max_delay: int = 9, seed: int = 0) -> tuple[Graph, np.ndarray]:
    """A trained-shape ``DelaySNN`` (integer delays, BatchNorm folded by quantize, LI readout)."""
    torch.manual_seed(seed)
    model = DelaySNN(DelaySNNConfig(n_inputs=n_in, n_hidden=hidden, n_layers=2, n_outputs=n_out,
                                    max_delay=max_delay, dropout=0.0, tau=2.0, right_padding=0))
    with torch.no_grad():
        for m in model.delayed_layers():
            m.weight.mul_(2.0)
    model.eval().integer_delays()
    return from_module(model), _spikes(T, B, n_in, 0.2, seed + 1)


def reservoir(T: int = 200, B: int = 2, *, n_in: int = 10, n: int = 50, p: float = 0.2,
              seed: int = 0) -> tuple[Graph, np.ndarray]:
    """An LSM-style recurrent population (80/20 E/I, fixed random weights) and an LI readout."""
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(n, n_in, generator=g) * 0.8
    mask = torch.rand(n, n, generator=g) < p
    sign = torch.ones(n)
    sign[int(0.8 * n):] = -2.0
    w_rec = torch.rand(n, n, generator=g) * 0.6 * sign[None, :] * mask
    w_rec.fill_diagonal_(0)
    res = Recurrent(n_in, LIF(beta=0.8, threshold=1.0, reset="zero"), size=n, w_in=w_in, w_rec=w_rec,
                    learn_recurrent=False)
    readout = Linear(n, 3, bias=False)
    model = Sequential(res, readout, LI(beta=0.9))
    return from_module(model), _spikes(T, B, n_in, 0.15, seed + 1)


def lsm(T: int = 200, B: int = 2, *, n_in: int = 16, size: int = 60,
        seed: int = 0) -> tuple[Graph, np.ndarray]:
    """``neuro.models.LSM``: a Gaussian reservoir with a (random) ridge-style ``Affine -> LI`` readout."""
    from neuro.models.lsm import LSM, LSMConfig

    model = LSM(LSMConfig(n_inputs=n_in, size=size, n_outputs=3, n_steps=T, seed=seed))
    with torch.no_grad():
        model.readout.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed))
    return from_module(model), _spikes(T, B, n_in, 0.2, seed + 1)


def egru(T: int = 200, B: int = 2, *, n_in: int = 6, sizes: tuple[int, ...] = (16, 12),
         seed: int = 0) -> tuple[Graph, np.ndarray]:
    """Two stacked EGRU layers (graded events, reset by subtraction) on input spikes."""
    from neuro.neurons import EGRU

    torch.manual_seed(seed)
    dims = (n_in, *sizes)
    model = Sequential(*[EGRU(a, b, thr_mean=0.15) for a, b in zip(dims[:-1], dims[1:])])
    return from_module(model), _spikes(T, B, n_in, 0.3, seed + 1)


def spikegpt(T: int = 200, B: int = 2, *, vocab: int = 8, channels: int = 8,
             seed: int = 0) -> tuple[Graph, np.ndarray]:
    """One SpikeGPT block (LayerNorm, token shift, WKV, gates, squared ReLU, two LIFs, residual
    adds) on one-hot tokens; weights moved off the initialisation's zeros so the LIFs fire."""
    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig
    from neuro.models.spikegpt.graph import one_hot_tokens

    torch.manual_seed(seed)
    model = SpikeGPT(SpikeGPTConfig(vocab_size=vocab, n_layer=1, n_embd=channels, ctx_len=8)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ids = np.random.default_rng(seed + 1).integers(0, vocab, (T, B))
    return from_module(model), one_hot_tokens(ids, vocab)


NETWORKS = {"feedforward": feedforward, "delay": delay_network, "reservoir": reservoir, "lsm": lsm,
            "egru": egru, "spikegpt": spikegpt}


@pytest.fixture
def networks():
    """``{"feedforward": builder, "delay": builder, "reservoir": builder}``."""
    return NETWORKS
