"""Partitioning populations into per-core vertices and placing them on cores.

A *vertex* is what one core runs: a slice of at most ``neurons_per_core`` atoms of one
population (``"source"`` or ``"neurons"``), or the delay extension of one source vertex
(``"delay_extension"``: it re-sends that vertex's spikes after 16, 32, ... ticks, see
``synapses``). Vertices are placed in order (spike sources, then neuron populations in graph
order, then delay extensions) onto cores in raster order: chip ``(0, 0)`` cores ``0..15``, chip
``(1, 0)``, ... A population whose slices would need more cores than the machine has raises
``ValueError`` naming the population and the limit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .machine import Machine
from .network import Network


@dataclass
class Vertex:
    """One core's job. ``lo``/``n``: the population atoms it holds (``lo .. lo + n - 1``); for a
    delay extension ``n = stages x (atoms of the source vertex)`` and ``source`` is the id of the
    vertex whose spikes it delays. ``key``/``mask``: its AER routing key block (-1 when it sends
    nothing). ``core``: global core number (``Machine.core_name`` gives ``(x, y, c)``)."""

    id: int
    kind: str
    population: str
    lo: int
    n: int
    core: int = -1
    source: int = -1
    stages: int = 0
    key: int = -1
    mask: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slice_vertices(net: Network, slice_size: dict[str, int]) -> list[Vertex]:
    """Source and neuron vertices (no delay extensions yet), in placement order."""
    out: list[Vertex] = []
    for pop in [*net.sources, *net.neurons]:
        step = slice_size[pop.name]
        for lo in range(0, pop.size, step):
            out.append(Vertex(len(out), "source" if pop.is_source else "neurons", pop.name, lo,
                              min(step, pop.size - lo)))
    return out


def vertex_lookup(vertices: list[Vertex]) -> dict[str, tuple[np.ndarray, int]]:
    """population -> (first atom of each of its vertices, id of its first vertex)."""
    out: dict[str, tuple[list[int], int]] = {}
    for v in vertices:
        if v.kind == "delay_extension":
            continue
        los, first = out.setdefault(v.population, ([], v.id))
        los.append(v.lo)
    return {k: (np.asarray(los, np.int64), first) for k, (los, first) in out.items()}


def place(vertices: list[Vertex], machine: Machine) -> None:
    """Give every vertex a core, in order (raster over chips); ``ValueError`` when full."""
    if len(vertices) > machine.n_cores:
        v = vertices[machine.n_cores]
        pop = v.population
        need = sum(1 for u in vertices if u.population == pop and u.kind == v.kind)
        what = "delay extension of population" if v.kind == "delay_extension" else "population"
        raise ValueError(
            f"{what} {pop!r} does not fit the machine: {len(vertices)} cores are needed "
            f"({need} for it), the machine has {machine.n_cores} ({machine.width}x{machine.height} "
            f"chips x {machine.cores_per_chip} cores, at most {machine.neurons_per_core} neurons "
            "per core)")
    for i, v in enumerate(vertices):
        v.core = i


__all__ = ["Vertex", "place", "slice_vertices", "vertex_lookup"]
