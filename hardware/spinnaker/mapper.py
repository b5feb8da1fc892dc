"""The mapper: a :class:`Network` onto a :class:`Machine` (what ``compile`` writes).

Steps (sPyNNaker's, in small): latency offsets and machine delays (``network``); one ring-buffer
shift per population; slicing of populations into vertices of at most ``neurons_per_core`` atoms,
halved for a population whose synaptic rows overflow ``row_memory_per_core``; delay-extension
vertices; placement on cores; synaptic matrices; AER keys; routing trees and router tables;
master population tables (per target core: key/mask -> matrix). Every resource problem raises
``ValueError`` naming the population (or projection, or chip) and the limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro.graph.formats import NumberFormat

from .machine import Machine
from .network import Network, Population
from .placement import Vertex, place, slice_vertices
from .routing import allocate_keys, build_tables
from .synapses import Matrices, add_delay_extensions, build_matrices, resolve


@dataclass
class Mapping:
    """A network mapped onto a machine: everything the simulator needs, and the artifact holds.

    ``populations`` in placement order (sources, then neurons) with their latency ``offsets``
    (ticks) and ring-buffer ``shifts``; ``vertices`` (one per used core); synaptic ``matrices``;
    router ``tables`` (chip index -> ``[entries, 3]`` key/mask/route); ``outputs`` (graph output ->
    population); ``projections``: per-projection summaries; ``row_bytes``: synaptic-row memory per
    vertex.
    """

    machine: Machine
    fmt: NumberFormat
    populations: list[Population]
    offsets: dict[str, int]
    shifts: dict[str, int]
    vertices: list[Vertex]
    matrices: Matrices
    tables: dict[int, np.ndarray]
    outputs: dict[str, str]
    projections: list[dict]
    row_bytes: np.ndarray

    @property
    def latency(self) -> int:
        """Extra ticks the run takes beyond the input length (the largest offset)."""
        return max(self.offsets.values(), default=0)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def dest_cores(self) -> dict[int, set[int]]:
        """Sending vertex id -> the global cores its packets must reach."""
        out: dict[int, set[int]] = {}
        for kv, tv in zip(self.matrices.key_vertex.tolist(), self.matrices.target_vertex.tolist()):
            out.setdefault(kv, set()).add(self.vertices[tv].core)
        for v in self.vertices:
            if v.kind == "delay_extension":
                out.setdefault(v.source, set()).add(v.core)
        return out

    def master_population_table(self) -> dict[int, list[tuple[int, int, int]]]:
        """Target core -> ``(key, mask, matrix)`` entries sorted by key."""
        out: dict[int, list[tuple[int, int, int]]] = {}
        for m, (kv, tv) in enumerate(zip(self.matrices.key_vertex.tolist(),
                                         self.matrices.target_vertex.tolist())):
            k = self.vertices[kv]
            out.setdefault(self.vertices[tv].core, []).append((k.key, k.mask, m))
        return {c: sorted(v) for c, v in out.items()}


#: the machine ``compile``/``supports`` use when none is given (the command line uses this one)
DEFAULT_MACHINE = Machine()


def map_network(net: Network, machine: Machine | None = None) -> Mapping:
    """Map ``net`` onto ``machine`` (default :data:`DEFAULT_MACHINE`); ``ValueError`` naming the
    population and the limit when it does not fit."""
    machine = machine or DEFAULT_MACHINE
    net.validate()
    offsets = net.offsets()
    shifts = {p.name: 0 for p in net.populations.values()}
    for name in shifts:
        exps = [pr.weight_exp for pr in net.projections if pr.post == name and pr.size]
        shifts[name] = min(exps, default=0)
    slice_size = {p.name: min(machine.neurons_per_core, p.size) for p in net.populations.values()}
    while True:
        vertices = slice_vertices(net, slice_size)
        syn = resolve(net, vertices, machine, offsets, shifts)
        add_delay_extensions(syn, vertices)
        mats = build_matrices(syn, vertices)
        atoms = np.array([v.n for v in vertices], np.int64)
        row_bytes = mats.bytes_per_target(len(vertices), atoms)
        over = sorted({vertices[i].population for i in np.flatnonzero(row_bytes > machine.row_memory_per_core)})
        if not over:
            break
        for pop in over:
            if slice_size[pop] == 1:
                worst = int(max(row_bytes[v.id] for v in vertices if v.population == pop))
                raise ValueError(f"population {pop!r}: the synaptic rows of one neuron need {worst} "
                                 f"bytes, the per-core budget is {machine.row_memory_per_core} bytes")
            slice_size[pop] = max(1, slice_size[pop] // 2)
    place(vertices, machine)
    m = Mapping(machine, net.fmt, [*net.sources, *net.neurons], offsets, shifts, vertices, mats,
                {}, dict(net.outputs), syn.summary, row_bytes)
    dest = m.dest_cores()
    allocate_keys(vertices, set(dest))
    m.tables = build_tables(vertices, dest, machine)
    return m


__all__ = ["DEFAULT_MACHINE", "Mapping", "map_network"]
