"""Graph IR -> Lava process graph: which nodes map to which Lava process, with which registers.

Mapping (one Lava process per node; numbers are the ``loihi2`` format's integers)::

    Input                       io.source.RingBuffer         spikes [N, steps], binary
    Linear / Affine             Dense (or Sparse when under 25 % of the weights are non-zero)
    DelayedAffine, or a synapse DelayDense                   per-synapse delays 0..62 steps
      behind Delay nodes
    LIF / IF / CubaLIF          LIF   du, dv (12 bit), vth (17 bit), bias_mant << bias_exp
    LI (non-spiking readout)    LIF   with vth = 2^17: vth << 6 = 2^23 lies above the largest
                                      membrane (the v clip is 2^23 - 1), so it can never spike
    Flatten                     nothing (every Lava port here is flat, C order)
    ChannelAffine               folded into the synapse before it (by quantize)

The structure (which synapse feeds which population from which source, through which Delay and
Flatten nodes) is the shared population view (``neuro.graph.populations.partition``); Loihi adds
its own limits: one input per synapse, no fan-in on pass-through nodes, the node kinds in
``KINDS`` (exact classes), and the neuron registers it holds once per process.

Synapse weights keep the graph's integers (Lava clips and truncates them exactly as the
reference executor does: 8 bits, the LSB dropped for mixed signs), ``weight_exp`` goes to the
process's ``weight_exp``. Affine biases (v units, ``mant << exp`` with a 13-bit mantissa) are
summed per neuron and split into Lava's ``bias_mant``/``bias_exp``.

Time alignment. In the reference executor a feed-forward synapse has no latency and a recurrent
edge leaving a neuron delivers the previous step. In Lava every Dense/Sparse adds one step and a
DelayDense with delay ``d`` adds ``1 + d``. Each neuron population therefore gets a lag ``L``
(Lava step = reference step + L): inputs have lag 0; a strongly connected group of neurons
(a recurrent population) shares one lag, the largest ``L(source) + 1`` over the synapses that
enter it from outside; its internal (recurrent) synapses need no correction, because Lava's one
step equals the reference's previous-step delivery. An entering synapse whose source has a
smaller lag than ``L - 1`` is padded with ``L - 1 - L(source)`` extra steps of delay (it becomes a
DelayDense), so every input reaches a neuron in the reference's step. Runs last
``T + max(L)`` Lava steps and each population's values are read from step ``L`` on.

Capacity (``supports``): one Loihi 2 chip has 128 neuro-cores. Assumed per-core capacity: 8192
neurons and 937,500 synapses, i.e. the chip totals of Intel's Loihi 2 brief (2021: "up to 1M
neurons and ~120M synapses per chip") divided by 128 cores; recalled figures, not checked
against a datasheet. A population
takes ``max(ceil(neurons / 8192), ceil(incoming synapses / 937500))`` cores.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.formats import LOIHI2
from neuro.graph.intsim import lava_weights
from neuro.graph.populations import (
    Projection,
    current_bias_sources,
    fold_channel_affines,
    neuron_problems,
    partition,
)
from neuro.graph.populations import neuron_bias as _summed_bias

MAX_DELAY = 62               # DelayDense: lava-dl netx's limit (6-bit delay field, 63 kept free)
SPARSE_DENSITY = 0.25        # below this share of non-zero weights a synapse maps to Sparse
CHIP_CORES = 128
NEURONS_PER_CORE = 8192      # 1,048,576 / 128 (Loihi 2 brief, recalled)
SYNAPSES_PER_CORE = 937_500  # 120e6 / 128 (Loihi 2 brief, recalled)
LI_VTH = 1 << 17             # non-spiking readout: (vth << 6) = 2^23 > the v clip 2^23 - 1
FLOAT_LI_VTH = 1e30
VTH_MAX = (1 << 17) - 1      # 17-bit unsigned threshold register (spiking neurons)
BIAS_MANT = (-4096, 4095)    # 13-bit signed
BIAS_EXP_MAX = 7             # 3-bit exponent
#: the node kinds Loihi runs (exact classes: a subclass of one of them is refused by its kind)
KINDS: frozenset[type[N.Node]] = frozenset({N.Input, N.Output, N.ChannelAffine, N.Affine, N.Linear, N.DelayedAffine,
                   N.LIF, N.CubaLIF, N.IF, N.LI, N.Flatten, N.Delay})
SUPPORTED_KINDS = sorted(c.kind for c in KINDS)
#: neuron fields that Lava's LIF holds in one register per process
ONE_VALUE = ("threshold", "beta", "alpha")
#: why a kind with no Lava process cannot simply get one (printed with the refusal)


@dataclass
class SynapsePlan:
    name: str                 # graph node name of the synapse
    src: str                  # Input or neuron node it reads (through Flatten/Delay nodes)
    dst: str                  # the neuron it feeds
    recurrent: bool           # the reference delivers the source's previous step (in a cycle)
    extra_delay: np.ndarray   # per input channel, from Delay nodes on the way
    pad: int = 0              # alignment delay added to every synapse (steps)


@dataclass
class Plan:
    """The process graph before numbers are attached (works on float and quantized graphs)."""

    inputs: dict[str, int]
    neurons: dict[str, int]                       # name -> population size (flat)
    synapses: list[SynapsePlan]
    outputs: dict[str, str]                       # Output node -> neuron it shows
    lags: dict[str, int] = field(default_factory=dict)
    cores: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def max_lag(self) -> int:
        return max(self.lags.values(), default=0)


def _size(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


def _fan_in(g: Graph, path: tuple[str, ...], problems: list[str]) -> bool:
    """Whether a pass-through node on ``path`` sums several inputs (no Lava form; listed once)."""
    bad = False
    for cur in path:
        preds = g.predecessors(cur)
        if len(preds) != 1:
            msg = (f"node {cur!r} ({g.nodes[cur].kind}): has {len(preds)} inputs; on Loihi a "
                   "Flatten/Delay node must pass on exactly one population")
            if msg not in problems:
                problems.append(msg)
            bad = True
    return bad


#: why a node kind has no Lava 0.10 process here (Loihi 2 runs integer LIF compartments with
#: dense/sparse 8-bit synapses; everything else would need a custom process and microcode)
WHY_NOT: dict[str, str] = {
    "EGRU": "its gates multiply state by state (z * c, r * (R y), sigmoid/tanh of real sums) and "
            "its events carry a graded payload y; Lava 0.10's LIF/Dense processes only add "
            "weighted binary spikes into a leaky membrane, and no custom EGRU process model "
            "is implemented",
    "Embedding": "a table lookup of real values per token; Lava's processes take spikes, not a "
                 "token index",
    "Conv2d": "neuro does not lower it yet: Lava 0.10's Conv process (lava.proc.conv) is not "
              "wired into the mapping and no expansion into Sparse weights is written (the "
              "fpga and spinnaker targets run convolutions bit-exact)",
    "SumPool2d": "Lava 0.10 has no pooling process, and folding the pool into the next synapse "
                 "is not written for Loihi yet (the fpga and spinnaker targets run it)",
    "AvgPool2d": "quantize folds its mean into the next synapse and keeps a SumPool2d, which "
                 "has no Lava process (the fpga and spinnaker targets run it)",
    "LayerNorm": "a mean and variance over the whole population each step (a division and a "
                 "square root); neurons on Loihi see only their own synaptic input",
    "TokenShift": "mixes a real value with its previous step's value per channel; no Lava "
                  "process keeps and mixes real-valued inputs",
    "WKV": "an exponential-weighted running ratio of two sums (exp and division per step); no "
           "Lava process computes it",
    "Gate": "multiplies two real-valued signals; Lava's LIF only adds synaptic input",
    "SquaredReLU": "a real-valued square; Lava's LIF outputs 1-bit spikes",
    "Add": "adds real-valued streams outside any neuron; Lava's processes sum spikes into a "
           "neuron's current only",
}


def plan(g: Graph) -> Plan:
    """Structure, alignment lags and core count of ``g`` (float or quantized); problems listed."""
    problems: list[str] = []
    unsupported = [n for n, node in g.nodes.items() if type(node) not in KINDS]
    for n in unsupported:
        kind = g.nodes[n].kind
        why = f": {WHY_NOT[kind]}" if kind in WHY_NOT else ""
        problems.append(f"node {n!r} ({kind}): no Lava process implements {kind}{why} (Loihi "
                        f"supports {', '.join(SUPPORTED_KINDS)})")
    try:
        sched = g.schedule()
        shapes = g.infer_shapes()
        view = partition(g)
    except ValueError as exc:
        return Plan({}, {}, [], {}, problems=[*problems, str(exc)])
    skip = set(unsupported)
    inputs = {n: _size(shapes[n]) for n in view.inputs}
    neurons = {n: _size(shapes[n]) for n in view.neurons if n not in skip}
    for n in neurons:
        problems.extend(neuron_problems(n, g.nodes[n], LOIHI2, ONE_VALUE, graph=g))
    problems.extend(view.messages(skip))
    synapses: list[SynapsePlan] = []
    by_synapse: dict[str, list[Projection]] = {}
    for pr in view.projections:
        by_synapse.setdefault(pr.synapse, []).append(pr)
    target = {s: n for n, syns in view.neurons.items() for s in syns}
    for s in g.nodes:
        if s not in target or s in skip or target[s] in skip:
            continue
        preds = g.predecessors(s)
        if len(preds) != 1:
            problems.append(f"node {s!r} ({g.nodes[s].kind}): sums {len(preds)} inputs; give each "
                            "its own synapse for Loihi")
            continue
        projs = by_synapse.get(s, [])  # none: its input is out of place (listed by the view)
        fan_in = [_fan_in(g, pr.path, problems) for pr in projs]
        if len(projs) != 1 or any(fan_in) or skip.intersection((projs[0].source, *projs[0].path)):
            continue
        pr = projs[0]
        synapses.append(SynapsePlan(s, pr.source, pr.target, pr.recurrent, pr.delay))
    outputs = {}
    for o, origin in view.outputs.items():
        chain = view.output_chains[o]
        if skip.intersection((origin, *chain.path)) or _fan_in(g, chain.path, problems):
            continue
        if origin not in neurons:
            problems.append(f"Output {o!r} shows {origin!r}: only neuron populations are recorded")
        elif chain.delay.any():
            problems.append(f"Output {o!r}: a Delay node before an output has no Lava form")
        else:
            outputs[o] = origin
    p = Plan(inputs, neurons, synapses, outputs, problems=problems)
    _align(p, g, sched)
    _capacity(p, g)
    return p


def _align(p: Plan, g: Graph, sched: Any) -> None:
    """Lags per population and alignment pads per synapse (see the module docstring)."""
    lag = {n: 0 for n in p.inputs}
    incoming: dict[str, list[SynapsePlan]] = {}
    for sp in p.synapses:
        incoming.setdefault(sp.dst, []).append(sp)
    for group in sched.groups:
        members = [n for n in group if n in p.neurons]
        if not members:
            continue
        entering = [sp for n in members for sp in incoming.get(n, []) if not sp.recurrent]
        L = max((lag.get(sp.src, 0) + 1 for sp in entering), default=0)
        for n in members:
            lag[n] = L
        for sp in entering:
            sp.pad = L - 1 - lag.get(sp.src, 0)
            assert sp.pad >= 0, (sp.name, sp.pad)
    p.lags = {n: lag.get(n, 0) for n in p.neurons}
    for sp in p.synapses:
        node = g.nodes[sp.name]
        base = int(node.delay.max(initial=0)) if type(node) is N.DelayedAffine else 0
        total = base + int(sp.extra_delay.max(initial=0)) + sp.pad
        if total > MAX_DELAY:
            why = f" (incl. {sp.pad} steps to align it with the other inputs of {sp.dst!r})" if sp.pad else ""
            p.problems.append(f"node {sp.name!r} ({node.kind}): delays up to {total} steps{why}; "
                              f"Loihi 2's DelayDense allows {MAX_DELAY}")


def _capacity(p: Plan, g: Graph) -> None:
    syn_in: dict[str, int] = {n: 0 for n in p.neurons}
    for sp in p.synapses:
        syn_in[sp.dst] += int(np.count_nonzero(cast(Any, g.nodes[sp.name]).weight))
    p.cores = {n: max(1, math.ceil(size / NEURONS_PER_CORE), math.ceil(syn_in[n] / SYNAPSES_PER_CORE))
               for n, size in p.neurons.items()}
    total = sum(p.cores.values())
    if total > CHIP_CORES:
        big = sorted(p.cores, key=p.cores.__getitem__, reverse=True)[:3]
        p.problems.append(
            f"the network needs {total} neuro-cores, one Loihi 2 chip has {CHIP_CORES} (assuming "
            f"{NEURONS_PER_CORE} neurons and {SYNAPSES_PER_CORE} synapses per core); largest: "
            + ", ".join(f"{n!r} {p.neurons[n]} neurons -> {p.cores[n]} cores" for n in big))


# ------------------------------------------------------------------------------ numbers
def split_bias(b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``b = bias_mant << bias_exp`` with a 13-bit mantissa and exponent 0..7 (the smallest
    exponent that fits); None when some value has no such form."""
    b = np.asarray(b, np.int64).reshape(-1)
    lo, hi = BIAS_MANT
    mant, exp = b.copy(), np.zeros_like(b)
    left = (b < lo) | (b > hi)
    for e in range(1, BIAS_EXP_MAX + 1):
        ok = left & (b % (1 << e) == 0) & ((b >> e) >= lo) & ((b >> e) <= hi)
        mant[ok], exp[ok] = b[ok] >> e, e
        left &= ~ok
    return None if left.any() else (mant, exp)


def _scalar(v: Any) -> int | float:
    a = np.unique(np.asarray(v))
    return a[0].item()


def value_problems(q: Graph, p: Plan) -> list[str]:
    """Registers of a ``loihi2``-quantized graph that Lava cannot hold."""
    node: Any  # synapses, then neurons: fields read by name
    out = []
    for sp in p.synapses:
        node = q.nodes[sp.name]
        w = node.weight
        if not np.issubdtype(w.dtype, np.integer):
            out.append(f"node {sp.name!r}: weights are not integers (quantize to loihi2 first)")
            continue
        if w.size and (w.min() < -256 or w.max() > 255):
            out.append(f"node {sp.name!r}: weights in [{w.min()}, {w.max()}] do not fit the 8-bit "
                       "Loihi weight register ([-256, 255] with mixed signs)")
        if not -8 <= node.weight_exp <= 7:
            out.append(f"node {sp.name!r}: weight_exp {node.weight_exp} is outside Lava's [-8, 7]")
    for n in p.neurons:
        node = q.nodes[n]
        qd = node.q or {}
        for reg in ("du", "dv"):
            if reg in qd and np.unique(np.asarray(qd[reg])).size > 1:
                out.append(f"node {n!r}: per-neuron {reg}: Lava's LIF has one {reg} per process")
            elif reg in qd and not 0 <= _scalar(qd[reg]) <= 4095:
                out.append(f"node {n!r}: {reg}={_scalar(qd[reg])} does not fit 12 bits")
        if node.spiking and "vth" in qd and not 0 <= _scalar(qd["vth"]) <= VTH_MAX:
            out.append(f"node {n!r}: vth={_scalar(qd['vth'])} does not fit the 17-bit register")
        bias = neuron_bias(q, n)
        if bias is not None and split_bias(bias) is None:
            out.append(f"node {n!r}: summed synapse bias (max |b| = {int(np.abs(bias).max())}) "
                       "is not bias_mant << bias_exp with a 13-bit mantissa and exponent <= 7")
    return out


def neuron_bias(g: Graph, n: str) -> np.ndarray | None:
    """The summed bias of the synapses feeding ``n`` (v units), or None without biases."""
    return _summed_bias(g, n)


def _float_graph(graph: Graph) -> Graph:
    """The float graph with its ChannelAffine nodes folded into the synapses and its CubaLIF
    biases turned into spike sources (as quantize does: the same nodes as the integer graph)."""
    g = copy.deepcopy(graph)
    fold_channel_affines(g)
    current_bias_sources(g)
    return g


def lava_network(q: Graph, p: Plan, float_graph: Graph | None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(network.json, arrays)`` for the worker: fixed-point registers from the quantized ``q``,
    floating-point parameters from ``float_graph`` (or ``q`` dequantized when None)."""
    fg = _float_graph(float_graph) if float_graph is not None else None
    node: Any  # neurons, then synapses: fields read by name
    src: Any
    arrays: dict[str, np.ndarray] = {}
    neurons = []
    for i, (n, size) in enumerate(p.neurons.items()):
        node, qd = q.nodes[n], cast(Any, q.nodes[n]).q
        spiking = node.spiking
        scale = float(qd["scale"])
        fixed = {"du": int(_scalar(qd["du"])), "dv": int(_scalar(qd["dv"])),
                 "vth": int(_scalar(qd["vth"])) if spiking else LI_VTH}
        ib = neuron_bias(q, n)
        ib = np.zeros(size, np.int64) if ib is None else np.broadcast_to(ib, (size,))
        parts = split_bias(ib)
        if parts is None:  # value_problems reports it; unpacking None raised this TypeError
            raise TypeError(f"node {n!r}: the summed bias has no bias_mant << bias_exp form")
        arrays[f"neuron/{n}/bias_mant"], arrays[f"neuron/{n}/bias_exp"] = parts
        src = fg.nodes[n] if fg is not None else node  # float fields (quantize keeps them)
        alpha = float(_scalar(src.alpha)) if type(src) is N.CubaLIF else 0.0
        flt = {"du": 1.0 - alpha, "dv": 1.0 - float(_scalar(src.beta)),
               "vth": float(_scalar(src.threshold)) if spiking else FLOAT_LI_VTH}
        fb = neuron_bias(fg, n) if fg is not None else ib / scale
        arrays[f"float/neuron/{n}/bias"] = np.broadcast_to(
            np.zeros(size) if fb is None else np.asarray(fb, np.float64), (size,)).copy()
        neurons.append({"name": n, "id": f"n{i}", "kind": node.kind, "size": size,
                        "spiking": spiking, "lag": p.lags[n], "cores": p.cores.get(n, 1),
                        "fixed": fixed, "float": flt})
    synapses = []
    for i, sp in enumerate(p.synapses):
        node = q.nodes[sp.name]
        w = np.asarray(node.weight, np.int64)
        delay = np.zeros(w.shape, np.int64)
        if type(node) is N.DelayedAffine:
            delay += node.delay
        delay += sp.extra_delay[None, :] + sp.pad
        nnz = int(np.count_nonzero(w))
        if delay.any():
            kind = "delay_dense"
            arrays[f"syn/{sp.name}/delay"] = delay
        else:
            kind = "sparse" if w.size and nnz / w.size < SPARSE_DENSITY else "dense"
        arrays[f"syn/{sp.name}/weight"] = w
        if fg is not None:
            arrays[f"float/syn/{sp.name}/weight"] = np.asarray(cast(Any, fg.nodes[sp.name]).weight, np.float64)
        else:  # dequantized: the register value the Dense applies, in float membrane units
            s = float(cast(Any, q.nodes[sp.dst]).q["scale"])
            arrays[f"float/syn/{sp.name}/weight"] = (lava_weights(w) * 2.0 ** node.weight_exp
                                                     * 64.0 / s)
        synapses.append({"name": sp.name, "id": f"s{i}", "kind": kind, "node_kind": node.kind,
                         "src": sp.src, "src_is_input": sp.src in p.inputs, "dst": sp.dst,
                         "weight_exp": int(node.weight_exp), "pad": sp.pad,
                         "max_delay": int(delay.max(initial=0)), "nnz": nnz})
    net = {"format": "neuro-lava-network", "version": 1,
           "inputs": [{"name": n, "size": s} for n, s in p.inputs.items()],
           "neurons": neurons, "synapses": synapses,
           "outputs": p.outputs, "max_lag": p.max_lag, "cores": sum(p.cores.values()),
           "float_source": "float graph" if fg is not None else "dequantized integer graph"}
    return net, arrays


__all__ = ["CHIP_CORES", "KINDS", "LI_VTH", "MAX_DELAY", "NEURONS_PER_CORE", "Plan", "SPARSE_DENSITY",
           "SYNAPSES_PER_CORE", "SynapsePlan", "lava_network", "neuron_bias", "plan",
           "split_bias", "value_problems"]
