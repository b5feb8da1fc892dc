"""AER keys, multicast routing trees, per-chip router tables with default routing, and the router.

Keys. Every vertex that sends packets owns an aligned block of ``2^b >= n`` keys; the key of its
atom ``i`` is ``base | i`` and its mask ``0xFFFFFFFF ^ (2^b - 1)`` (``base`` is a multiple of
``2^b``, blocks are handed out in vertex order). A packet is multicast: one AER packet per spike,
32-bit key, no payload.

Trees. A vertex's packets follow a shortest-path tree on the triangular torus from its chip to
every chip holding a core that needs them (target cores with a synaptic matrix for its key, its
delay-extension core). The tree is the union of the paths of a breadth-first shortest-path tree
rooted at the source chip, which prefers to continue straight on (fewer router entries).

Tables. A chip of a tree needs a router entry ``(key, mask, route)`` for that vertex when it is
the source chip, when it delivers to one of its own cores, or when the packet does not simply go
straight on; a chip that only passes the packet straight through uses default routing (no entry).
``route`` is a bit set: bits 0..5 links (``machine.DIRECTIONS``), bit ``6 + c`` core ``c``. More
entries on a chip than ``router_entries`` raises ``ValueError`` naming the chip, the limit and the
populations whose keys it holds. (No table compression is done; sPyNNaker runs an
ordered-covering compressor, so real tables can hold more keys.)

The router (:func:`walk`) is what the simulator executes: starting on the source chip it looks the
key up in each chip's table (first entry with ``key & mask == entry_key``), replicates the packet
to the route's cores and links, and default-routes a packet that matches nothing on a chip it
entered through a link straight on. A locally sent key without an entry, or a routing loop,
raises ``ValueError``. Every key of a block shares the block's mask, so walking the base key gives
the route of all the vertex's keys.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .machine import Machine
from .placement import Vertex

LINK_BITS = 6


def allocate_keys(vertices: list[Vertex], senders: set[int]) -> None:
    """Give every sending vertex an aligned key block (module docstring)."""
    base = 0
    for v in vertices:
        if v.id not in senders:
            v.key, v.mask = -1, 0
            continue
        block = 1 << max(0, (v.n - 1).bit_length())
        base = -(-base // block) * block
        if base + block > 1 << 32:
            raise ValueError(f"population {v.population!r}: the 32-bit AER key space is exhausted")
        v.key, v.mask = base, 0xFFFFFFFF ^ (block - 1)
        base += block


def _bfs_tree(machine: Machine, src: int) -> tuple[dict[int, int], dict[int, int]]:
    """Shortest-path tree from chip ``src``: parent chip and arrival direction of every chip."""
    parent, indir = {src: -1}, {src: -1}
    frontier = [src]
    while frontier:
        found: dict[int, tuple[int, int, bool]] = {}
        for c in frontier:
            d0 = indir[c]
            for d in ([d0] if d0 >= 0 else []) + [d for d in range(6) if d != d0]:
                n = machine.neighbour(c, d)
                if n in parent:
                    continue
                straight = d == d0
                if n not in found or (straight and not found[n][2]):
                    found[n] = (c, d, straight)
        for n, (c, d, _) in found.items():
            parent[n], indir[n] = c, d
        frontier = list(found)
    return parent, indir


def build_tables(vertices: list[Vertex], dest_cores: dict[int, set[int]],
                 machine: Machine) -> dict[int, np.ndarray]:
    """Router tables: chip index -> ``uint32 [entries, 3]`` rows ``(key, mask, route)`` sorted by
    key. ``dest_cores``: sending vertex id -> the global cores it must reach."""
    cpc = machine.cores_per_chip
    entries: dict[int, list[tuple[int, int, int]]] = {}
    owners: dict[int, set[str]] = {}
    trees: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
    for vid, cores in dest_cores.items():
        v = vertices[vid]
        src = v.core // cpc
        if src not in trees:
            trees[src] = _bfs_tree(machine, src)
        parent, indir = trees[src]
        local: dict[int, int] = {}
        for core in cores:
            local[core // cpc] = local.get(core // cpc, 0) | (1 << (LINK_BITS + core % cpc))
        out: dict[int, int] = {src: 0}
        for chip in local:  # the path back to the source, marking the links it uses
            c = chip
            while c != src:
                p = parent[c]
                out.setdefault(c, 0)
                out[p] = out.get(p, 0) | (1 << indir[c])
                c = p
        for chip, links in out.items():
            route = links | local.get(chip, 0)
            straight = chip != src and chip not in local and links == 1 << indir[chip]
            if not straight:
                entries.setdefault(chip, []).append((v.key, v.mask, route))
                owners.setdefault(chip, set()).add(v.population)
    tables = {}
    for chip, rows in entries.items():
        if len(rows) > machine.router_entries:
            x, y = machine.chip_xy(chip)
            pops = sorted(owners[chip])
            raise ValueError(f"routing table of chip ({x}, {y}) needs {len(rows)} entries, the limit "
                             f"is {machine.router_entries} per chip (keys of populations "
                             f"{', '.join(repr(p) for p in pops[:6])}{', ...' if len(pops) > 6 else ''})")
        tables[chip] = np.array(sorted(rows), np.uint32).reshape(-1, 3)
    return tables


def lookup(table: np.ndarray | None, key: int) -> int | None:
    """Route word of the first entry matching ``key``, or None."""
    if table is None or not len(table):
        return None
    hit = np.flatnonzero((np.uint32(key) & table[:, 1]) == table[:, 0])
    return int(table[hit[0], 2]) if hit.size else None


def walk(tables: dict[int, np.ndarray], machine: Machine, src_chip: int,
         key: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Route one packet (module docstring). Returns the links it crosses in breadth-first order as
    ``(global link, parent position)`` (parent -1: leaves the source chip) and the cores it
    reaches as ``(global core, position of the link that brought it, -1 on the source chip)``."""
    cpc = machine.cores_per_chip
    links: list[tuple[int, int]] = []
    cores: list[tuple[int, int]] = []
    seen = {src_chip}
    queue = deque([(src_chip, -1, -1)])
    while queue:
        chip, d_in, pos = queue.popleft()
        route = lookup(tables.get(chip), key)
        if route is None:
            if d_in < 0:
                x, y = machine.chip_xy(chip)
                raise ValueError(f"key 0x{key:08x} has no router entry on its source chip ({x}, {y})")
            route = 1 << d_in  # default routing: straight on
        for c in range(cpc):
            if route >> (LINK_BITS + c) & 1:
                cores.append((chip * cpc + c, pos))
        for d in range(6):
            if route >> d & 1:
                nxt = machine.neighbour(chip, d)
                if nxt in seen:
                    x, y = machine.chip_xy(nxt)
                    raise ValueError(f"key 0x{key:08x}: routing loop (chip ({x}, {y}) reached twice)")
                seen.add(nxt)
                links.append((chip * 6 + d, pos))
                queue.append((nxt, d, len(links) - 1))
    return links, cores


__all__ = ["allocate_keys", "build_tables", "lookup", "walk"]
