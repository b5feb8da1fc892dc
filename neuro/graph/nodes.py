"""Graph IR nodes: dataclasses with numpy parameters (backend-neutral, NIR-style).

Shapes exclude batch and time: a node maps per-step tensors ``[B, *in_shape]`` to
``[B, *out_shape]``. Time is discrete (one step = ``Graph.dt`` seconds); every neuron parameter is
per step (decay factors, delays and refractory periods in steps).

Continuous time (NIR) <-> steps: a membrane time constant ``tau`` (seconds) maps to
``beta = exp(-dt / tau)`` (``"exp"``) or ``1 - dt / tau`` (forward Euler); a delay of ``d``
seconds is ``round(d / dt)`` steps.

Stateful nodes (neurons, delays) carry state from one step to the next. In a cycle of the graph,
edges leaving a neuron node deliver the value of the previous step, so a recurrent loop through a
synapse takes one step and a loop through a delay of ``d`` steps takes ``1 + d``.

Roles. Every node class declares what it is, as class attributes, so that lowering, the executors,
quantize and every backend ask the node instead of keeping their own tuples of classes:

``role``
    ``"input"`` (graph input), ``"output"`` (graph output), ``"synapse"`` (weights that mix
    channels: Affine, Linear, DelayedAffine, Conv1d, Conv2d), ``"neuron"`` (a population: LIF,
    CubaLIF, IF, LI, EGRU, Threshold) or ``"structural"`` (reshapes, delays or rescales values
    per channel: Flatten, Delay, ChannelAffine, SumPool2d, AvgPool2d) or ``"operator"`` (computes
    on real values, element-wise or along the tokens: the language-model nodes of ``lm_nodes``,
    Embedding, LayerNorm, TokenShift, WKV, Gate, SquaredReLU, Add). ``ROLES`` lists them.
``spiking``
    its values are events: 0/1 spikes (LIF, CubaLIF, IF, Threshold, an Input of spikes), graded
    events (EGRU). A non-spiking neuron (LI) gives its membrane.
``stateful``, ``breaks_cycles``
    carries state between steps; delivers the previous step's value inside a cycle (below).
``has_integer_form``
    ``neuro.graph.quantize`` and the integer executor implement it.
``owns_weights``
    a population holding its own input weights (EGRU): fed straight by Inputs or populations.
``folds_into_synapse``
    a per-channel rescaling that quantize (and the backends) fold into the synapse before it
    (ChannelAffine); it has no integer form of its own.

Roles say *what* a node is. *How* a node computes is each executor's table keyed by the exact
class (``type(node)``), never by ``isinstance`` of a base class: a new class subclassing ``LIF``
inherits the roles but no behaviour, so every executor and backend refuses it by its ``kind``
until it is taught that kind (instead of running it silently as a plain LIF).
"""
from __future__ import annotations

import abc
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np

Shape = tuple[int, ...]

#: the values of ``Node.role``
ROLES = ("input", "output", "synapse", "neuron", "structural", "operator")

RESETS = ("subtract", "zero")
TIMINGS = ("immediate", "deferred")


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _num(x: Any) -> np.ndarray:
    """Integer arrays stay integer (quantized graphs); everything else becomes float32."""
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.integer) else a.astype(np.float32)


def _t(x: Any) -> Any:
    import torch

    return torch.from_numpy(np.array(x, dtype=np.float32))


def _lif_fields(desc: dict[str, Any], shape: Shape | None) -> dict[str, Any]:
    """The LIF-family node fields of a neuron description."""
    return dict(shape=shape, beta=np.asarray(desc.get("beta", 1.0), np.float32),
                threshold=np.asarray(desc["threshold"], np.float32),
                decay_input=bool(desc.get("decay_input", False)), reset=desc["reset"],
                reset_timing=desc["reset_timing"], refractory=int(desc["refractory"]),
                v_leak=np.asarray(desc.get("v_leak", 0.0), np.float32),
                v_reset=np.asarray(desc.get("v_reset", 0.0), np.float32))


def _lif_module_kw(node: Any) -> dict[str, Any]:
    """The LIF-family neuron module arguments of a node."""
    return dict(beta=_t(node.beta), threshold=_t(node.threshold), decay_input=node.decay_input,
                reset=node.reset, reset_timing=node.reset_timing, refractory=int(node.refractory),
                v_leak=_t(node.v_leak), v_reset=_t(node.v_reset))


class NodeError(ValueError):
    """A node's field is invalid; the message names the node and the field."""


@dataclass(eq=False)
class Node(abc.ABC):
    """Base class. Subclasses declare their fields; arrays are numpy, everything else plain."""

    kind: ClassVar[str] = "Node"
    #: carries state from one step to the next (neurons, delay lines)
    stateful: ClassVar[bool] = False
    #: inside a cycle, edges leaving this node deliver the previous step's value (neurons only:
    #: a delay line adds exactly its own delay, so a loop through it takes 1 + delay steps)
    breaks_cycles: ClassVar[bool] = False
    #: what the node is in a network: one of ``ROLES`` (module docstring)
    role: ClassVar[str] = "structural"
    #: its values are events (spikes), not real values or membranes
    spiking: ClassVar[bool] = False
    #: quantize and the integer executor implement it
    has_integer_form: ClassVar[bool] = False
    #: a per-channel rescaling folded into the synapse before it (quantize, backends)
    folds_into_synapse: ClassVar[bool] = False
    #: a neuron population that holds its own input weights (EGRU's ``kernel``): its inputs come
    #: straight from Inputs or populations, not through synapse nodes
    owns_weights: ClassVar[bool] = False
    #: named inputs taken one per incoming edge, in edge order, instead of their sum (``()``:
    #: the node's input is the sum of its incoming edges); see ``neuro.graph.lm_nodes``
    ports: ClassVar[tuple[str, ...]] = ()

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"type": kind, field: value}``; arrays stay numpy arrays."""
        out: dict[str, Any] = {"type": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Node:
        d = dict(d)
        kind = d.pop("type", cls.kind)
        if kind != cls.kind:
            raise NodeError(f"{cls.kind}.from_dict got a {kind!r} description")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise NodeError(f"{cls.kind}: unknown fields {unknown}")
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            _check_field_type(cls.kind, key, value, hints.get(key, Any))
        return cls(**d)

    def equals(self, other: Node) -> bool:
        """Same type and identical fields (arrays compared exactly, dtype included)."""
        if type(self) is not type(other):
            return False
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                a, b = np.asarray(a), np.asarray(b)
                if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
                    return False
            else:
                na = tuple(a) if isinstance(a, list) else a
                nb = tuple(b) if isinstance(b, list) else b
                if na != nb:
                    return False
        return True

    # -- semantics ----------------------------------------------------------------------------
    @abc.abstractmethod
    def output_shape(self, name: str, in_shape: Shape | None) -> Shape:
        """Check the fields, infer the output shape from the (summed) input shape; errors name
        the node ``name`` and the field."""

    # -- neurons: both directions between the node and the neuro neuron it describes ----------
    @classmethod
    def from_description(cls, desc: dict[str, Any], shape: Shape | None) -> Node:
        """The node for a neuron's ``describe()`` (neuron nodes only; lowering calls it)."""
        raise NodeError(f"{cls.kind} is not a neuron node: no node from a neuron description")

    def neuron(self) -> Any:
        """The ``neuro.neurons`` module with this node's parameters: the node's float
        semantics (neuron nodes only; the float reference executor runs it)."""
        raise NodeError(f"{self.kind} is not a neuron node: it has no neuron module")

    @classmethod
    @abc.abstractmethod
    def example(cls) -> Node:
        """A small valid instance (used by the introspective tests)."""


def _check_field_type(kind: str, key: str, value: Any, hint: Any) -> None:
    """Raise :class:`NodeError` when a field value read from a file does not have the type of the
    field's annotation (:func:`neuro.validate.matches_annotation`: arrays are numeric arrays or
    numbers, shapes lists of integers, ...), so a wrong JSON type is one error naming the node
    kind and field, not a TypeError later."""
    from ..validate import matches_annotation

    if not matches_annotation(value, hint):
        raise NodeError(f"{kind}: field {key!r} has the wrong type ({type(value).__name__}: "
                        f"{str(value)[:40]}), expected {hint}")


def _need(name: str, kind: str, fieldname: str, cond: bool, msg: str) -> None:
    if not cond:
        raise NodeError(f"node {name!r} ({kind}): field {fieldname!r} {msg}")


def _same_shape(name: str, node: Node, in_shape: Shape | None, n: Shape | None) -> Shape:
    if in_shape is None:
        raise NodeError(f"node {name!r} ({node.kind}): input shape unknown (no incoming edge?)")
    if n is not None and tuple(in_shape) != tuple(n):
        raise NodeError(f"node {name!r} ({node.kind}): input shape {tuple(in_shape)} does not match "
                        f"its parameters' shape {tuple(n)}")
    return tuple(in_shape)


# ------------------------------------------------------------------------------ markers
@dataclass(eq=False)
class Input(Node):
    """Graph input: per-step shape ``shape``."""

    shape: Shape = ()
    kind: ClassVar[str] = "Input"
    role: ClassVar[str] = "input"
    spiking: ClassVar[bool] = True
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "shape", len(self.shape) > 0 and min(self.shape) > 0,
              f"must be positive dimensions, got {self.shape}")
        return self.shape

    @classmethod
    def example(cls):
        return cls(shape=(3,))


@dataclass(eq=False)
class Output(Node):
    """Graph output (identity); ``shape`` is filled in by shape inference."""

    shape: Shape | None = None
    kind: ClassVar[str] = "Output"
    role: ClassVar[str] = "output"
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.shape is not None:
            self.shape = tuple(int(s) for s in self.shape)

    def output_shape(self, name, in_shape):
        return _same_shape(name, self, in_shape, self.shape)

    @classmethod
    def example(cls):
        return cls(shape=(3,))


# ------------------------------------------------------------------------------ synapses
@dataclass(eq=False)
class Affine(Node):
    """``y = W x + b`` with ``weight [out, in]``, ``bias [out]``."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    weight_exp: int = 0
    kind: ClassVar[str] = "Affine"
    role: ClassVar[str] = "synapse"
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.weight, self.bias = _num(self.weight), _num(self.bias)
        self.weight_exp = int(self.weight_exp)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 2, f"must be [out, in], got {self.weight.shape}")
        _need(name, self.kind, "bias", self.bias.shape == (self.weight.shape[0],),
              f"must be [{self.weight.shape[0]}], got {self.bias.shape}")
        _same_shape(name, self, in_shape, (self.weight.shape[1],))
        return (self.weight.shape[0],)

    @classmethod
    def example(cls):
        return cls(weight=np.arange(6, dtype=np.float32).reshape(2, 3) / 7, bias=_f32([0.1, -0.2]))


@dataclass(eq=False)
class Linear(Node):
    """``y = W x`` with ``weight [out, in]``."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    weight_exp: int = 0
    kind: ClassVar[str] = "Linear"
    role: ClassVar[str] = "synapse"
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.weight = _num(self.weight)
        self.weight_exp = int(self.weight_exp)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 2, f"must be [out, in], got {self.weight.shape}")
        _same_shape(name, self, in_shape, (self.weight.shape[1],))
        return (self.weight.shape[0],)

    @classmethod
    def example(cls):
        return cls(weight=np.eye(3, dtype=np.float32) * 0.5)


@dataclass(eq=False)
class DelayedAffine(Node):
    """``y[t, o] = sum_i W[o, i] x[t - D[o, i], i] + b[o]``; integer delays ``D >= 0`` in steps."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    delay: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.int64))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    weight_exp: int = 0
    kind: ClassVar[str] = "DelayedAffine"
    role: ClassVar[str] = "synapse"
    has_integer_form: ClassVar[bool] = True
    stateful: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.weight, self.bias = _num(self.weight), _num(self.bias)
        self.weight_exp = int(self.weight_exp)
        self.delay = np.asarray(self.delay, dtype=np.int64)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 2, f"must be [out, in], got {self.weight.shape}")
        _need(name, self.kind, "delay", self.delay.shape == self.weight.shape,
              f"must have the weight's shape {self.weight.shape}, got {self.delay.shape}")
        _need(name, self.kind, "delay", bool((self.delay >= 0).all()), "must be >= 0 steps")
        _need(name, self.kind, "bias", self.bias.shape == (self.weight.shape[0],),
              f"must be [{self.weight.shape[0]}], got {self.bias.shape}")
        _same_shape(name, self, in_shape, (self.weight.shape[1],))
        return (self.weight.shape[0],)

    @classmethod
    def example(cls):
        return cls(weight=_f32([[1.0, -0.5, 0.25], [0.5, 0.5, 0.5]]),
                   delay=np.array([[0, 2, 1], [3, 0, 0]]), bias=_f32([0.0, 0.1]))


@dataclass(eq=False)
class Delay(Node):
    """``y[t, i] = x[t - delay[i], i]`` (integer steps >= 0)."""

    delay: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    kind: ClassVar[str] = "Delay"
    has_integer_form: ClassVar[bool] = True
    stateful: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.delay = np.asarray(self.delay, dtype=np.int64)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "delay", bool((self.delay >= 0).all()), "must be >= 0 steps")
        return _same_shape(name, self, in_shape, self.delay.shape)

    @classmethod
    def example(cls):
        return cls(delay=np.array([0, 1, 3]))


@dataclass(eq=False)
class Conv1d(Node):
    """Cross-correlation over ``[C, L]`` (PyTorch convention), ``weight [Cout, Cin/groups, k]``."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1), np.float32))
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    kind: ClassVar[str] = "Conv1d"
    role: ClassVar[str] = "synapse"

    def __post_init__(self) -> None:
        self.weight = _f32(self.weight)
        self.bias = None if self.bias is None else _f32(self.bias)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 3, f"must be [Cout, Cin/g, k], got {self.weight.shape}")
        if in_shape is None or len(in_shape) != 2:
            raise NodeError(f"node {name!r} (Conv1d): input must be [C, L], got {in_shape}")
        c, length = in_shape
        _need(name, self.kind, "weight", c == self.weight.shape[1] * self.groups,
              f"expects {self.weight.shape[1] * self.groups} input channels, input has {c}")
        k = self.weight.shape[2]
        out = (length + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1
        _need(name, self.kind, "padding", out > 0, f"gives an empty output for input {in_shape}")
        return (self.weight.shape[0], out)

    @classmethod
    def example(cls):
        return cls(weight=np.ones((2, 1, 3), np.float32) / 3, bias=_f32([0.0, 0.5]), padding=1)


@dataclass(eq=False)
class Conv2d(Node):
    """Cross-correlation over ``[C, H, W]``, ``weight [Cout, Cin/groups, kh, kw]``, ``bias
    [Cout]`` (or None), zero padding:
    ``y[o, i, j] = sum_{c, a, b} W[o, c, a, b] x[c, i s0 + a d0 - p0, j s1 + b d1 - p1] + b[o]``.

    Integer form (``neuro.graph.quantize``): ``weight`` holds integer mantissas scaled by
    ``2^weight_exp``, ``bias`` integers in membrane units, like ``Affine``; the integer executor
    computes the same sum exactly. A target that runs explicit synapses expands it with
    ``neuro.graph.populations.projection_synapses``."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1), np.float32))
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_exp: int = 0
    kind: ClassVar[str] = "Conv2d"
    role: ClassVar[str] = "synapse"
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.weight = _num(self.weight)
        self.bias = None if self.bias is None else _num(self.bias)
        self.weight_exp = int(self.weight_exp)
        self.stride, self.padding, self.dilation = (
            cast(tuple[int, int], tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x, x))))
            for x in (self.stride, self.padding, self.dilation))

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "weight", self.weight.ndim == 4, f"must be [Cout, Cin/g, kh, kw], got {self.weight.shape}")
        if in_shape is None or len(in_shape) != 3:
            raise NodeError(f"node {name!r} (Conv2d): input must be [C, H, W], got {in_shape}")
        _need(name, self.kind, "weight", in_shape[0] == self.weight.shape[1] * self.groups,
              f"expects {self.weight.shape[1] * self.groups} input channels, input has {in_shape[0]}")
        out = [(in_shape[1 + i] + 2 * self.padding[i] - self.dilation[i] * (self.weight.shape[2 + i] - 1) - 1)
               // self.stride[i] + 1 for i in range(2)]
        _need(name, self.kind, "padding", min(out) > 0, f"gives an empty output for input {in_shape}")
        return (self.weight.shape[0], *out)

    @classmethod
    def example(cls):
        return cls(weight=np.ones((2, 1, 2, 2), np.float32) / 4, bias=None, stride=(1, 1))


@dataclass(eq=False)
class SumPool2d(Node):
    """Sum over ``kernel_size`` windows of each channel of ``[C, H, W]`` (NIR ``SumPool2d``):
    ``y[c, i, j] = sum_{a, b} x[c, i s0 + a - p0, j s1 + b - p1]`` (zero padding), per step.
    It does additions (counted free by ``neuro.energy``, as NeuroBench does) but has no weights
    and keeps channels apart, so its role is structural: a pass-through between a population and
    the synapse it feeds. Integer form: the same sum of integers (exact); a target that runs
    explicit synapses folds it into them (``neuro.graph.populations.projection_synapses``). Each
    field is two ints (an int is used for both axes)."""

    kernel_size: tuple[int, ...] = (2, 2)
    stride: tuple[int, ...] = (2, 2)
    padding: tuple[int, ...] = (0, 0)
    kind: ClassVar[str] = "SumPool2d"
    has_integer_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.kernel_size, self.stride, self.padding = (
            tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x, x)))
            for x in (self.kernel_size, self.stride, self.padding))

    def output_shape(self, name, in_shape):
        for f in ("kernel_size", "stride"):
            _need(name, self.kind, f, len(getattr(self, f)) == 2 and min(getattr(self, f)) > 0,
                  f"must be two positive ints, got {getattr(self, f)}")
        _need(name, self.kind, "padding", len(self.padding) == 2 and min(self.padding) >= 0
              and all(2 * p <= k for p, k in zip(self.padding, self.kernel_size)),
              f"must be two ints in [0, kernel_size / 2], got {self.padding}")
        if in_shape is None or len(in_shape) != 3:
            raise NodeError(f"node {name!r} ({self.kind}): input must be [C, H, W], got {in_shape}")
        out = [(in_shape[1 + i] + 2 * self.padding[i] - self.kernel_size[i]) // self.stride[i] + 1
               for i in range(2)]
        _need(name, self.kind, "kernel_size", min(out) > 0, f"gives an empty output for input {in_shape}")
        return (in_shape[0], *out)

    @classmethod
    def example(cls):
        return cls(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))


@dataclass(eq=False)
class AvgPool2d(SumPool2d):
    """Mean over ``kernel_size`` windows (NIR ``AvgPool2d``): the :class:`SumPool2d` sum divided
    by ``kh * kw`` (zero padding counted, as PyTorch's ``count_include_pad=True``).

    No integer division of its own (``1 / (kh kw)`` is not a power of two in general):
    ``quantize`` folds the factor into the weights of the synapse it feeds (exact in real
    arithmetic, then quantized with them) and keeps a :class:`SumPool2d`
    (``neuro.graph.populations.fold_avg_pools``)."""

    kind: ClassVar[str] = "AvgPool2d"
    has_integer_form: ClassVar[bool] = False


@dataclass(eq=False)
class Flatten(Node):
    """Flatten feature dimensions ``start_dim..end_dim`` (batch excluded, 0-based)."""

    start_dim: int = 0
    end_dim: int = -1
    kind: ClassVar[str] = "Flatten"
    has_integer_form: ClassVar[bool] = True

    def output_shape(self, name, in_shape):
        if in_shape is None:
            raise NodeError(f"node {name!r} (Flatten): input shape unknown")
        n = len(in_shape)
        s, e = self.start_dim % n, self.end_dim % n
        _need(name, self.kind, "start_dim", s <= e, f"({self.start_dim}) is after end_dim ({self.end_dim})")
        return (*in_shape[:s], math.prod(in_shape[s : e + 1]), *in_shape[e + 1 :])

    @classmethod
    def example(cls):
        return cls()


@dataclass(eq=False)
class ChannelAffine(Node):
    """Per-channel ``y = x * scale + shift`` (an inference-mode BatchNorm); ``quantize`` folds it
    into the synapse before it."""

    scale: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    kind: ClassVar[str] = "ChannelAffine"
    folds_into_synapse: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.scale, self.shift = _f32(self.scale), _f32(self.shift)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "shift", self.shift.shape == self.scale.shape,
              f"must have the scale's shape {self.scale.shape}, got {self.shift.shape}")
        return _same_shape(name, self, in_shape, self.scale.shape)

    @classmethod
    def example(cls):
        return cls(scale=_f32([0.5, 2.0, 1.0]), shift=_f32([0.1, 0.0, -0.2]))


@dataclass(eq=False)
class Threshold(Node):
    """``y = H(x - threshold)`` with ``H(0) = 1``."""

    threshold: np.ndarray = field(default_factory=lambda: np.ones((), np.float32))
    kind: ClassVar[str] = "Threshold"
    role: ClassVar[str] = "neuron"
    spiking: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.threshold = _f32(self.threshold)

    def output_shape(self, name, in_shape):
        return _same_shape(name, self, in_shape, self.threshold.shape or None)

    @classmethod
    def example(cls):
        return cls(threshold=_f32([0.5, 1.0, 1.5]))


# ------------------------------------------------------------------------------ neurons
@dataclass(eq=False)
class LIF(Node):
    """Discrete LIF (equations in ``neuro.neurons.lif``): per-step ``beta``, ``threshold``.

    ``v_leak``/``v_reset`` (default 0): NIR's leak and reset potentials, an offset in the update
    (``h = beta v + x + (1 - beta) v_leak``; reset to ``v_reset``, or subtract
    ``threshold - v_reset``). They have no integer form: ``quantize`` refuses a non-zero one.

    Arrays are scalars (broadcast) or of the population shape ``shape``. In a quantized graph
    ``q`` holds the integer registers of the graph's number format (``neuro.graph.quantize``);
    the float fields are kept as the reference.
    """

    shape: Shape | None = None
    beta: np.ndarray = field(default_factory=lambda: _f32(0.9))
    threshold: np.ndarray = field(default_factory=lambda: _f32(1.0))
    decay_input: bool = False
    reset: str = "subtract"
    reset_timing: str = "immediate"
    refractory: int = 0
    q: dict[str, Any] | None = None
    v_leak: np.ndarray = field(default_factory=lambda: _f32(0.0))
    v_reset: np.ndarray = field(default_factory=lambda: _f32(0.0))
    kind: ClassVar[str] = "LIF"
    role: ClassVar[str] = "neuron"
    spiking: ClassVar[bool] = True
    has_integer_form: ClassVar[bool] = True
    stateful: ClassVar[bool] = True
    breaks_cycles: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.shape = None if self.shape is None else tuple(int(s) for s in self.shape)
        self.beta, self.threshold = _f32(self.beta), _f32(self.threshold)
        self.v_leak, self.v_reset = _f32(self.v_leak), _f32(self.v_reset)

    def _check_params(self, name: str) -> None:
        _need(name, self.kind, "beta", bool(((self.beta >= 0) & (self.beta <= 1)).all()), "must lie in [0, 1]")
        _need(name, self.kind, "threshold", bool((self.threshold > 0).all()), "must be > 0")
        _need(name, self.kind, "reset", self.reset in RESETS, f"must be one of {RESETS}, got {self.reset!r}")
        _need(name, self.kind, "reset_timing", self.reset_timing in TIMINGS,
              f"must be one of {TIMINGS}, got {self.reset_timing!r}")
        _need(name, self.kind, "refractory", int(self.refractory) >= 0, "must be >= 0 steps")
        _need(name, self.kind, "v_reset", bool((self.threshold - self.v_reset > 0).all()),
              "must lie below the threshold")

    def _param_shape(self) -> Shape | None:
        shapes = {a.shape for a in (self.beta, self.threshold, self.v_leak, self.v_reset) if a.ndim}
        return self.shape or (shapes.pop() if len(shapes) == 1 else None)

    def output_shape(self, name, in_shape):
        self._check_params(name)
        for f in ("beta", "threshold", "v_leak", "v_reset"):
            a = getattr(self, f)
            _need(name, self.kind, f, a.ndim == 0 or self._param_shape() == a.shape,
                  f"shape {a.shape} does not match the population shape {self._param_shape()}")
        return _same_shape(name, self, in_shape, self._param_shape())

    @classmethod
    def from_description(cls, desc, shape):
        return cls(**_lif_fields(desc, shape))

    def neuron(self):
        from ..neurons import LIF as LIFModule

        return LIFModule(self._param_shape(), **_lif_module_kw(self))

    @classmethod
    def example(cls):
        return cls(shape=(3,), beta=_f32([0.5, 0.9, 0.99]), threshold=_f32(1.0), reset="zero")


@dataclass(eq=False)
class CubaLIF(LIF):
    """Current-based LIF: ``i = alpha i + x`` feeds the LIF membrane."""

    alpha: np.ndarray = field(default_factory=lambda: _f32(0.8))
    kind: ClassVar[str] = "CubaLIF"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.alpha = _f32(self.alpha)

    def _check_params(self, name):
        super()._check_params(name)
        _need(name, self.kind, "alpha", bool(((self.alpha >= 0) & (self.alpha <= 1)).all()), "must lie in [0, 1]")

    @classmethod
    def from_description(cls, desc, shape):
        return cls(alpha=np.asarray(desc["alpha"], np.float32), **_lif_fields(desc, shape))

    def neuron(self):
        from ..neurons import CubaLIF as CubaLIFModule

        a = _t(self.alpha)
        return CubaLIFModule(self._param_shape() or (tuple(a.shape) or None), alpha=a,
                             **_lif_module_kw(self))

    @classmethod
    def example(cls):
        return cls(shape=(3,), alpha=_f32([0.5, 0.6, 0.7]), beta=_f32(0.9))


@dataclass(eq=False)
class IF(LIF):
    """Integrate-and-fire: an LIF with ``beta = 1``."""

    kind: ClassVar[str] = "IF"

    def _check_params(self, name):
        super()._check_params(name)
        _need(name, self.kind, "beta", bool((self.beta == 1).all()), "must be 1 (no leak)")

    def neuron(self):
        from ..neurons import IF as IFModule

        kw = _lif_module_kw(self)
        kw.pop("beta")
        kw.pop("decay_input")
        return IFModule(self._param_shape(), **kw)

    @classmethod
    def example(cls):
        return cls(shape=(3,), beta=_f32(1.0), threshold=_f32([1.0, 2.0, 3.0]))


@dataclass(eq=False)
class LI(Node):
    """Leaky integrator (non-spiking): output is the membrane ``v = beta v + x``."""

    shape: Shape | None = None
    beta: np.ndarray = field(default_factory=lambda: _f32(0.9))
    decay_input: bool = False
    q: dict[str, Any] | None = None
    kind: ClassVar[str] = "LI"
    role: ClassVar[str] = "neuron"
    has_integer_form: ClassVar[bool] = True
    stateful: ClassVar[bool] = True
    breaks_cycles: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.shape = None if self.shape is None else tuple(int(s) for s in self.shape)
        self.beta = _f32(self.beta)

    def output_shape(self, name, in_shape):
        _need(name, self.kind, "beta", bool(((self.beta >= 0) & (self.beta <= 1)).all()), "must lie in [0, 1]")
        return _same_shape(name, self, in_shape, self.shape or (self.beta.shape or None))

    @classmethod
    def from_description(cls, desc, shape):
        return cls(shape=shape, beta=np.asarray(desc["beta"], np.float32),
                   decay_input=bool(desc["decay_input"]))

    def neuron(self):
        from ..neurons import LI as LIModule

        return LIModule(self.shape or (self.beta.shape or None), beta=_t(self.beta),
                        decay_input=self.decay_input)

    @classmethod
    def example(cls):
        return cls(shape=(3,), beta=_f32([0.1, 0.5, 0.9]))


@dataclass(eq=False)
class EGRU(Node):
    """Event-based GRU population (equations in ``neuro.neurons.egru``; EvNN weight layout).

    It holds its own input weights (``kernel [in, 3H]``), so its inputs come straight from an
    ``Input`` or another EGRU, not through a synapse node. In a quantized graph the weights and
    biases are integers and ``q`` holds the other registers (``neuro.graph.egru_int``); the
    float ``threshold`` is kept as the reference."""

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((1, 3), np.float32))
    recurrent_kernel: np.ndarray = field(default_factory=lambda: np.zeros((1, 3), np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    recurrent_bias: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    threshold: np.ndarray = field(default_factory=lambda: np.full(1, 0.3, np.float32))
    q: dict[str, Any] | None = None
    kind: ClassVar[str] = "EGRU"
    role: ClassVar[str] = "neuron"
    spiking: ClassVar[bool] = True
    stateful: ClassVar[bool] = True
    breaks_cycles: ClassVar[bool] = True
    has_integer_form: ClassVar[bool] = True
    owns_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for f in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            setattr(self, f, _num(getattr(self, f)))
        self.threshold = _f32(self.threshold)

    def output_shape(self, name, in_shape):
        h = self.recurrent_kernel.shape[0]
        _need(name, self.kind, "recurrent_kernel", self.recurrent_kernel.shape == (h, 3 * h),
              f"must be [H, 3H], got {self.recurrent_kernel.shape}")
        _need(name, self.kind, "kernel", self.kernel.ndim == 2 and self.kernel.shape[1] == 3 * h,
              f"must be [in, {3 * h}], got {self.kernel.shape}")
        for f in ("bias", "recurrent_bias"):
            _need(name, self.kind, f, getattr(self, f).shape == (3 * h,), f"must be [{3 * h}]")
        _need(name, self.kind, "threshold", self.threshold.shape == (h,), f"must be [{h}]")
        _same_shape(name, self, in_shape, (self.kernel.shape[0],))
        return (h,)

    @classmethod
    def from_description(cls, desc, shape):
        return cls(kernel=desc["kernel"], recurrent_kernel=desc["recurrent_kernel"],
                   bias=desc["bias"], recurrent_bias=desc["recurrent_bias"],
                   threshold=desc["threshold"])

    def neuron(self):
        import torch

        from ..neurons import EGRU as EGRUModule

        cell = EGRUModule(self.kernel.shape[0], self.recurrent_kernel.shape[0])
        with torch.no_grad():
            for f in ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "threshold"):
                getattr(cell, f).copy_(_t(getattr(self, f)))
        return cell

    @classmethod
    def example(cls):
        rng = np.random.default_rng(0)
        return cls(kernel=rng.normal(size=(3, 6)), recurrent_kernel=rng.normal(size=(2, 6)),
                   bias=np.zeros(6), recurrent_bias=np.zeros(6), threshold=_f32([0.3, 0.4]))
