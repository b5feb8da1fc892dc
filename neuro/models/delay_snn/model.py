"""The DCLS-delays SNN (Hammouamri et al., ICLR 2024) for SHD/SSC/GSC and offline tasks.

Per hidden layer: ``DelayedLinear -> BatchNormTime -> LIF -> TimeDropout``; readout
``DelayedLinear -> LI``. LIF as the reference: ``tau`` in steps (``beta = 1 - 1/tau``, Euler),
``decay_input=False``, hard reset, ``detach_reset=True``, threshold 1, ATan(alpha=5). The readout
is the reference's never-firing LIF, i.e. a leaky integrator with the same ``beta``. Loss
(:func:`summed_softmax_loss`): cross-entropy of ``sum_t softmax(V_t)``.

``delays``: ``"learned"`` (DCLS), ``"fixed"`` (random integer delays, only weights train) or
``"none"`` (``max_delay = 1``: every delay 0) for the ablation of the paper's claim.
Defaults are the SHD configuration (2 x 256, dropout 0.4, tau 1.005 steps, K = 25).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ...layers import BatchNormTime, DelayedLinear, Sequential, TimeDropout
from ...neurons import LI, LIF
from ...surrogate import ATan
from ..base import FamilyModel, ModelConfig, eval_mode

DELAY_MODES = ("learned", "fixed", "none")


@dataclass
class DelaySNNConfig(ModelConfig):

    SIZES: ClassVar[tuple[str, ...]] = ("n_inputs", "n_hidden", "n_layers", "n_outputs")
    n_inputs: int = 140
    n_hidden: int = 256
    n_layers: int = 2
    n_outputs: int = 20
    max_delay: int = 25
    delay_limit: int | None = None
    delays: str = "learned"
    tau: float = 1.005          # membrane time constant in steps (SHD: 10.05 ms / 10 ms)
    threshold: float = 1.0
    dropout: float = 0.4
    alpha: float = 5.0          # ATan surrogate sharpness
    batchnorm: bool = True
    right_padding: int | None = None  # None: (max_delay - 1) // 2 as the reference
    dt: float = 1e-2            # one frame = 10 ms

    def __post_init__(self) -> None:
        if self.delays not in DELAY_MODES:
            raise ValueError(f"DelaySNNConfig.delays must be one of {DELAY_MODES}, got {self.delays!r}")
        if self.max_delay < 1 or self.max_delay % 2 == 0:
            raise ValueError(f"DelaySNNConfig.max_delay must be odd and >= 1, got {self.max_delay}")
        if self.tau < 1:
            raise ValueError(f"DelaySNNConfig.tau is in steps and must be >= 1, got {self.tau}")
        if self.n_layers < 1:
            raise ValueError("DelaySNNConfig.n_layers must be >= 1")

    def _synapses(self) -> int:
        """Synapses of the ``n_layers + 1`` DelayedLinear layers (closed form: no list of
        ``n_layers`` entries is built)."""
        h = self.n_hidden
        return self.n_inputs * h + (self.n_layers - 1) * h * h + h * self.n_outputs

    def n_elements(self) -> int:
        """Per DelayedLinear ``weight`` and ``P`` (``[out, in]``) and ``sigma``; per hidden
        layer BatchNormTime (4 per channel and a counter) and the LIF's two scalars; the LI's."""
        hidden = self.n_layers * ((4 * self.n_hidden + 1 if self.batchnorm else 0) + 2)
        return 2 * self._synapses() + (self.n_layers + 1) + hidden + 1

    def n_working(self) -> int:
        """The dense delay kernels ``[out, in, K]`` every forward builds, and one sample's
        membranes."""
        K = 1 if self.delays == "none" else self.max_delay
        return self._synapses() * K + self.n_layers * self.n_hidden + self.n_outputs



class DelaySNN(Sequential, FamilyModel):
    name = "delay-snn"
    config_class = DelaySNNConfig
    config: DelaySNNConfig

    def __init__(self, config: DelaySNNConfig | None = None) -> None:
        c = config or DelaySNNConfig()
        K = 1 if c.delays == "none" else c.max_delay
        beta = 1 - 1 / c.tau
        mods: list[torch.nn.Module] = []
        sizes = [c.n_inputs] + [c.n_hidden] * c.n_layers
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            mods.append(DelayedLinear(n_in, n_out, K, delay_limit=c.delay_limit,
                                      right_padding=c.right_padding))
            if c.batchnorm:
                mods.append(BatchNormTime(n_out))
            mods.append(LIF(beta=beta, threshold=c.threshold, decay_input=False, reset="zero",
                            detach_reset=True, surrogate=ATan(alpha=c.alpha), dt=c.dt))
            mods.append(TimeDropout(c.dropout))
        mods.append(DelayedLinear(sizes[-1], c.n_outputs, K, delay_limit=c.delay_limit,
                                  right_padding=c.right_padding))
        mods.append(LI(beta=beta, dt=c.dt))
        super().__init__(*mods)
        self.config = c
        if c.delays != "learned":  # fixed random (or zero) delays: exact, not trained
            for m in self.delayed_layers():
                m.P.requires_grad_(False)
                m.integer_delays()

    def layer_names(self) -> dict[str, str]:
        """``{"0": "hidden.0.synapse", "1": "hidden.0.batchnorm", "2": "hidden.0.lif", ...,
        "readout.synapse", "readout.li"}``: the lowered nodes by their role in the network."""
        names, layer = {}, 0
        role = {DelayedLinear: "synapse", BatchNormTime: "batchnorm", LIF: "lif",
                TimeDropout: "dropout", LI: "li"}
        n_hidden = self.config.n_layers
        for i, m in enumerate(self):
            if isinstance(m, DelayedLinear) and i > 0:
                layer += 1
            where = "readout" if layer >= n_hidden else f"hidden.{layer}"
            names[str(i)] = f"{where}.{role.get(type(m), type(m).__name__.lower())}"
        return names

    def delayed_layers(self) -> list[DelayedLinear]:
        return [m for m in self if isinstance(m, DelayedLinear)]

    def positions(self) -> list[torch.nn.Parameter]:
        return [m.P for m in self.delayed_layers() if m.P.requires_grad]

    def weights(self) -> list[torch.nn.Parameter]:
        pos = {id(p) for p in self.positions()}
        return [p for p in self.parameters() if id(p) not in pos and p.requires_grad]

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Apply the sigma schedule for ``epoch`` (of ``epochs``)."""
        for m in self.delayed_layers():
            m.set_sigma(DelayedLinear.sigma_at(epoch, m.max_delay, epochs))

    def clamp_positions(self) -> None:
        for m in self.delayed_layers():
            m.clamp_positions()

    def integer_delays(self, on: bool = True) -> DelaySNN:
        """Evaluate/export with rounded integer delays (learned mode toggles back for training)."""
        if self.config.delays == "learned":
            for m in self.delayed_layers():
                m.integer_delays(on)
        return self

    def predict(self, x: Tensor) -> Tensor:
        """Class labels ``[B]`` (summed softmax, integer delays as deployed)."""
        with self.export_view() as m:
            return predict(m(x)[0])

    def decide(self, out: Tensor) -> Tensor:
        """Class labels ``[B]`` from the readout ``out [T, B, C]``: argmax of the summed softmax."""
        return predict(out)

    @contextlib.contextmanager
    def export_view(self) -> Iterator[DelaySNN]:
        """Eval mode with the rounded integer delays (what evaluation and export use); the
        previous delay mode and training mode come back on exit."""
        layers = self.delayed_layers()
        was = [m.integer for m in layers]
        with eval_mode(self):
            self.integer_delays(True)
            try:
                yield self
            finally:
                for m, on in zip(layers, was):
                    m.integer_delays(on)


def summed_softmax_loss(out: Tensor, y: Tensor) -> Tensor:
    """The reference loss: ``CE(sum_t softmax(out[t]), y)`` for ``out [T, B, C]``."""
    return F.cross_entropy(F.softmax(out, dim=-1).sum(0), y)


def predict(out: Tensor) -> Tensor:
    return F.softmax(out, dim=-1).sum(0).argmax(-1)
