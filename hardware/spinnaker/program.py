"""What the simulator executes, derived from a :class:`Mapping` by running its router tables.

For every sending vertex the router (``routing.walk``) is run on the vertex's key over the
mapping's tables; the links it crosses become the vertex's multicast tree and every core it
reaches is resolved through that core's master population table (key/mask -> synaptic matrix) or
is the vertex's delay-extension core. So the simulator delivers packets exactly where the tables
send them; a table that misses a target core, reaches a core with no use for the key, or loops
raises ``ValueError``. Arrays are flat (int64; ``words`` uint32; ``sim_off``/``sim_val`` int32),
shared by the numpy engine (which decodes ``words``) and the C++ engine (which reads the
pre-resolved ``sim_*`` form of the same synapses).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .machine import RING_SLOTS
from .mapper import Mapping
from .routing import lookup, walk
from .synapses import decode_words

KIND_SOURCE, KIND_NEURONS, KIND_EXT = 0, 1, 2
DEST_MATRIX, DEST_EXT = 0, 1
_KIND = {"source": KIND_SOURCE, "neurons": KIND_NEURONS, "delay_extension": KIND_EXT}


@dataclass
class Program:
    """Flat arrays of a mapped network (see the field comments)."""

    # neuron populations (index p): first global neuron, size, latency offset, flags
    pop_start: np.ndarray
    pop_size: np.ndarray
    pop_offset: np.ndarray
    pop_spiking: np.ndarray
    pop_cuba: np.ndarray
    pop_subtract: np.ndarray
    pop_li_col: np.ndarray  # LI populations: first column in the membrane record, else -1
    # per global neuron: bias, beta and alpha mantissas, threshold
    bias: np.ndarray
    beta_m: np.ndarray
    alpha_m: np.ndarray
    vth: np.ndarray
    # spike sources (index s): first column in the concatenated input, size
    src_start: np.ndarray
    src_size: np.ndarray
    # vertices: kind, population index (neuron or source list; -1 for extensions), first atom,
    # atoms, and for a delay extension its source vertex's atom count and stage-mask offset
    v_kind: np.ndarray
    v_pop: np.ndarray
    v_lo: np.ndarray
    v_n: np.ndarray
    v_src_n: np.ndarray
    v_ext_base: np.ndarray
    # multicast trees: links of vertex v are tree_link[tree_ptr[v]:tree_ptr[v+1]] (global link
    # numbers), each with the position of its parent link within the vertex's list (-1: root)
    tree_ptr: np.ndarray
    tree_link: np.ndarray
    tree_parent: np.ndarray
    # deliveries of vertex v: dest_ptr[v]..dest_ptr[v+1]; node = tree position of the link that
    # reaches the core (-1: source chip); kind matrix/extension; target = matrix or vertex id;
    # vertex = the receiving core's vertex (per-core statistics)
    dest_ptr: np.ndarray
    dest_node: np.ndarray
    dest_kind: np.ndarray
    dest_target: np.ndarray
    dest_vertex: np.ndarray
    # synaptic matrices: row of atom a = mat_rowbase + a * mat_stride; first global neuron of
    # the target vertex; ring-buffer shift; target vertex
    mat_rowbase: np.ndarray
    mat_stride: np.ndarray
    mat_tbase: np.ndarray
    mat_shift: np.ndarray
    mat_vertex: np.ndarray
    row_start: np.ndarray
    words: np.ndarray
    ext_mask: np.ndarray
    # the same synapses pre-resolved for the C++ engine (int32 per word): ring-buffer offset
    # delay * n_neurons + global target neuron, and value +-(weight << shift)
    sim_off: np.ndarray
    sim_val: np.ndarray
    # per neuron: sum of |weight << shift| over its synapses from neurons / from spike sources
    fanin_neurons: np.ndarray
    fanin_sources: np.ndarray
    # per key vertex v: the words of atom a's rows (on all its target cores) are
    # blk_start[v_countbase[v] + a] .. blk_start[v_countbase[v] + a + 1]; its row block starts at
    # row v_rowblock[v] with v_stride[v] matrices, the first being matrix v_firstmat[v]
    blk_start: np.ndarray
    v_rowblock: np.ndarray
    v_stride: np.ndarray
    v_countbase: np.ndarray
    v_firstmat: np.ndarray
    # scalars: total neurons, LI neurons, largest offset, max extension stages, links, link
    # capacity (-1 = unlimited), decay bits, state limits
    n_neurons: int
    n_li: int
    latency: int
    max_stages: int
    n_links: int
    link_capacity: int
    decay_bits: int
    state_min: int
    state_max: int

    def row_blocks(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Key vertex -> (row lengths ``[atoms, matrices]``, non-empty rows per atom); cached."""
        cache = self.__dict__.get("_row_blocks")
        if cache is None:
            length = np.diff(self.row_start)
            cache = {}
            for v in np.flatnonzero(self.v_countbase >= 0).tolist():
                n, k, rb = int(self.v_n[v]), int(self.v_stride[v]), int(self.v_rowblock[v])
                lens = np.ascontiguousarray(length[rb:rb + n * k].reshape(n, k))
                cache[v] = (lens, (lens > 0).sum(1))
            self.__dict__["_row_blocks"] = cache
        return cache

    @property
    def sim_word(self) -> np.ndarray:
        """``sim_off`` and ``sim_val`` interleaved, ``[words, 2]`` int32 (cached): the C++ engine
        reads one stream per synaptic row instead of two."""
        cache = self.__dict__.get("_sim_word")
        if cache is None:
            cache = np.ascontiguousarray(np.stack([self.sim_off, self.sim_val], 1), np.int32)
            self.__dict__["_sim_word"] = cache
        return cache

    def narrow_ring(self, inputs: np.ndarray) -> bool:
        """Whether 32-bit ring-buffer slots are exact for ``inputs``: no neuron's synapses can sum
        beyond 32 bits in one slot (each source sends at most its largest input count per tick,
        each neuron at most one spike)."""
        count = int(inputs.max(initial=0))
        bound = self.fanin_neurons + max(count, 1) * self.fanin_sources
        return int(bound.max(initial=0)) < (1 << 31) - 1

    def arrays(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)]

    def scalars(self) -> list[int]:
        return [int(getattr(self, f.name)) for f in fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)]


def build_program(m: Mapping) -> Program:
    """The simulator's arrays for mapping ``m`` (module docstring)."""
    machine = m.machine
    neurons = [p for p in m.populations if not p.is_source]
    sources = [p for p in m.populations if p.is_source]
    pidx = {p.name: i for i, p in enumerate(neurons)}
    sidx = {p.name: i for i, p in enumerate(sources)}
    sizes = np.array([p.size for p in neurons], np.int64)
    pop_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if neurons else np.zeros(0, np.int64)
    ssizes = np.array([p.size for p in sources], np.int64)
    src_start = np.concatenate([[0], np.cumsum(ssizes)[:-1]]).astype(np.int64) if sources else np.zeros(0, np.int64)

    def cat(attr: str) -> np.ndarray:
        return (np.concatenate([getattr(p, attr) for p in neurons]) if neurons
                else np.zeros(0, np.int64)).astype(np.int64)

    vs = m.vertices
    nv = len(vs)
    v_pop = np.array([pidx.get(v.population, -1) if v.kind == "neurons" else
                      (sidx[v.population] if v.kind == "source" else -1) for v in vs], np.int64)
    v_src_n = np.array([vs[v.source].n if v.kind == "delay_extension" else 0 for v in vs], np.int64)
    core_vertex = {v.core: v.id for v in vs}
    mpt_tables = {c: np.array(rows, np.uint32).reshape(-1, 3)
                  for c, rows in m.master_population_table().items()}
    mat = m.matrices
    dest_cores = m.dest_cores()
    cpc = machine.cores_per_chip
    tree_ptr, tree_link, tree_parent = [0], [], []
    dest_ptr, dest_node, dest_kind, dest_target, dest_vertex = [0], [], [], [], []
    target: Any  # one destination's target in the loop below, later the per-word target array
    for v in vs:
        if v.id in dest_cores:
            links, cores = walk(m.tables, machine, v.core // cpc, v.key)
            for link, parent in links:
                tree_link.append(link)
                tree_parent.append(parent)
            reached = set()
            found = []
            for core, node in cores:
                u = core_vertex.get(core)
                where = "core ({}, {}, {})".format(*machine.core_name(core))
                if u is None:
                    raise ValueError(f"key 0x{v.key:08x} of population {v.population!r} is routed to "
                                     f"the empty {where}")
                if vs[u].kind == "delay_extension" and vs[u].source == v.id:
                    kind, target = DEST_EXT, u
                else:
                    hit = lookup(mpt_tables.get(core), v.key)
                    if hit is None:
                        raise ValueError(f"key 0x{v.key:08x} of population {v.population!r} reaches "
                                         f"{where}, which has no master population table entry for it")
                    kind, target = DEST_MATRIX, hit
                found.append((kind, target, node, u))
                reached.add(core)
            for kind, target, node, u in sorted(found):  # matrices in row-block order, then extensions
                dest_node.append(node)
                dest_kind.append(kind)
                dest_target.append(target)
                dest_vertex.append(u)
            missing = dest_cores[v.id] - reached
            if missing:
                where = "core ({}, {}, {})".format(*machine.core_name(min(missing)))
                raise ValueError(f"the router tables do not deliver key 0x{v.key:08x} of population "
                                 f"{v.population!r} to {where}")
        tree_ptr.append(len(tree_link))
        dest_ptr.append(len(dest_node))
    t_vertex = mat.target_vertex
    tbase = np.array([pop_start[pidx[vs[t].population]] + vs[t].lo for t in t_vertex.tolist()], np.int64)
    shift = np.array([m.shifts[vs[t].population] for t in t_vertex.tolist()], np.int64)
    i64 = lambda x: np.asarray(x, np.int64)  # noqa: E731
    n_neurons = int(sizes.sum())
    if RING_SLOTS * n_neurons + n_neurons >= 1 << 31:
        raise ValueError(f"{n_neurons} neurons: the simulator's ring buffers are limited to "
                         f"{(1 << 31) // (RING_SLOTS + 1)} neurons")
    sim_off, sim_val, word_matrix = _resolve_words(mat, tbase, shift,
                                                   np.array([v.n for v in vs], np.int64), n_neurons)
    kv = mat.key_vertex[word_matrix]
    origin = np.array([v.source if v.kind == "delay_extension" else v.id for v in vs], np.int64)
    from_source = np.array([vs[o].kind == "source" for o in origin.tolist()], bool)[kv] if kv.size \
        else np.zeros(0, bool)
    target = sim_off.astype(np.int64) % n_neurons if n_neurons else sim_off.astype(np.int64)
    weight = np.abs(sim_val.astype(np.float64))
    fanin = [np.bincount(target[sel], weight[sel], minlength=n_neurons).astype(np.int64)
             for sel in (~from_source, from_source)]
    li_col, n_li = [], 0
    for p in neurons:
        li_col.append(-1 if p.spiking else n_li)
        n_li += 0 if p.spiking else p.size
    v_rowblock = np.full(nv, -1, np.int64)
    v_stride = np.zeros(nv, np.int64)
    v_countbase = np.full(nv, -1, np.int64)
    v_firstmat = np.full(nv, -1, np.int64)
    count = 0
    for mi, kv in enumerate(mat.key_vertex.tolist()):
        if v_rowblock[kv] < 0:
            v_rowblock[kv], v_stride[kv], v_countbase[kv] = mat.rowbase[mi], mat.stride[mi], count
            v_firstmat[kv] = mi
            count += vs[kv].n + 1
    blk_start = np.zeros(count, np.int64)
    for kv in np.flatnonzero(v_countbase >= 0).tolist():
        n = vs[kv].n
        blk_start[v_countbase[kv]:v_countbase[kv] + n + 1] = \
            mat.row_start[v_rowblock[kv] + np.arange(n + 1) * v_stride[kv]]
    fmt = m.fmt
    cap = machine.link_capacity_per_tick
    return Program(
        pop_start=pop_start, pop_size=sizes,
        pop_offset=i64([m.offsets[p.name] for p in neurons]),
        pop_spiking=i64([p.spiking for p in neurons]),
        pop_cuba=i64([p.kind == "CubaLIF" for p in neurons]),
        pop_subtract=i64([p.reset == "subtract" for p in neurons]), pop_li_col=i64(li_col),
        bias=cat("bias"), beta_m=cat("beta_m"), alpha_m=cat("alpha_m"), vth=cat("vth"),
        src_start=src_start, src_size=ssizes,
        v_kind=i64([_KIND[v.kind] for v in vs]), v_pop=v_pop, v_lo=i64([v.lo for v in vs]),
        v_n=i64([v.n for v in vs]), v_src_n=v_src_n,
        v_ext_base=i64(mat.ext_base) if nv else np.zeros(0, np.int64),
        tree_ptr=i64(tree_ptr), tree_link=i64(tree_link), tree_parent=i64(tree_parent),
        dest_ptr=i64(dest_ptr), dest_node=i64(dest_node), dest_kind=i64(dest_kind),
        dest_target=i64(dest_target), dest_vertex=i64(dest_vertex),
        mat_rowbase=i64(mat.rowbase), mat_stride=i64(mat.stride), mat_tbase=tbase, mat_shift=shift,
        row_start=i64(mat.row_start), words=np.ascontiguousarray(mat.words, np.uint32),
        ext_mask=i64(mat.ext_mask), sim_off=sim_off, sim_val=sim_val,
        fanin_neurons=fanin[0], fanin_sources=fanin[1],
        blk_start=blk_start, v_rowblock=v_rowblock, v_stride=v_stride, v_countbase=v_countbase, v_firstmat=v_firstmat,
        mat_vertex=i64(mat.target_vertex),
        n_neurons=n_neurons, n_li=n_li, latency=m.latency,
        max_stages=max([v.stages for v in vs], default=0), n_links=machine.n_chips * 6,
        link_capacity=-1 if cap is None else int(cap), decay_bits=fmt.decay_bits,
        state_min=-fmt.state_max - 1, state_max=fmt.state_max)


def _resolve_words(mat, tbase: np.ndarray, shift: np.ndarray, atoms: np.ndarray,
                   n_neurons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring-buffer offset and signed shifted value of every synaptic word (``Program``)."""
    n_rows = mat.row_start.size - 1
    row_matrix = np.zeros(n_rows, np.int64)
    per = atoms[mat.key_vertex]
    if per.size:
        m = np.repeat(np.arange(per.size), per)
        a = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        row_matrix[mat.rowbase[m] + a * mat.stride[m]] = m
    word_matrix = np.repeat(row_matrix, np.diff(mat.row_start))
    mag, delay, inh, index = decode_words(mat.words)
    off = delay * n_neurons + tbase[word_matrix] + index
    val = np.where(inh == 1, -mag, mag) << shift[word_matrix]
    return off.astype(np.int32), val.astype(np.int32), word_matrix


__all__ = ["DEST_EXT", "DEST_MATRIX", "KIND_EXT", "KIND_NEURONS", "KIND_SOURCE", "Program",
           "build_program"]
