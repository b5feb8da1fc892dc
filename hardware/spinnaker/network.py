"""The network a SpiNNaker machine runs: populations and sparse projections (PyNN vocabulary).

A :class:`Network` is what the mapper places: spike-source populations (the graph's ``Input``
nodes, like PyNN's ``SpikeSourceArray``), neuron populations (``LIF``, ``CubaLIF``, ``IF``, ``LI``
nodes) and projections (every ``Linear``/``Affine``/``DelayedAffine``/``Conv2d`` node, per source
chain) held as sparse lists of synapses ``(pre, post, weight, delay)``: a convolution is a sparse
projection, expanded to one synapse per kernel entry and output pixel, with the ``SumPool2d``
windows on its path folded in (``neuro.graph.populations.projection_synapses``). :func:`from_graph` builds it from a
quantized graph through the shared population view (``neuro.graph.populations``: one projection
per synapse and source path); large networks (the W3 benchmark's 10,000-neuron reservoir, whose dense weight
matrix would take 400 MB) are built directly from sparse arrays with the same classes.

Latency alignment. In the reference executor synapses have no latency: a feed-forward population
sees its input in the same step, a recurrent edge leaving a neuron delivers the previous step's
value, and delays (``Delay`` nodes, ``DelayedAffine``) add ``d >= 0`` steps. On SpiNNaker every
synapse takes at least one tick. Each population ``P`` therefore runs with a latency offset
``k_P`` (ticks): its reference step ``s`` happens on machine tick ``s + k_P``, i.e. its core
starts updating at tick ``k_P`` and runs ``T`` ticks. A synapse with reference delay ``d`` from
``A`` to ``B`` gets the machine delay ``m = d + k_B - k_A``, so a spike of ``A`` at reference step
``s`` (tick ``s + k_A``) is added to ``B`` on tick ``s + d + k_B``, its reference step ``s + d``.
The offsets are the smallest non-negative integers with ``m >= 1`` for every synapse (a
longest-path problem over the projections; sources have ``k = 0``). Every cycle of the graph goes
through neuron edges that the reference delays by one step, so it always has a solution. The run
lasts ``T + max(k)`` ticks; outputs are read back at each population's own offset, so they align
with the reference step for step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from neuro.graph import nodes as N
from neuro.graph.formats import NumberFormat, get_format
from neuro.graph.populations import neuron_bias, neuron_problems, partition, projection_synapses
from neuro.hardware.base import UnsupportedGraph

TARGET = "spinnaker"
#: neuron population kinds the simulator implements (exact node classes; a subclass is refused)
NEURON_KINDS: dict[str, type[N.Node]] = {c.kind: c for c in (N.LIF, N.CubaLIF, N.IF, N.LI)}
#: node kinds of a quantized graph the simulator runs (exact classes)
KINDS: frozenset[type[N.Node]] = frozenset({N.Input, N.Output, N.Delay, N.Flatten, N.Linear, N.Affine, N.DelayedAffine,
                   N.Conv2d, N.SumPool2d, *NEURON_KINDS.values()})
#: a float graph may also hold ChannelAffine nodes (quantize folds them into the synapse before)
FLOAT_KINDS: frozenset[type[N.Node]] = KINDS | {N.ChannelAffine, N.AvgPool2d}  # quantize folds both


def _i64(x: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 0:
        a = np.full(n, a)
    a = a.reshape(-1)
    if a.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {np.shape(x)}")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(a == np.round(a)):
            raise ValueError(f"{what}: values must be integers")
    return a.astype(np.int64)


@dataclass
class Population:
    """A population of ``size`` atoms.

    ``kind``: ``"source"`` (spike source: its spikes come from the run's input) or a neuron kind
    (``LIF``, ``CubaLIF``, ``IF``, ``LI``). Neuron parameters are integer arrays ``[size]`` in the
    number format (s16.15 for ``spinnaker``): ``bias`` (added to ``v`` every tick, state units),
    ``beta_m`` / ``alpha_m`` (decays as 15-bit fractions of ``2^decay_bits``), ``vth``
    (threshold, state units; spiking kinds only). ``shape`` is the graph node's per-step shape
    (``size = prod(shape)``, values flattened in C order).
    """

    name: str
    size: int
    kind: str = "LIF"
    shape: tuple[int, ...] | None = None
    reset: str = "zero"
    bias: Any = 0
    beta_m: Any = 0
    alpha_m: Any = 0
    vth: Any = 0

    def __post_init__(self) -> None:
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(f"population {self.name!r}: size must be a positive integer, got {self.size!r}")
        self.size = int(self.size)
        if self.kind not in ("source", *NEURON_KINDS):
            raise ValueError(f"population {self.name!r}: kind must be 'source' or one of "
                             f"{list(NEURON_KINDS)}, got {self.kind!r}")
        self.shape = (self.size,) if self.shape is None else tuple(int(s) for s in self.shape)
        if int(np.prod(self.shape)) != self.size:
            raise ValueError(f"population {self.name!r}: shape {self.shape} does not hold {self.size} atoms")
        if self.reset not in ("zero", "subtract"):
            raise ValueError(f"population {self.name!r}: reset must be 'zero' or 'subtract', got {self.reset!r}")
        for f in ("bias", "beta_m", "alpha_m", "vth"):
            setattr(self, f, _i64(getattr(self, f), self.size, f"population {self.name!r}: {f}"))

    @property
    def spiking(self) -> bool:
        """Spike sources and spiking neuron kinds send packets; LI records its membrane."""
        return self.is_source or NEURON_KINDS[self.kind].spiking

    @property
    def is_source(self) -> bool:
        return self.kind == "source"


@dataclass
class Projection:
    """Synapses ``pre[k] -> post[k]`` with integer ``weight[k]`` (signed mantissa, scaled by
    ``2^weight_exp``) and reference delay ``delay[k] >= 0`` (steps; the machine delay adds the
    latency alignment, see the module docstring). ``name`` is the graph's synapse node."""

    name: str
    pre: str
    post: str
    pre_idx: Any
    post_idx: Any
    weight: Any
    delay: Any = 0
    weight_exp: int = 0

    def __post_init__(self) -> None:
        self.pre_idx = np.asarray(self.pre_idx, np.int64).reshape(-1)
        n = self.pre_idx.size
        self.post_idx = _i64(self.post_idx, n, f"projection {self.name!r}: post_idx")
        self.weight = _i64(self.weight, n, f"projection {self.name!r}: weight")
        self.delay = _i64(self.delay, n, f"projection {self.name!r}: delay")
        self.weight_exp = int(self.weight_exp)

    @property
    def size(self) -> int:
        return int(self.pre_idx.size)


@dataclass
class Network:
    """Populations (in placement order), projections, the number format and which population
    each graph ``Output`` node reads (``outputs``: output name -> population name)."""

    populations: dict[str, Population]
    projections: list[Projection]
    fmt: NumberFormat = field(default_factory=lambda: get_format(TARGET))
    outputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.populations, (list, tuple)):
            self.populations = {p.name: p for p in self.populations}
        self.validate()

    @property
    def sources(self) -> list[Population]:
        return [p for p in self.populations.values() if p.is_source]

    @property
    def neurons(self) -> list[Population]:
        return [p for p in self.populations.values() if not p.is_source]

    def validate(self) -> Network:
        """Check every projection against its populations (``ValueError`` naming it)."""
        fmt = self.fmt
        if fmt.family != "fixed" or fmt.decay != "mantissa" or fmt.rounding != "floor" \
                or fmt.overflow != "saturate":
            raise ValueError(f"number format {fmt.name!r}: the SpiNNaker simulator implements "
                             "s16.15-style arithmetic (mantissa decay, floor rounding, saturation)")
        for p in self.projections:
            where = f"projection {p.name!r} ({p.pre} -> {p.post})"
            for end in (p.pre, p.post):
                if end not in self.populations:
                    raise ValueError(f"{where}: no population {end!r}")
            pre, post = self.populations[p.pre], self.populations[p.post]
            if post.is_source:
                raise ValueError(f"{where}: population {post.name!r} is a spike source and takes no synapses")
            if not pre.spiking:
                raise ValueError(f"{where}: population {pre.name!r} ({pre.kind}) is non-spiking; "
                                 "its membrane cannot be sent as spike packets")
            if p.size:
                if p.pre_idx.min() < 0 or p.pre_idx.max() >= pre.size:
                    raise ValueError(f"{where}: pre index out of range [0, {pre.size})")
                if p.post_idx.min() < 0 or p.post_idx.max() >= post.size:
                    raise ValueError(f"{where}: post index out of range [0, {post.size})")
                if p.delay.min() < 0:
                    raise ValueError(f"{where}: delays must be >= 0 steps")
                if p.weight.min() < fmt.weight_min or p.weight.max() > fmt.weight_max:
                    raise ValueError(f"{where}: weights must be {fmt.weight_bits}-bit integers "
                                     f"[{fmt.weight_min}, {fmt.weight_max}]")
            lo, hi = fmt.weight_exp_range
            if not lo <= p.weight_exp <= hi:
                raise ValueError(f"{where}: weight_exp {p.weight_exp} is outside [{lo}, {hi}]")
        for out, pop in self.outputs.items():
            if pop not in self.populations:
                raise ValueError(f"output {out!r}: no population {pop!r}")
        return self

    def offsets(self) -> dict[str, int]:
        """Latency offset of every population in ticks (module docstring)."""
        k = {name: 0 for name in self.populations}
        edges = [(p.pre, p.post, 1 - int(p.delay.min())) for p in self.projections if p.size]
        for _ in range(len(self.populations) + 1):
            changed = False
            for a, b, c in edges:
                if k[a] + c > k[b]:
                    k[b] = k[a] + c
                    changed = True
            if not changed:
                return k
        raise ValueError("latency alignment has no solution: a cycle of projections is shorter "
                         "than one tick per synapse")  # cannot happen for graph-built networks


# ------------------------------------------------------------------------------ from a graph
def from_graph(graph: Any, *, integer: bool = True) -> Network:
    """The :class:`Network` of a quantized ``graph`` (``integer=False``: a float graph's topology
    only, with placeholder weights and parameters, for resource checks), built from the shared
    population view (``neuro.graph.populations``).

    Raises :class:`UnsupportedGraph` listing every node the simulator cannot run.
    """
    problems: list[str] = []
    try:
        shapes = graph.infer_shapes()
        graph.schedule()
    except ValueError as exc:
        raise UnsupportedGraph(TARGET, [str(exc)]) from None
    fmt = None
    if integer:
        if "format" not in graph.metadata:
            raise UnsupportedGraph(TARGET, ["the graph is not quantized (run quantize(graph, "
                                            "'spinnaker') or pass a float graph to compile)"])
        fmt = NumberFormat.from_dict(graph.metadata["format"])
        if fmt.name != TARGET:
            problems.append(f"number format {fmt.name!r}: the SpiNNaker simulator runs 'spinnaker' only")
    allowed = KINDS if integer else FLOAT_KINDS
    for name, node in graph.nodes.items():
        if type(node) not in allowed:
            problems.append(f"node {name!r} ({node.kind}): the SpiNNaker simulator runs "
                            f"{', '.join(sorted(c.kind for c in allowed))} nodes only")
        elif node.role == "neuron":
            problems.extend(neuron_problems(name, node, get_format(TARGET), graph=graph))
    if problems:
        raise UnsupportedGraph(TARGET, problems)
    view = partition(graph)
    problems.extend(view.messages())

    def size(name: str) -> int:
        return int(np.prod(shapes[name]))

    pops: dict[str, Population] = {n: Population(n, size(n), "source", shapes[n]) for n in view.inputs}
    for name in view.neurons:
        pops[name] = _neuron_population(graph, name, graph.nodes[name], shapes[name], integer, problems)

    by_synapse: dict[str, list[Any]] = {}
    for pr in view.projections:
        by_synapse.setdefault(pr.synapse, []).append(pr)
    projections: list[Projection] = []
    for name, chains in by_synapse.items():
        node = graph.nodes[name]
        w = np.asarray(node.weight)
        if integer and not np.issubdtype(w.dtype, np.integer):
            problems.append(f"node {name!r} ({node.kind}): weights are not integer")
            continue
        for c, pr in enumerate(chains):
            src = pr.source
            if not pops[src].spiking:
                problems.append(f"node {src!r} ({graph.nodes[src].kind}) is non-spiking and feeds "
                                f"synapse {name!r}: its membrane cannot be sent as spike packets")
                continue
            # explicit rows: a Conv2d expanded, SumPool2d windows on the path folded in
            o, i, wv, d = projection_synapses(graph, pr, shapes)
            projections.append(Projection(
                name=name if len(chains) == 1 else f"{name}#{c}", pre=src, post=pr.target,
                pre_idx=i, post_idx=o,
                weight=wv.astype(np.int64) if integer else np.ones(o.size, np.int64),
                delay=d + int(pr.recurrent), weight_exp=node.weight_exp if integer else 0))

    outputs: dict[str, str] = {}
    for name, src in view.outputs.items():
        if any(graph.nodes[n].stateful for n in view.output_chains[name].path):
            problems.append(f"output {name!r}: must read one population through Flatten nodes only "
                            f"(it reads {src!r} through a Delay node)")
        else:
            outputs[name] = src
    if problems:
        raise UnsupportedGraph(TARGET, problems)
    try:
        return Network(pops, projections, fmt or get_format(TARGET), outputs)
    except ValueError as exc:
        raise UnsupportedGraph(TARGET, [str(exc)]) from None


def _neuron_population(graph: Any, name: str, node: N.Node, shape: tuple[int, ...],
                       integer: bool, problems: list[str]) -> Population:
    n = int(np.prod(shape))
    kind = node.kind
    reset = getattr(node, "reset", "zero")
    if not integer:
        return Population(name, n, kind, shape, reset if reset in ("zero", "subtract") else "zero")
    q = cast(Any, node).q
    if q is None:
        problems.append(f"node {name!r} ({kind}): no integer parameters (run quantize first)")
        return Population(name, n, kind, shape)

    def full(v: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, np.int64), shape).reshape(-1)

    b = neuron_bias(graph, name, np.int64)
    bias = np.zeros(n, np.int64) if b is None else np.zeros(n, np.int64) + full(b)
    return Population(name, n, kind, shape, reset, bias=bias,
                      beta_m=full(q.get("beta_m", 0)),
                      alpha_m=full(q.get("alpha_m", 0)) if type(node) is N.CubaLIF else 0,
                      vth=full(q.get("vth", 0)) if node.spiking else 0)


__all__ = ["Network", "Population", "Projection", "from_graph"]
