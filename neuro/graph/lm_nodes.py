r"""Graph nodes of the recurrent language models (SpikeGPT's spiking RWKV).

The graph's time axis is the token axis: one step is one token. Shapes are per step (``[C]``
channels); the executors run ``[T, B, C]``. The float reference executor
(``neuro.graph.simulate``) runs these nodes; their integer form, as a whole SpikeGPT graph, is
``neuro.graph.spikegpt_int`` (run by the FPGA target); the other integer targets refuse them by
name (``supports()``). Equations (``H(z) = 1`` if ``z >= 0``):

``Embedding``   ``y_t = E^T x_t`` for a one-hot token ``x_t [V]`` (a row lookup), then
                ``H(y_t)`` when ``binary``. ``weight E [V, C]``.
``LayerNorm``   ``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`` over the channels
                (biased variance, as ``torch.nn.LayerNorm``).
``TokenShift``  ``y_t = mix * x_t + (1 - mix) * x_{t-1}`` with ``x_{-1} = 0``: RWKV's token shift
                and mix; state: the previous step's input.
``WKV``         RWKV-4's linear attention (``neuro.models.spikegpt.wkv``); two inputs, the keys
                then the values (``ports``), state: the max-subtracted sums.
``Gate``        ``y = sigmoid(g) * v``; two inputs, the gate then the value (``ports``).
``SquaredReLU`` ``y = max(x, 0)^2``.
``Add``         ``y = sum of the inputs`` (a residual connection; the graph sums a node's inputs).

**Ports.** A node with ``ports`` (``WKV``, ``Gate``) takes its inputs one per port, in the order
of its incoming edges in ``Graph.edges`` (the order is kept by ``save``/``load`` and NIR is not
involved: these nodes have no NIR form), instead of their sum. The graph checks that it has
exactly one incoming edge per port.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .nodes import Node, _f32, _need, _num, _same_shape


@dataclass(eq=False)
class Embedding(Node):
    """Token embedding of a one-hot input ``[V]`` -> ``[C]`` (module docstring); ``binary``: the
    Heaviside on the row (SpikeGPT's binary embedding)."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    binary: bool = False
    kind: ClassVar[str] = "Embedding"
    role: ClassVar[str] = "operator"

    def __post_init__(self) -> None:
        self.weight = _num(self.weight)  # integer in a quantized EGRU LM (neuro.graph.egru_lm_int)
        self.binary = bool(self.binary)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 2, f"must be [V, C], got {self.weight.shape}")
        _same_shape(name, self, in_shape, (self.weight.shape[0],))
        return (self.weight.shape[1],)

    @classmethod
    def example(cls):
        return cls(weight=np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), binary=True)


@dataclass(eq=False)
class LayerNorm(Node):
    """Layer normalisation over the channels (module docstring); ``weight``, ``bias`` ``[C]``."""

    weight: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    eps: float = 1e-5
    kind: ClassVar[str] = "LayerNorm"
    role: ClassVar[str] = "operator"

    def __post_init__(self) -> None:
        self.weight, self.bias = _f32(self.weight), _f32(self.bias)
        self.eps = float(self.eps)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 1, f"must be [C], got {self.weight.shape}")
        _need(name, self.kind, "bias", self.bias.shape == self.weight.shape,
              f"must have the weight's shape {self.weight.shape}, got {self.bias.shape}")
        _need(name, self.kind, "eps", self.eps > 0, f"must be > 0, got {self.eps}")
        return _same_shape(name, self, in_shape, self.weight.shape)

    @classmethod
    def example(cls):
        return cls(weight=_f32([1.0, 0.5, 2.0]), bias=_f32([0.0, 0.1, -0.1]))


@dataclass(eq=False)
class TokenShift(Node):
    """``y_t = mix * x_t + (1 - mix) * x_{t-1}``, ``x_{-1} = 0``; ``mix [C]``."""

    mix: np.ndarray = field(default_factory=lambda: np.full(1, 0.5, np.float32))
    kind: ClassVar[str] = "TokenShift"
    role: ClassVar[str] = "operator"
    stateful: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.mix = _f32(self.mix)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "mix", self.mix.ndim == 1, f"must be [C], got {self.mix.shape}")
        return _same_shape(name, self, in_shape, self.mix.shape)

    @classmethod
    def example(cls):
        return cls(mix=_f32([0.2, 0.5, 0.9]))


@dataclass(eq=False)
class WKV(Node):
    """RWKV-4's WKV over tokens (``neuro.models.spikegpt.wkv``: ``w = -exp(time_decay)`` the
    log-decay per step, ``u = time_first`` the current token's log-bonus); inputs: keys, values."""

    time_decay: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    time_first: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    kind: ClassVar[str] = "WKV"
    role: ClassVar[str] = "operator"
    stateful: ClassVar[bool] = True
    ports: ClassVar[tuple[str, ...]] = ("key", "value")

    def __post_init__(self) -> None:
        self.time_decay, self.time_first = _f32(self.time_decay), _f32(self.time_first)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "time_decay", self.time_decay.ndim == 1,
              f"must be [C], got {self.time_decay.shape}")
        _need(name, self.kind, "time_first", self.time_first.shape == self.time_decay.shape,
              f"must have time_decay's shape {self.time_decay.shape}, got {self.time_first.shape}")
        return _same_shape(name, self, in_shape, self.time_decay.shape)

    @classmethod
    def example(cls):
        return cls(time_decay=_f32([-1.0, 0.0, 1.0]), time_first=_f32([0.3, 0.0, -0.3]))


@dataclass(eq=False)
class Gate(Node):
    """``y = sigmoid(g) * v``; inputs: the gate ``g``, then the value ``v`` (same shape)."""

    kind: ClassVar[str] = "Gate"
    role: ClassVar[str] = "operator"
    ports: ClassVar[tuple[str, ...]] = ("gate", "value")

    def output_shape(self, name, in_shape):
        return _same_shape(name, self, in_shape, None)

    @classmethod
    def example(cls):
        return cls()


@dataclass(eq=False)
class SquaredReLU(Node):
    """``y = max(x, 0)^2``."""

    kind: ClassVar[str] = "SquaredReLU"
    role: ClassVar[str] = "operator"

    def output_shape(self, name, in_shape):
        return _same_shape(name, self, in_shape, None)

    @classmethod
    def example(cls):
        return cls()


@dataclass(eq=False)
class Add(Node):
    """``y = x_1 + x_2 + ...``: the sum of its inputs (a residual connection)."""

    kind: ClassVar[str] = "Add"
    role: ClassVar[str] = "operator"

    def output_shape(self, name, in_shape):
        return _same_shape(name, self, in_shape, None)

    @classmethod
    def example(cls):
        return cls()


LM_NODE_TYPES: tuple[type[Node], ...] = (Embedding, LayerNorm, TokenShift, WKV, Gate, SquaredReLU,
                                         Add)

