"""The event-driven simulator: timer ticks, AER multicast packets, synaptic rows, ring buffers.

One tick is one step of the graph (``dt``: SpiNNaker's 1 ms timer period by default).

Two engines run the same algorithm on a :class:`Program` and give identical results: numpy (this
file) and C++ (``csrc/spinnaker_sim.cpp``, built on first use). One run = the samples of the batch
one after the other, each from a reset machine (zero state, empty buffers), for ``T + latency``
ticks. Tick ``t``:

1. Neuron update, on every core whose population is active (``offset <= t < offset + T``), for
   every neuron (the only work proportional to neurons x ticks)::

       x = ring[t mod 16][n] ;  ring[t mod 16][n] = 0
       u = sat(floor(u alpha_m / 2^15) + x) ;  x = u                   (CubaLIF only)
       v = sat(floor(v beta_m / 2^15) + x + bias)                      (sat: s16.15, 32 bits)
       spike = v >= vth ;  v = 0 (or v - vth) where spike              (LIF, CubaLIF, IF)

   LI populations record ``v``; spiking ones record the spike.
2. Packets, vertex by vertex in placement order: a neuron core sends one packet per spike of the
   tick (atoms in ascending order), a spike-source core one per input spike (``count`` packets for
   an input value ``count``), a delay-extension core the packets due this tick (sorted by key).
   A packet crosses the links of its vertex's multicast tree; a link carries at most
   ``link_capacity_per_tick`` packets per tick (the first ones, in this order), later packets are
   dropped on that link and never reach the cores below it. Every reached core looks up the
   key's synaptic row (one row fetch per non-empty row) and adds each synaptic word's
   ``+-(weight << shift)`` into ``ring[(t + delay) mod 16][index]``; a delay-extension core
   queues the packet for ``t + 16 j`` for each stage ``j`` in the atom's stage mask.

The work per tick is the neuron update plus packets x (tree links + reached cores + row words):
spikes x fan-out. Ring-buffer slots are exact integer accumulators: 64-bit, or 32-bit in the C++
engine when no slot can exceed 32 bits (``Program.narrow_ring``). sPyNNaker's are 16-bit
saturating words; the reference executor's sums do not saturate, and equality with it is the
contract.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .machine import RING_SLOTS
from .program import DEST_MATRIX, KIND_EXT, KIND_NEURONS, KIND_SOURCE, Program
from .synapses import decode_words

COUNTERS = ("packets_sent", "delay_extension_packets", "router_hops", "synaptic_rows_fetched",
            "synaptic_events", "dropped_packets", "neuron_updates", "spikes", "ticks")
_SOURCE = Path(__file__).with_name("csrc") / "spinnaker_sim.cpp"
_EXT_NAME = "neuro_spinnaker"


def cpp_available() -> bool:
    """Whether the C++ engine is built and loaded (builds it on the first call)."""
    from neuro.kernels.extension import load_extension

    return load_extension(_EXT_NAME, _SOURCE, "run")


def cpp_error() -> str | None:
    """Why the C++ engine is not available (None when it is, or was never tried)."""
    from neuro.kernels.extension import extension_error

    return extension_error(_EXT_NAME)


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = cpp_available
build_error = cpp_error


@dataclass
class SimResult:
    """One run's output: spikes as events (reference step, sample, global neuron), LI membranes
    ``[T, B, n_li]`` (int32), counters (:data:`COUNTERS`, summed over the batch) and per-vertex
    ``[2, V]`` (packets received, synaptic events)."""

    T: int
    B: int
    spikes: np.ndarray
    membranes: np.ndarray
    counters: dict[str, int]
    per_vertex: np.ndarray

    def dense(self, prog: Program) -> np.ndarray:
        """Every neuron's values int64 ``[T, B, n_neurons]``: 0/1 spikes, LI membranes."""
        out = np.zeros((self.T, self.B, prog.n_neurons), np.int64)
        if self.spikes.size:
            out[self.spikes[:, 0], self.spikes[:, 1], self.spikes[:, 2]] = 1
        for p in np.flatnonzero(prog.pop_li_col >= 0).tolist():
            s0, n, col = int(prog.pop_start[p]), int(prog.pop_size[p]), int(prog.pop_li_col[p])
            out[:, :, s0:s0 + n] = self.membranes[:, :, col:col + n]
        return out


def simulate(prog: Program, inputs: np.ndarray, *, engine: str = "auto") -> SimResult:
    """Run ``prog`` on ``inputs`` (int64 ``[T, B, S]``: every spike source's input spikes, the
    sources concatenated in placement order); ``engine``: ``"cpp"``, ``"numpy"`` or ``"auto"``
    (C++ when it can be built). Values are aligned with the reference steps."""
    if engine not in ("auto", "cpp", "numpy"):
        raise ValueError(f"engine must be 'auto', 'cpp' or 'numpy', got {engine!r}")
    x = np.ascontiguousarray(inputs, np.int64)
    if x.ndim != 3 or x.shape[2] != int(prog.src_size.sum()):
        raise ValueError(f"inputs must be [T, B, {int(prog.src_size.sum())}], got {x.shape}")
    if engine == "cpp" or (engine == "auto" and cpp_available()):
        if not cpp_available():
            raise ValueError(f"the C++ SpiNNaker engine is not available ({cpp_error()})")
        return _run_cpp(prog, x)
    return _run_numpy(prog, x)


#: Program fields the C++ engine reads, in the order of its ``Array`` enum
CPP_ARRAYS = ("pop_start", "pop_size", "pop_offset", "pop_spiking", "pop_cuba", "pop_subtract",
              "pop_li_col", "bias", "beta_m", "alpha_m", "vth", "src_start", "v_kind", "v_pop",
              "v_lo", "v_n", "v_src_n", "v_ext_base", "tree_ptr", "tree_link", "tree_parent",
              "dest_ptr", "dest_node", "dest_kind", "dest_target", "dest_vertex", "mat_rowbase",
              "mat_stride", "row_start", "ext_mask", "sim_word", "blk_start",
              "v_countbase")
CPP_SCALARS = ("n_neurons", "n_li", "latency", "max_stages", "n_links", "link_capacity",
               "decay_bits", "state_min", "state_max")  # + narrow (computed per run)


def _run_cpp(prog: Program, x: np.ndarray) -> SimResult:
    import torch

    def tensor(a: np.ndarray) -> torch.Tensor:
        a = a if a.dtype == np.int32 else a.astype(np.int64, copy=False)
        return torch.from_numpy(np.ascontiguousarray(a))

    arrays = [tensor(getattr(prog, f)) for f in CPP_ARRAYS]
    scalars = [int(getattr(prog, f)) for f in CPP_SCALARS] + [int(prog.narrow_ring(x))]
    spikes, membranes, counters, per_vertex, atom_count = torch.ops.neuro_spinnaker.run(
        arrays, scalars, torch.from_numpy(x))
    c = dict(zip(COUNTERS, counters.tolist()))
    per_vertex = per_vertex.numpy().copy()
    _fast_path_stats(prog, atom_count.numpy(), c, per_vertex)
    return SimResult(x.shape[0], x.shape[1], spikes.numpy(), membranes.numpy(), c, per_vertex)


def _fast_path_stats(prog: Program, atom_count: np.ndarray, c: dict[str, int],
                     per_vertex: np.ndarray) -> None:
    """Row statistics of the packets the C++ fast path delivered whole: each of the
    ``atom_count`` packets of a key vertex's atom fetched that atom's non-empty rows on every
    target core and processed their words."""
    for v, (lens, nonempty) in prog.row_blocks().items():
        counts = atom_count[prog.v_countbase[v]:prog.v_countbase[v] + lens.shape[0]]
        if not counts.any():
            continue
        c["synaptic_rows_fetched"] += int(counts @ nonempty)
        per_matrix = counts @ lens
        c["synaptic_events"] += int(per_matrix.sum())
        first = int(prog.v_firstmat[v])
        per_vertex[1, prog.mat_vertex[first:first + lens.shape[1]]] += per_matrix


def _run_numpy(P: Program, x: np.ndarray) -> SimResult:
    T, B, _ = x.shape
    N, nv = P.n_neurons, len(P.v_kind)
    ticks = T + P.latency
    membranes = np.zeros((T, B, P.n_li), np.int32)
    record: list[np.ndarray] = []
    H = RING_SLOTS * P.max_stages + 1
    cap = P.link_capacity if P.link_capacity >= 0 else np.iinfo(np.int64).max
    db, smin, smax = P.decay_bits, P.state_min, P.state_max
    c = dict.fromkeys(COUNTERS, 0)
    per_vertex = np.zeros((2, nv), np.int64)
    link_cnt = np.zeros(P.n_links, np.int64)
    pops = range(len(P.pop_size))
    for b in range(B):
        v = np.zeros(N, np.int64)
        u = np.zeros(N, np.int64)
        ring = np.zeros((RING_SLOTS, N), np.int64)
        spk = np.zeros(N, bool)
        pending: dict[int, list[list[np.ndarray]]] = {
            e: [[] for _ in range(H)] for e in np.flatnonzero(P.v_kind == KIND_EXT).tolist()}
        for t in range(ticks):
            # 1. neuron update
            slot = t & (RING_SLOTS - 1)
            xin = ring[slot].copy()
            ring[slot] = 0
            spk[:] = False
            for p in pops:
                off = int(P.pop_offset[p])
                if not off <= t < off + T:
                    continue
                s0, n = int(P.pop_start[p]), int(P.pop_size[p])
                sl = slice(s0, s0 + n)
                xi = xin[sl]
                if P.pop_cuba[p]:
                    u[sl] = np.clip(((u[sl] * P.alpha_m[sl]) >> db) + xi, smin, smax)
                    xi = u[sl]
                vv = np.clip(((v[sl] * P.beta_m[sl]) >> db) + xi + P.bias[sl], smin, smax)
                if P.pop_spiking[p]:
                    s = vv >= P.vth[sl]
                    vv = np.where(s, vv - P.vth[sl] if P.pop_subtract[p] else 0, vv)
                    spk[sl] = s
                    fired = np.flatnonzero(s) + s0
                    record.append(np.stack([np.full(fired.size, t - off), np.full(fired.size, b),
                                            fired], 1))
                    c["spikes"] += int(fired.size)
                else:
                    col = int(P.pop_li_col[p])
                    membranes[t - off, b, col:col + n] = vv
                v[sl] = vv
                c["neuron_updates"] += n
            # 2. packets, vertex by vertex
            touched: list[int] = []
            for vid in range(nv):
                kind = int(P.v_kind[vid])
                lo, n = int(P.v_lo[vid]), int(P.v_n[vid])
                if kind == KIND_NEURONS:
                    p = int(P.v_pop[vid])
                    off = int(P.pop_offset[p])
                    if not (off <= t < off + T and P.pop_spiking[p]):
                        continue
                    g0 = int(P.pop_start[p]) + lo
                    atoms = np.flatnonzero(spk[g0:g0 + n])
                elif kind == KIND_SOURCE:
                    if t >= T:
                        continue
                    s0 = int(P.src_start[P.v_pop[vid]]) + lo
                    atoms = np.repeat(np.arange(n), x[t, b, s0:s0 + n])
                else:
                    due = pending[vid][t % H]
                    atoms = np.sort(np.concatenate(due)) if due else np.zeros(0, np.int64)
                    pending[vid][t % H] = []
                d0, d1 = int(P.dest_ptr[vid]), int(P.dest_ptr[vid + 1])
                k = atoms.size
                if k == 0 or d0 == d1:
                    continue
                c["packets_sent"] += k
                if kind == KIND_EXT:
                    c["delay_extension_packets"] += k
                l0, l1 = int(P.tree_ptr[vid]), int(P.tree_ptr[vid + 1])
                passes = np.zeros(l1 - l0, np.int64)
                for q in range(l1 - l0):
                    par = int(P.tree_parent[l0 + q])
                    reach = k if par < 0 else int(passes[par])
                    link = int(P.tree_link[l0 + q])
                    pq = min(reach, max(0, cap - int(link_cnt[link])))
                    passes[q] = pq
                    link_cnt[link] += pq
                    touched.append(link)
                    c["router_hops"] += pq
                    c["dropped_packets"] += reach - pq
                for d in range(d0, d1):
                    node = int(P.dest_node[d])
                    got = k if node < 0 else int(passes[node])
                    if got == 0:
                        continue
                    recv = atoms[:got]
                    tv = int(P.dest_vertex[d])
                    per_vertex[0, tv] += got
                    target = int(P.dest_target[d])
                    if P.dest_kind[d] == DEST_MATRIX:
                        rows = P.mat_rowbase[target] + recv * P.mat_stride[target]
                        start = P.row_start[rows]
                        length = P.row_start[rows + 1] - start
                        events = int(length.sum())
                        c["synaptic_rows_fetched"] += int(np.count_nonzero(length))
                        c["synaptic_events"] += events
                        per_vertex[1, tv] += events
                        if events:
                            idx = np.repeat(start - np.cumsum(length) + length, length) + np.arange(events)
                            mag, delay, inh, index = decode_words(P.words[idx])
                            val = np.where(inh == 1, -mag, mag) << P.mat_shift[target]
                            np.add.at(ring, ((t + delay) & (RING_SLOTS - 1), P.mat_tbase[target] + index), val)
                    else:
                        base, n_src = int(P.v_ext_base[target]), int(P.v_src_n[target])
                        masks = P.ext_mask[base + recv]
                        for j in range(1, int(P.v_n[target]) // n_src + 1):
                            sel = recv[(masks >> j) & 1 == 1]
                            if sel.size:
                                pending[target][(t + RING_SLOTS * j) % H].append((j - 1) * n_src + sel)
            link_cnt[touched] = 0
        c["ticks"] += ticks
    spikes = np.concatenate(record) if record else np.zeros((0, 3), np.int64)
    return SimResult(T, B, spikes.astype(np.int64), membranes, c, per_vertex)


def make_stats(mapping: Any, sim: SimResult) -> dict[str, Any]:
    """``Result.stats`` (keys documented in the package docstring)."""
    counters, per_vertex = sim.counters, sim.per_vertex
    machine = mapping.machine
    per_core = []
    for v in mapping.vertices:
        x, y, core = machine.core_name(v.core)
        per_core.append({"chip": [x, y], "core": core, "population": v.population, "kind": v.kind,
                         "neurons": v.n if v.kind != "delay_extension" else v.n // max(v.stages, 1),
                         "synaptic_events": int(per_vertex[1, v.id]),
                         "packets_received": int(per_vertex[0, v.id])})
    entries = {}
    for chip in sorted(mapping.tables):
        x, y = machine.chip_xy(chip)
        entries[f"{x},{y}"] = int(len(mapping.tables[chip]))
    return {
        "ticks": int(counters["ticks"]),
        "packets_sent": int(counters["packets_sent"]),
        "router_hops": int(counters["router_hops"]),
        "synaptic_rows_fetched": int(counters["synaptic_rows_fetched"]),
        "synaptic_events": int(counters["synaptic_events"]),
        "dropped_packets": int(counters["dropped_packets"]),
        "neuron_updates": int(counters["neuron_updates"]),
        "spikes": int(counters["spikes"]),
        "delay_extension_packets": int(counters["delay_extension_packets"]),
        "routing_entries_per_chip": entries,
        "per_core": per_core,
        "link_capacity_per_tick": machine.link_capacity_per_tick,
    }


__all__ = ["COUNTERS", "SimResult", "cpp_available", "make_stats", "simulate"]
