"""Activity counts from a real run of a graph on data, with NeuroBench's counting rules.

The graph runs on the reference executor (``neuro.graph.simulate(record=True)``), chunk by chunk
over the samples; every count below is exact for that run (integers, summed over steps and
samples). Shapes: inputs ``x[T, B, N]``; ``T`` steps of ``graph.dt`` seconds, ``B`` samples.

Synapse layers (``Affine``, ``Linear``, ``DelayedAffine``, ``Conv1d``, ``Conv2d``; an ``EGRU``
population has two: ``<name>:input`` and ``<name>:recurrent``). The layer's input ``u[t, b, :]``
is the sum of its predecessors' values (the previous step's value on the edges of a cycle):

* effective operations: ``#{(t, b, o, i): u[t - D[o, i], b, i] != 0 and W[o, i] != 0}`` (``D = 0``
  except for ``DelayedAffine``; for a convolution, the output of the convolution of the binarised
  input with the binarised kernel). Biases are excluded.
* AC or MAC: an operation is an accumulate (AC) when the input vector it reads, ``u[s, b, :]``,
  holds only values in {-1, 0, 1} (spikes), otherwise a multiply-accumulate (MAC). NeuroBench
  decides per call, i.e. per step over the whole batch; deciding per step and sample gives the
  same counts on spike inputs and on real-valued inputs and does not depend on the batch size.
* dense operations: the same count with all-ones input and weights (every connection, every step;
  a delayed synapse only once its delay has elapsed; padding excluded), NeuroBench's ``Dense``.
* weight reads: ``event`` = one synaptic word per effective operation (sparse rows, zero weights
  not stored); ``dense`` = every weight once per step and sample.

Populations (neuron nodes ``LIF``, ``CubaLIF``, ``IF``, ``LI``, ``EGRU``, ``Threshold``, and the
``Input``):

* ``updates`` = neurons x T x B (every neuron is updated every step); ``active_updates`` = the
  neuron-steps with non-zero input or a non-zero membrane after the previous step (``EGRU``: all;
  ``Threshold``: non-zero input; ``CubaLIF``: the synaptic current is not inspected separately);
* ``events``: non-zero outputs (spikes; graded events for EGRU); ``LI`` is not spiking (0);
* ``packets``: the events of a population that feeds a synapse layer (one multicast packet per
  event, whatever the fan-out; an ``EGRU`` with recurrent weights feeds its own). An ``Input``
  read by an EGRU as fixed-point reals (``in_frac > 0`` in a quantized graph; non-integer values
  in a float graph, such as an embedding) is sent densely, one packet per entry per step, as the
  SpiNNaker simulator's graded-event path does; so is an EGRU language model's embedding row
  (``D`` packets per token, counted on the token ``Input``);
* activation sparsity: ``1 - events / (neurons x T x B)`` over the spiking populations (not the
  input, not ``LI``), NeuroBench's ``ActivationSparsity``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph import Graph, simulate
from ..graph import nodes as N

# Which nodes are synapse layers, populations, spiking or pass-through is the nodes' declared
# role (``neuro.graph.nodes``); how a layer is counted is dispatched on its exact kind below.


@dataclass
class SynapseCounts:
    """Counts of one synapse layer over the whole run (all steps and samples)."""

    name: str
    kind: str
    sources: list[str]
    n_weights: int
    n_nonzero_weights: int
    effective_acs: int = 0
    effective_macs: int = 0
    dense_ops: int = 0
    input_events: int = 0
    input_entries: int = 0
    weight_reads_event: int = 0
    weight_reads_dense: int = 0

    @property
    def effective_ops(self) -> int:
        return self.effective_acs + self.effective_macs


@dataclass
class PopulationCounts:
    """Counts of one population (neuron node or graph input) over the whole run."""

    name: str
    kind: str
    neurons: int
    spiking: bool
    feeds_synapses: bool
    updates: int = 0
    active_updates: int = 0
    events: int = 0
    packets: int = 0
    entries: int = 0  # neurons x T x B
    is_input: bool = False  # the graph's input (its events are not the network's spikes)

    @property
    def rate(self) -> float:
        """Events per neuron per step."""
        return self.events / self.entries if self.entries else 0.0


#: samples shown in the report's raster (side by side) and readout traces
RASTER_SAMPLES = 3


@dataclass
class Counts:
    """All counts of one run; ``raster`` holds sample 0's events per population (bool ``[T, N]``),
    ``rasters`` the first :data:`RASTER_SAMPLES` samples' (bool ``[T, S, N]``) and ``readouts``
    their non-spiking outputs' traces (float ``[T, S, N]``, e.g. an LI membrane), for the plots."""

    steps: int
    samples: int
    dt: float
    input_kind: str
    synapses: dict[str, SynapseCounts]
    populations: dict[str, PopulationCounts]
    raster: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    rasters: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    readouts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def total(self, key: str) -> int:
        if key in ("effective_acs", "effective_macs", "dense_ops", "weight_reads_event",
                   "weight_reads_dense", "input_events"):
            return int(sum(getattr(s, key) for s in self.synapses.values()))
        if key in ("updates", "active_updates", "packets"):
            return int(sum(getattr(p, key) for p in self.populations.values()))
        if key == "spikes":
            return int(sum(p.events for p in self.populations.values()
                           if p.spiking and not p.is_input))
        raise KeyError(key)

    @property
    def activation_sparsity(self) -> float:
        """``1 - nonzero / total`` over the outputs of the spiking populations (NeuroBench)."""
        pops = [p for p in self.populations.values() if p.spiking and not p.is_input]
        total = sum(p.entries for p in pops)
        return 1.0 - sum(p.events for p in pops) / total if total else 0.0

    def neurobench(self) -> dict[str, Any]:
        """The NeuroBench metrics of this run: SynapticOperations (per sample), ActivationSparsity."""
        b = self.samples
        return {"SynapticOperations": {"Effective_MACs": self.total("effective_macs") / b,
                                       "Effective_ACs": self.total("effective_acs") / b,
                                       "Dense": self.total("dense_ops") / b},
                "ActivationSparsity": self.activation_sparsity}

    def totals(self) -> dict[str, int]:
        keys = ("effective_acs", "effective_macs", "dense_ops", "weight_reads_event",
                "weight_reads_dense", "updates", "active_updates", "spikes", "packets")
        return {k: self.total(k) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        tot = self.totals()
        return {
            "steps": self.steps, "samples": self.samples, "dt_s": self.dt, "input_kind": self.input_kind,
            "totals": tot, "per_sample": {k: v / self.samples for k, v in tot.items()},
            "activation_sparsity": self.activation_sparsity,
            "neurobench": self.neurobench(),
            "synapses": {n: {**asdict(s), "effective_ops": s.effective_ops}
                         for n, s in self.synapses.items()},
            "populations": {n: {**asdict(p), "rate_per_step": p.rate,
                                "rate_hz": p.rate / self.dt} for n, p in self.populations.items()},
        }


# ------------------------------------------------------------------------------ helpers
def _shift(v: Tensor) -> Tensor:
    """``v`` one step later (zeros at the first step): the value an edge of a cycle delivers."""
    return torch.cat([torch.zeros_like(v[:1]), v[:-1]])


def _input_of(graph: Graph, delayed: set[tuple[str, str]], name: str,
              values: dict[str, Tensor]) -> Tensor:
    u = None
    for s in graph.predecessors(name):
        v = _shift(values[s]) if (s, name) in delayed else values[s]
        u = v if u is None else u + v
    assert u is not None
    return u


def _spike_slices(u: Tensor) -> Tensor:
    """``[T, B]`` bool: the input vector at that step and sample holds only -1, 0, 1."""
    flat = u.reshape(u.shape[0], u.shape[1], -1)
    return ((flat == 0) | (flat == 1) | (flat == -1)).all(-1)


def _feeds_synapses(graph: Graph, name: str, synapse_nodes: set[str]) -> bool:
    """Whether the values of ``name`` reach a synapse layer (through pass-through nodes)."""
    seen, todo = set(), list(graph.successors(name))
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in synapse_nodes:
            return True
        if graph.nodes[n].role == "structural":
            todo.extend(graph.successors(n))
    return False


def _as_f64(mask: Tensor) -> Tensor:
    return mask.to(torch.float64)


def _linear_ops(nz_u: Tensor, nz_w: Tensor) -> Tensor:
    """Per ``(t, b)`` number of (non-zero input, non-zero weight) pairs; ``nz_w`` is ``[out, in]``."""
    return _as_f64(nz_u.reshape(nz_u.shape[0], nz_u.shape[1], -1)) @ _as_f64(nz_w).sum(0)


def _delayed_ops(nz_u: Tensor, nz_w: np.ndarray, delay: np.ndarray) -> Tensor:
    """Per source ``(s, b)`` operations that happen within the run: the synapse ``(o, i)`` with
    delay ``d`` acts on ``u[s, b, i]`` at step ``s + d``, which exists only for ``s < T - d``.
    ``reach[s, i]`` = number of non-zero weights of input ``i`` with delay ``<= T - 1 - s``."""
    T, n_in = nz_u.shape[0], nz_w.shape[1]
    d = np.where(nz_w, np.minimum(delay, T), T)  # zero weights and delays >= T never act in the run
    hist = np.zeros((T + 1, n_in), np.float64)
    np.add.at(hist, (d, np.broadcast_to(np.arange(n_in), d.shape)), 1.0)
    upto = np.cumsum(hist[:T], axis=0)  # upto[k, i] = #{o: delay <= k}
    reach = torch.from_numpy(np.ascontiguousarray(upto[::-1]))  # reach[s] = upto[T - 1 - s]
    u = _as_f64(nz_u.reshape(T, nz_u.shape[1], n_in))
    return (u * reach[:, None, :]).sum(-1)


def _conv(node: Any, x: Tensor, w: Tensor) -> Tensor:  # a Conv1d or Conv2d node
    conv = F.conv1d if type(node) is N.Conv1d else F.conv2d
    return conv(x, w, None, node.stride, node.padding, node.dilation, node.groups)


def _conv_ops(node: Any, nz_u: Tensor) -> Tensor:  # a Conv1d or Conv2d node
    T, B = nz_u.shape[:2]
    w = torch.from_numpy((np.asarray(node.weight) != 0).astype(np.float64))
    y = _conv(node, _as_f64(nz_u).reshape(T * B, *nz_u.shape[2:]), w)
    return y.reshape(T, B, -1).sum(-1)


def _dense_ops(node: Any, key: str, steps: int, in_shape: tuple[int, ...]) -> int:  # a synapse or EGRU node
    """All-ones input and weights, per sample, over ``steps`` steps."""
    if type(node) is N.DelayedAffine:
        return int(np.clip(steps - node.delay, 0, None).sum())
    if type(node) in (N.Conv1d, N.Conv2d):
        w = torch.ones(node.weight.shape, dtype=torch.float64)
        per_step = _conv(node, torch.ones(1, *in_shape, dtype=torch.float64), w).sum()
        return int(round(float(per_step))) * steps
    if type(node) is N.EGRU:
        return int(np.asarray(getattr(node, key)).size) * steps
    return int(node.weight.size) * steps


def _synapse_layers(graph: Graph) -> list[tuple[str, str, str, np.ndarray]]:
    """``(layer name, node name, weight field, weight [out, in] or conv kernel)``: every synapse
    node, and the input and recurrent weights of an EGRU population."""
    out = []
    for name, node in graph.nodes.items():
        if node.role == "synapse":
            out.append((name, name, "weight", np.asarray(cast(Any, node).weight)))
        elif type(node) is N.EGRU:
            out.append((f"{name}:input", name, "kernel", np.asarray(node.kernel).T))
            out.append((f"{name}:recurrent", name, "recurrent_kernel",
                        np.asarray(node.recurrent_kernel).T))
    return out


def _count_synapse(s: SynapseCounts, graph: Graph, delayed: set[tuple[str, str]], name: str, key: str,
                   w: np.ndarray, values: dict[str, Tensor]) -> None:
    """Add one chunk's operations of synapse layer ``s`` (node ``name``, weight field ``key``)."""
    node = graph.nodes[name]
    u = _shift(values[name]) if key == "recurrent_kernel" else _input_of(graph, delayed, name, values)
    nz_u, spikes, nz_w = u != 0, _spike_slices(u), w != 0
    if type(node) is N.DelayedAffine:
        ops = _delayed_ops(nz_u, nz_w, np.asarray(node.delay))
    elif type(node) in (N.Conv1d, N.Conv2d):
        ops = _conv_ops(node, nz_u)
    else:
        ops = _linear_ops(nz_u, torch.from_numpy(nz_w))
    ac, mac = int(round(float(ops[spikes].sum()))), int(round(float(ops[~spikes].sum())))
    s.effective_acs += ac
    s.effective_macs += mac
    s.weight_reads_event += ac + mac
    s.input_events += int(nz_u.sum())
    s.input_entries += int(nz_u.numel())


def _dense_input_steps(graph: Graph, name: str, out: Tensor) -> Tensor | None:
    """``[T, B]`` bool: the steps at which Input ``name`` is sent densely (every entry a packet),
    as the SpiNNaker simulator's graded-event path sends an Input read by an EGRU with fraction
    bits (``q["in_frac"] > 0``: every step; in a float graph: steps holding non-integer values);
    None for an Input no EGRU reads (its non-zero values are the packets)."""
    egrus = [graph.nodes[s] for s in graph.successors(name) if type(graph.nodes[s]) is N.EGRU]
    if not egrus:
        return None
    if any(int((cast(Any, e).q or {}).get("in_frac", 0)) > 0 for e in egrus):
        return torch.ones(out.shape[:2], dtype=torch.bool)
    flat = out.reshape(out.shape[0], out.shape[1], -1)
    return (flat != flat.round()).any(-1)


def _count_population(p: PopulationCounts, graph: Graph, delayed: set[tuple[str, str]],
                      values: dict[str, Tensor]) -> None:
    """Add one chunk's updates, events and packets of population ``p``."""
    node, out = graph.nodes[p.name], values[p.name]
    events = int((out != 0).sum())
    if p.spiking:
        p.events += events
    if p.feeds_synapses:
        dense = _dense_input_steps(graph, p.name, out) if node.role == "input" else None
        if dense is not None and bool(dense.any()):  # sent densely: every entry of those steps
            per_step = int(math.prod(out.shape[2:]))
            p.packets += int((out != 0)[~dense].sum()) + int(dense.sum()) * per_step
        else:
            p.packets += events
    if node.role == "input":
        for s in graph.successors(p.name):  # an EGRU LM's embedding row, sent densely every step
            if graph.nodes[s].kind == "Embedding" and any(
                    type(graph.nodes[e]) is N.EGRU for e in graph.successors(s)):
                p.packets += out.shape[0] * out.shape[1] * int(np.shape(cast(Any, graph.nodes[s]).weight)[1])
        return
    n = p.neurons * out.shape[0] * out.shape[1]
    p.updates += n
    if type(node) is N.EGRU:
        p.active_updates += n
        return
    active = _input_of(graph, delayed, p.name, values) != 0
    v = values.get(f"{p.name}.v")
    if v is not None:
        active = active | (_shift(v) != 0)
    p.active_updates += int(active.sum())


# ------------------------------------------------------------------------------ counting
def count(graph: Graph, x: Any, *, batch_size: int = 64, progress: bool | None = None) -> Counts:
    """Run ``graph`` on ``x`` (``[T, N]`` or ``[T, B, N]``, one Input node) and count activity.

    ``batch_size`` samples run at a time (memory: every node's values ``[T, batch, ...]``).
    ``progress``: a tqdm bar on stderr; ``None`` shows it only when the run takes over 2 s.
    Raises ``ValueError`` for a graph with several inputs or data of the wrong shape.
    """
    from tqdm import tqdm

    graph.validate()
    shapes = graph.infer_shapes()
    delayed = graph.schedule().delayed
    inputs = graph.inputs()
    if len(inputs) != 1:
        raise ValueError(f"energy counting takes a graph with one input, this one has {inputs}")
    in_name = inputs[0]
    xt = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    want = shapes[in_name]
    if xt.dim() == len(want) + 1:
        xt = xt.unsqueeze(1)
    if xt.dim() != len(want) + 2 or tuple(xt.shape[2:]) != tuple(want):
        raise ValueError(f"data of shape {tuple(np.shape(x))} does not fit the model input "
                         f"{in_name!r}: expected [T, {', '.join(map(str, want))}] or [T, B, ...]")
    T, B = int(xt.shape[0]), int(xt.shape[1])
    if T == 0 or B == 0:
        raise ValueError(f"data of shape {tuple(np.shape(x))} has no steps or no samples")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")

    layers = _synapse_layers(graph)
    syn = {}
    for lname, nname, key, w in layers:
        node = graph.nodes[nname]
        srcs = [nname] if key == "recurrent_kernel" else graph.predecessors(nname)
        in_shape = shapes[srcs[0]] if key != "recurrent_kernel" else shapes[nname]
        syn[lname] = SynapseCounts(lname, node.kind if key == "weight" else f"EGRU.{key}", srcs,
                                   int(w.size), int(np.count_nonzero(w)))
        syn[lname].dense_ops = _dense_ops(node, key, T, tuple(in_shape)) * B
        syn[lname].weight_reads_dense = int(w.size) * T * B
    synapse_nodes = {nname for _, nname, _, _ in layers}
    pops = {}
    for name, node in graph.nodes.items():
        if node.role in ("input", "neuron"):
            n = int(math.prod(shapes[name]))
            feeds = _feeds_synapses(graph, name, synapse_nodes) or (
                type(node) is N.EGRU and bool(np.any(np.asarray(node.recurrent_kernel) != 0)))
            pops[name] = PopulationCounts(name, node.kind, n, node.spiking, feeds, entries=n * T * B,
                                          is_input=node.role == "input")
    raster: dict[str, np.ndarray] = {}
    rasters: dict[str, np.ndarray] = {}
    readouts: dict[str, np.ndarray] = {}
    S = min(RASTER_SAMPLES, B, batch_size)
    binary_input = True

    bar = tqdm(total=B, unit="sample", desc="energy: counting", delay=0 if progress else 2.0,
               disable=progress is False, leave=False)
    try:
        for start in range(0, B, batch_size):
            xb = xt[:, start : start + batch_size]
            values = simulate(graph, xb, record=True, record_membranes=True)
            binary_input &= bool(_spike_slices(values[in_name]).all())
            for lname, nname, key, w in layers:
                _count_synapse(syn[lname], graph, delayed, nname, key, w, values)
            for name, p in pops.items():
                _count_population(p, graph, delayed, values)
                if p.spiking and start == 0:
                    raster[name] = (values[name][:, 0] != 0).reshape(T, -1).numpy().copy()
                    rasters[name] = (values[name][:, :S] != 0).reshape(T, S, -1).numpy().copy()
            if start == 0:  # (the first chunk holds at least min(RASTER_SAMPLES, B) samples)
                for out in graph.outputs():
                    src = graph.predecessors(out)
                    if src and not graph.nodes[src[0]].spiking and graph.nodes[src[0]].role == "neuron":
                        readouts[src[0]] = values[out][:, :S].reshape(T, S, -1).float().numpy().copy()
            bar.update(int(xb.shape[1]))
            del values
    finally:
        bar.close()
    return Counts(T, B, float(graph.dt), "spikes" if binary_input else "real", syn, pops, raster,
                  rasters, readouts)


__all__ = ["Counts", "PopulationCounts", "SynapseCounts", "count"]
