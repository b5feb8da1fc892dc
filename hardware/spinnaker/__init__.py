"""SpiNNaker-style event-driven many-core simulator (target ``spinnaker``).

The backend protocol of :mod:`neuro.hardware.base`::

    supports(graph, fmt=None, *, machine=None) -> list[str]
    compile(graph, out, *, fmt=None, calibration_inputs=None, machine=None) -> Path
    run(artifact, spikes, *, engine="auto", link_capacity_per_tick=<the artifact's>) -> Result

A graph (quantized to the ``spinnaker`` number format: s16.15 saturating state, floor rounding,
16-bit weights with a per-population shift) becomes a :class:`~.network.Network` of spike sources,
neuron populations and sparse projections, which :func:`~.mapper.map_network` maps onto a
:class:`~.machine.Machine`: chips on a 2-D triangular torus, cores with a neurons-per-core limit
and a synaptic-row memory budget, placement, AER keys (base key | neuron index), router tables of
key/mask entries (1024 per chip) with default routing for straight-line hops, synaptic matrices,
16-slot ring buffers and delay-extension cores for delays beyond 16 ticks. The event-driven engine
(:mod:`~.engine`; numpy and C++ give identical results) runs 1 ms ticks. Spikes equal the
integer reference executor's (``neuro.graph.intsim``) exactly; the latency every SpiNNaker
synapse adds is absorbed by per-population tick offsets (see :mod:`~.network`).

``Result.spikes``: every neuron population's values ``[T, B, *shape]`` (0/1 spikes; the integer
membrane for LI), ``Result.outputs``: every graph output. ``Result.stats`` (counts per run, summed
over the batch; the samples run one after another on a reset machine):

``ticks``
    machine ticks simulated: ``B x (T + latency)``, ``latency`` the largest population offset.
``packets_sent``
    AER multicast packets injected by cores (neuron spikes that have targets, input spikes of
    spike sources, delay-extension re-sends), one per spike whatever its fan-out.
``router_hops``
    chip-to-chip link traversals of those packets (a multicast packet crossing 3 links counts 3;
    delivery to a core on the same chip counts 0).
``synaptic_rows_fetched``
    synaptic-row lookups (one DMA of a non-empty row per packet per target core).
``synaptic_events``
    synaptic words processed: weight additions into ring buffers.
``dropped_packets``
    packets dropped because a link had already carried ``link_capacity_per_tick`` packets in that
    tick (counted once per link where a packet is dropped; the cores beyond miss it).
``neuron_updates``
    neuron state updates: ``sum(population size) x T x B``.
``spikes``
    spikes emitted by neuron populations (input spikes are not counted).
``delay_extension_packets``
    the part of ``packets_sent`` sent by delay-extension cores.
``routing_entries_per_chip``
    ``{"x,y": entries}`` router-table entries used on every chip that has any.
``per_core``
    one ``{"chip": [x, y], "core": c, "population": name, "kind": "source" | "neurons" |
    "delay_extension", "neurons": atoms (source neurons served, for a delay extension),
    "synaptic_events": k, "packets_received": r}`` per used core, in placement order.
``link_capacity_per_tick``
    the link capacity the run used (packets per link per tick; ``None`` = unlimited).

A graph with EGRU populations runs on the graded-event path (:mod:`~.egru`: packets with a 32-bit
payload ``y``, CSR rows of gate-tagged weights, EGRU cores; ``Result.spikes`` holds the graded
events, and the stats add ``payload_bytes`` and ``dense_input_packets``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from neuro.hardware.base import (
    Result,
    UnsupportedGraph,
    as_int_spikes,
    load_artifact_graph,
    prepare_graph,
    quantize_problems,
    read_manifest,
    write_artifact,
)

from . import egru
from .artifact import describe, load_mapping, summary, write_mapping
from .egru_map import has_egru
from .engine import SimResult, cpp_available, make_stats, simulate
from .machine import Machine
from .mapper import Mapping, map_network
from .network import Network, Population, Projection, from_graph
from .program import Program, build_program

if TYPE_CHECKING:
    from neuro.graph import Graph

name = "spinnaker"
formats: tuple[str, ...] = ("spinnaker",)
#: runs the quantized graph, bit-exact with the integer reference executor
runs = "quantized"
agreement = 1.0
_UNSET: Any = object()


def supports(graph: Graph, fmt: str | None = None, *, machine: Machine | None = None) -> list[str]:
    """Every reason ``graph`` cannot run on ``machine`` (default :class:`Machine`); [] if it can."""
    if has_egru(graph):  # graded events: a path of its own (hardware/spinnaker/egru.py)
        return egru.supports(graph, fmt, machine, formats)
    problems = []
    if fmt is not None and fmt not in formats:
        problems.append(f"number format {fmt!r} is not one of {list(formats)}")
    try:
        net = from_graph(graph, integer="format" in graph.metadata)
    except UnsupportedGraph as exc:
        return problems + exc.problems
    try:
        map_network(net, machine)
    except ValueError as exc:
        problems.append(str(exc))
    return problems or quantize_problems(graph, fmt or formats[0])


def compile(graph: Graph, out: str | Path, *, fmt: str | None = None,
            calibration_inputs: Any = None, machine: Machine | None = None, force: bool = False) -> Path:
    """Quantize (if float), map and write the artifact directory ``out`` (atomically; nothing is
    written when the graph does not fit: :class:`UnsupportedGraph` names the population and the
    limit)."""
    if has_egru(graph):
        return egru.compile(graph, out, fmt=fmt, calibration_inputs=calibration_inputs,
                            machine=machine, formats=formats)
    q = prepare_graph(name, formats, graph, fmt, calibration_inputs,
                      lambda g, f: supports(g, f, machine=machine))
    try:
        mapping = map_network(from_graph(q), machine)
        build_program(mapping)  # the router tables deliver every key where it is needed
    except ValueError as exc:
        if isinstance(exc, UnsupportedGraph):
            raise
        raise UnsupportedGraph(name, [str(exc)]) from None
    info = describe(mapping)
    return write_artifact(out, target=name, graph=q,
                          write_files=lambda d: write_mapping(d, mapping),
                          target_info=info, tools=("torch",), force=force)


def run(artifact: str | Path, spikes: Any, *, engine: str = "auto",
        link_capacity_per_tick: int | None = _UNSET) -> Result:
    """Run the artifact on input ``spikes`` (``[T, N]``, ``[T, B, N]`` or a dict per input node).

    ``engine``: ``"auto"`` (C++ when it builds, else numpy), ``"cpp"`` or ``"numpy"``.
    ``link_capacity_per_tick`` overrides the machine's (``None``: unlimited).
    """
    manifest = read_manifest(artifact, name)
    if manifest.get("target_info", {}).get("path") == "graded":
        return egru.run(artifact, manifest, spikes, egru.KEEP if link_capacity_per_tick is _UNSET
                        else link_capacity_per_tick)
    graph = load_artifact_graph(artifact)
    mapping = load_mapping(artifact)
    if link_capacity_per_tick is not _UNSET:
        mapping.machine = dataclasses.replace(mapping.machine,
                                              link_capacity_per_tick=link_capacity_per_tick)
    return run_mapping(mapping, as_int_spikes(graph, spikes), engine=engine,
                       output_shapes={o: tuple(graph.nodes[o].shape) for o in graph.outputs()})


def run_mapping(mapping: Mapping, inputs: dict[str, np.ndarray], *, engine: str = "auto",
                output_shapes: dict[str, tuple[int, ...]] | None = None) -> Result:
    """Simulate a mapping on int64 inputs ``{source population: [T, B, *shape]}``."""
    sources = [p for p in mapping.populations if p.is_source]
    missing = [p.name for p in sources if p.name not in inputs]
    if missing:
        raise ValueError(f"no input spikes for spike source(s) {missing}")
    shapes = {np.asarray(inputs[p.name]).shape[:2] for p in sources}
    if len(shapes) != 1:
        raise ValueError(f"input spikes of the sources differ in [T, B]: {sorted(shapes)}")
    (T, B), = shapes
    x = np.concatenate([np.asarray(inputs[p.name], np.int64).reshape(T, B, p.size)
                        for p in sources], axis=2) if sources else np.zeros((T, B, 0), np.int64)
    if x.size and (x < 0).any():
        raise ValueError("input spikes must be non-negative integers")
    prog = build_program(mapping)
    sim = simulate(prog, x, engine=engine)
    values = sim.dense(prog)
    spikes, at = {}, 0
    for p in mapping.populations:
        if not p.is_source:
            assert p.shape is not None  # Population.__post_init__ sets it
            spikes[p.name] = values[:, :, at:at + p.size].reshape(T, B, *p.shape)
            at += p.size
    outputs = {}
    for o, pop in mapping.outputs.items():
        val = spikes[pop] if pop in spikes else np.asarray(inputs[pop], np.int64)
        shape = cast(tuple[int, ...], (output_shapes or {}).get(o, mapping.population(pop).shape))
        outputs[o] = val.reshape(T, B, *shape)
    return Result(spikes, outputs, make_stats(mapping, sim))


__all__ = ["Machine", "Mapping", "Network", "Population", "Program", "Projection", "SimResult",
           "build_program",
           "compile", "cpp_available", "formats", "from_graph", "load_mapping", "map_network",
           "name", "run", "run_mapping", "simulate", "summary", "supports"]
