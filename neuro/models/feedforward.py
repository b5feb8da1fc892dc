"""A feed-forward spiking network: Linear -> LIF blocks and a leaky-integrator readout.

``SpikingMLP(SpikingMLPConfig(layers=[700, 256, 256, 20]))`` is the network of the LIF speed
benchmark (700 -> 256 LIF -> 256 LIF -> 20 LI) and of ``neuro demo``. Input ``[T, B, layers[0]]``,
output the readout membrane ``[T, B, layers[-1]]``; classify with the time-summed readout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from ..layers import Linear, Sequential
from ..neurons import LI, LIF
from ..surrogate import surrogate_from_description
from .base import FamilyModel, ModelConfig


@dataclass
class SpikingMLPConfig(ModelConfig):
    """Hyperparameters of :class:`SpikingMLP` (JSON-serialisable; stored in checkpoints)."""

    SIZES: ClassVar[tuple[str, ...]] = ("layers",)

    layers: list[int] = field(default_factory=lambda: [700, 256, 256, 20])
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    decay_input: bool = False
    detach_reset: bool = False
    readout_beta: float = 0.9
    bias: bool = True
    surrogate: dict[str, Any] = field(default_factory=lambda: {"kind": "ATan", "alpha": 2.0})
    dt: float = 1e-3

    def __post_init__(self) -> None:
        if len(self.layers) < 2 or any(not isinstance(n, int) or n <= 0 for n in self.layers):
            raise ValueError(f"SpikingMLPConfig.layers must be >= 2 positive ints, got {self.layers}")

    def n_elements(self) -> int:
        """Linear weights (and biases), two scalars per LIF, one for the LI readout."""
        s = self.layers
        linear = sum(a * b + (b if self.bias else 0) for a, b in zip(s[:-1], s[1:]))
        return linear + 2 * (len(s) - 2) + 1

    def n_working(self) -> int:
        """One sample's activations."""
        return sum(self.layers)



class SpikingMLP(Sequential, FamilyModel):
    """Linear -> LIF for each hidden layer, then Linear -> LI readout."""

    name = "spiking-mlp"
    config_class = SpikingMLPConfig
    config: SpikingMLPConfig

    def __init__(self, config: SpikingMLPConfig | None = None) -> None:
        config = config or SpikingMLPConfig()
        sur = surrogate_from_description(config.surrogate)
        mods: list[nn.Module] = []
        sizes = config.layers
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods.append(Linear(n_in, n_out, bias=config.bias))
            if i < len(sizes) - 2:
                mods.append(LIF(beta=config.beta, threshold=config.threshold, reset=config.reset,
                                decay_input=config.decay_input, detach_reset=config.detach_reset,
                                surrogate=sur, dt=config.dt))
            else:
                mods.append(LI(beta=config.readout_beta, dt=config.dt))
        super().__init__(*mods)
        self.config = config

    def logits(self, x: Tensor) -> Tensor:
        """Class scores ``[B, C]``: the readout membrane summed over time."""
        out, _ = self(x)
        return out.sum(0)
