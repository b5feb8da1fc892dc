"""Synaptic matrices, synaptic words and delay extensions.

One *synaptic matrix* per (key vertex, target vertex) pair that has synapses: a row per atom of
the key vertex (the source neuron whose packet arrives), held as an address list (one word per
atom: where its row starts and how long it is) and the rows' 32-bit synaptic words::

    bits 31..16  weight magnitude (unsigned 16 bit, already shifted to the target population's
                 ring-buffer shift: |w| << (weight_exp - shift))
    bits 15..12  delay - 1        (ring-buffer delay 1..16 ticks)
    bit  11      synapse type     (0 excitatory: +weight, 1 inhibitory: -weight)
    bits 10..0   post-synaptic neuron index within the target core

On a packet the target core looks its key up in the master population table (key/mask ->
matrix), fetches the row of the sending atom and, for every word, adds ``+-(weight << shift)``
into ``ring_buffer[(t + delay) mod 16][index]``. ``shift`` is one left shift per target
population (sPyNNaker's ring-buffer shift): the smallest ``weight_exp`` of its projections.

Delays. A synapse's machine delay ``m`` (reference delay plus the latency alignment, see
``network``) is split as ``m = 16 j + r`` with ``r`` in ``1..16``. ``j = 0``: the row is in the
source vertex's own matrix. ``j >= 1``: the source vertex gets a *delay-extension* vertex (its own
core) that receives the source's packets and, for a spike of atom ``i`` at tick ``t``, sends a
packet with key ``ext_key | ((j - 1) n + i)`` at tick ``t + 16 j`` for every stage ``j`` that atom
needs (a stage bit mask per atom); the target's matrix for that key holds the remaining delay
``r``. The longest delay is ``16 (1 + max_delay_stages)`` ticks.

Memory per target core: ``4 x (address words + synaptic words)`` bytes over its matrices; a
population whose slices exceed ``row_memory_per_core`` is cut into smaller slices (the mapper).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .machine import RING_SLOTS, Machine
from .network import Network
from .placement import Vertex, vertex_lookup

WEIGHT_SHIFT, DELAY_SHIFT, TYPE_SHIFT = 16, 12, 11
INDEX_MASK = (1 << 11) - 1


def encode_words(magnitude: np.ndarray, delay: np.ndarray, inhibitory: np.ndarray,
                 index: np.ndarray) -> np.ndarray:
    """32-bit synaptic words (module docstring); ``delay`` in 1..16 ticks."""
    return ((magnitude.astype(np.uint32) << WEIGHT_SHIFT)
            | ((delay.astype(np.uint32) - 1) << DELAY_SHIFT)
            | (inhibitory.astype(np.uint32) << TYPE_SHIFT)
            | index.astype(np.uint32))


def decode_words(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(magnitude, delay 1..16, inhibitory 0/1, index)`` of synaptic words."""
    w = words.astype(np.uint32)
    return ((w >> WEIGHT_SHIFT).astype(np.int64), ((w >> DELAY_SHIFT) & 15).astype(np.int64) + 1,
            ((w >> TYPE_SHIFT) & 1).astype(np.int64), (w & INDEX_MASK).astype(np.int64))


@dataclass
class Matrices:
    """All synaptic matrices of a mapping (flat arrays).

    ``key_vertex[m]``, ``target_vertex[m]``: the pair of matrix ``m`` (matrices sorted by key
    vertex, then target vertex). Its row for atom ``a`` is row ``r = rowbase[m] + a * stride[m]``,
    whose words are ``words[row_start[r]:row_start[r + 1]]``: the rows of one key vertex's
    matrices are interleaved atom by atom (``stride`` = its number of matrices), so the rows one
    packet needs on all its target cores lie next to each other in the simulator's memory.
    ``ext_mask``: stage bit masks (bit ``j`` = stage ``j``) of every delay extension's source
    atoms, the extension vertex ``e`` owning ``ext_mask[ext_base[e]:ext_base[e] + n_source]``.
    """

    key_vertex: np.ndarray
    target_vertex: np.ndarray
    rowbase: np.ndarray
    stride: np.ndarray
    row_start: np.ndarray
    words: np.ndarray
    ext_base: np.ndarray
    ext_mask: np.ndarray

    def synapses_per_matrix(self) -> np.ndarray:
        """Synaptic words of every matrix."""
        length = np.diff(self.row_start)
        out = np.zeros(self.key_vertex.size, np.int64)
        first = 0
        while first < self.key_vertex.size:  # one key vertex (a block of `stride` matrices) at a time
            k = int(self.stride[first])
            r0 = int(self.rowbase[first])
            n_rows = (int(self.row_start.size) - 1 if first + k >= self.key_vertex.size
                      else int(self.rowbase[first + k])) - r0
            out[first:first + k] = length[r0:r0 + n_rows].reshape(-1, k).sum(0)
            first += k
        return out

    def bytes_per_target(self, n_vertices: int, atoms: np.ndarray) -> np.ndarray:
        """Row memory (address list + words, 4 bytes each) each vertex owns as a target."""
        out = np.zeros(n_vertices, np.int64)
        np.add.at(out, self.target_vertex, 4 * (atoms[self.key_vertex] + self.synapses_per_matrix()))
        return out


@dataclass
class SynapseList:
    """Every synapse of the network resolved to vertices: source vertex and atom, target vertex
    and local index, signed pre-shifted weight, machine delay; plus per-projection summaries."""

    sv: np.ndarray
    atom: np.ndarray
    tv: np.ndarray
    local: np.ndarray
    weight: np.ndarray
    delay: np.ndarray
    summary: list[dict]


def resolve(net: Network, vertices: list[Vertex], machine: Machine, offsets: dict[str, int],
            shifts: dict[str, int]) -> SynapseList:
    """Resolve every projection to (vertex, atom) pairs, machine delays and 16-bit weights;
    ``ValueError`` naming the projection for a delay beyond the delay extension or a weight that
    does not fit 16 bits at its population's ring-buffer shift."""
    look = vertex_lookup(vertices)
    parts: list[tuple[np.ndarray, ...]] = []
    summary = []
    for p in net.projections:
        where = f"projection {p.name!r} ({p.pre} -> {p.post})"
        m = p.delay + (offsets[p.post] - offsets[p.pre])
        if p.size and int(m.min()) < 1:
            raise AssertionError(f"{where}: latency alignment gave a delay below one tick")
        if p.size and int(m.max()) > machine.max_delay:
            k = int(np.argmax(m))
            raise ValueError(
                f"{where}: a delay of {int(m[k])} ticks (reference delay {int(p.delay[k])} + latency "
                f"alignment {offsets[p.post] - offsets[p.pre]}) exceeds the {machine.max_delay} ticks "
                f"the delay extension supports ({RING_SLOTS} ring-buffer slots x "
                f"(1 + {machine.max_delay_stages} stages)); population {p.post!r}")
        e = p.weight_exp - shifts[p.post]
        w = p.weight << e
        if p.size and int(np.abs(w).max()) > 0xFFFF:
            raise ValueError(f"{where}: weights at shift {p.weight_exp} do not fit the 16-bit "
                             f"synaptic word at population {p.post!r}'s ring-buffer shift "
                             f"{shifts[p.post]} (projections into one population need close shifts)")
        los_pre, first_pre = look[p.pre]
        los_post, first_post = look[p.post]
        ip = np.searchsorted(los_pre, p.pre_idx, "right") - 1
        it = np.searchsorted(los_post, p.post_idx, "right") - 1
        parts.append((first_pre + ip, p.pre_idx - los_pre[ip], first_post + it,
                      p.post_idx - los_post[it], w, m))
        summary.append({"name": p.name, "pre": p.pre, "post": p.post, "synapses": p.size,
                        "weight_exp": p.weight_exp,
                        "machine_delay": [int(m.min()), int(m.max())] if p.size else None})
    cat = [np.concatenate([pt[k] for pt in parts]) if parts else np.zeros(0, np.int64)
           for k in range(6)]
    sv, atom, tv, local, weight, delay = [c.astype(np.int64) for c in cat]
    return SynapseList(sv, atom, tv, local, weight, delay, summary=summary)


def add_delay_extensions(syn: SynapseList, vertices: list[Vertex]) -> None:
    """Append a delay-extension vertex for every source vertex with delays beyond 16 ticks."""
    stage = (syn.delay - 1) // RING_SLOTS
    need = np.zeros(len(vertices), np.int64)
    np.maximum.at(need, syn.sv, stage)
    for sv in np.flatnonzero(need):
        src = vertices[int(sv)]
        vertices.append(Vertex(len(vertices), "delay_extension", src.population, src.lo,
                               int(need[sv]) * src.n, source=src.id, stages=int(need[sv])))


def build_matrices(syn: SynapseList, vertices: list[Vertex]) -> Matrices:
    """Synaptic matrices and delay-extension stage masks (module docstring)."""
    nv = len(vertices)
    atoms = np.array([v.n for v in vertices], np.int64)
    ext_of = np.full(nv, -1, np.int64)
    ext_base = np.full(nv, -1, np.int64)
    base = 0
    for v in vertices:
        if v.kind == "delay_extension":
            ext_of[v.source] = v.id
            ext_base[v.id] = base
            base += vertices[v.source].n
    stage = (syn.delay - 1) // RING_SLOTS
    ring_delay = syn.delay - RING_SLOTS * stage
    delayed = stage > 0
    kv = np.where(delayed, ext_of[syn.sv], syn.sv)
    katom = np.where(delayed, (stage - 1) * atoms[syn.sv] + syn.atom, syn.atom)
    words = encode_words(np.abs(syn.weight), ring_delay, syn.weight < 0, syn.local)
    order = np.lexsort((syn.local, syn.tv, katom, kv))  # by key vertex, atom, target, index
    kv, katom, tv, words = kv[order], katom[order], syn.tv[order], words[order]
    pair, mid = np.unique(kv * nv + tv, return_inverse=True)
    key_vertex, target_vertex = pair // nv, pair % nv
    # interleaved rows: key vertex block [atoms, stride], matrix = slot within its block
    first_of = np.searchsorted(key_vertex, key_vertex)  # first matrix of the same key vertex
    stride = np.bincount(key_vertex, minlength=nv)[key_vertex].astype(np.int64)
    slot = np.arange(pair.size) - first_of
    block = atoms[key_vertex] * stride
    block_base = np.zeros(pair.size, np.int64)
    starts = np.flatnonzero(slot == 0)
    if starts.size:
        block_base[starts] = np.concatenate([[0], np.cumsum(block[starts])[:-1]])
    rowbase = (block_base[first_of] + slot).astype(np.int64)
    n_rows = int(block[starts].sum()) if starts.size else 0
    counts = np.bincount(rowbase[mid] + katom * stride[mid], minlength=n_rows) if n_rows \
        else np.zeros(0, np.int64)
    row_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ext_mask = np.zeros(base, np.int64)
    if delayed.any():
        e = ext_of[syn.sv[delayed]]
        np.bitwise_or.at(ext_mask, ext_base[e] + syn.atom[delayed], np.int64(1) << stage[delayed])
    return Matrices(key_vertex.astype(np.int64), target_vertex.astype(np.int64), rowbase, stride,
                    row_start, words.astype(np.uint32), ext_base, ext_mask)


__all__ = ["Matrices", "SynapseList", "add_delay_extensions", "build_matrices", "decode_words",
           "encode_words", "resolve"]
