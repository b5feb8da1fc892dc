"""The event-driven run of a :class:`~.egru_map.GradedMapping`: graded packets, CSR rows, EGRU cores.

One run = the samples one after the other, each from a reset machine (``c = 0``, accumulators
empty), for ``T + latency`` ticks of one step each. Tick ``t``:

1. Update, on every EGRU core whose population is active (``offset <= t < offset + T``; step
   ``s = t - offset``): read the two accumulator banks filled during tick ``t - 1``, turn them
   into gate inputs (``ax = sat(acc_x >> (kf + in_frac - F)) + bx``, ``bh = sat(acc_h >> rf) +
   br``), take the fixed-point EGRU step (``neuro.graph.egru_int.Cell``: the same core routine
   as the integer reference executor) and clear the banks. A readout core (an EGRU LM's decoder)
   turns its input bank into integer logits (``neuro.graph.egru_lm_int.Readout.finish``: the
   reference's routine) and clears it; it sends nothing.
2. Packets, vertex by vertex in placement order: an EGRU core sends one packet per unit that
   emitted (``y != 0``, ascending unit), payload ``y``; a source core sends its step-``t`` values
   (``t < T``): every channel when ``dense``, else the non-zero ones, payload the value (an
   Embedding source first reads the token's row of its table columns: one row read per core and
   step, ``embedding_row_reads``). A packet
   crosses its vertex's multicast tree; a link carries at most ``link_capacity_per_tick`` packets
   per tick (later ones are dropped there). Every reached core fetches the sending atom's row of
   its matrix (one fetch per non-empty row) and adds ``payload x weight`` of every word into
   ``acc[bank][gate, index]``. A packet that would arrive after the target population's last
   step (the recurrent packets of its last step) is not processed there.

Only step 1 is proportional to units x ticks; step 2 is proportional to events x fan-out x row
length, and a pruned row (CSR) holds only non-zero weights. numpy only (no C++ engine for this
path yet).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neuro.graph.egru_int import Cell
from neuro.graph.egru_lm_int import Readout

from .egru_map import GradedMapping, decode_words
from .routing import walk

COUNTERS = ("packets_sent", "payload_bytes", "dense_input_packets", "router_hops",
            "synaptic_rows_fetched", "synaptic_events", "dropped_packets", "neuron_updates",
            "spikes", "ticks", "embedding_row_reads", "readout_synaptic_events",
            "readout_rows_fetched", "readout_updates")
#: bytes of one packet's payload (the graded value y, or an input value)
PAYLOAD_BYTES = 4


class _Tree:
    """A sending vertex's multicast tree: links in breadth-first order with their parent
    position, and the target vertices reached with the position of the link that brings them."""

    def __init__(self, m: GradedMapping, vid: int, core_vertex: dict[int, int]) -> None:
        v = m.vertices[vid]
        links, cores = walk(m.tables, m.machine, v.core // m.machine.cores_per_chip, v.key)
        self.links = [ln for ln, _ in links]
        self.parent = [p for _, p in links]
        self.targets = [(core_vertex[c], pos) for c, pos in cores]


def run(m: GradedMapping, cells: dict[str, Cell], inputs: np.ndarray,
        readouts: dict[str, Readout] | None = None
        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run ``m`` on int64 ``inputs [T, B, S]`` (the sources' values concatenated in placement
    order; an Embedding source's values are its rows). Returns ``({EGRU population: y [T, B, H],
    readout: logits [T, B, V]}, counters and per-vertex counts)``; ``readouts``: the
    :class:`~neuro.graph.egru_lm_int.Readout` of every readout population."""
    readouts = readouts or {}
    T, B, _ = inputs.shape
    if inputs.size and np.abs(inputs).max() >= 2**31:
        raise ValueError("input values must fit the 32-bit packet payload")
    ticks = T + m.latency
    pops = {p.name: p for p in m.populations}
    core_vertex = {v.core: v.id for v in m.vertices}
    mats = {(int(kv), int(tv)): i for i, (kv, tv) in enumerate(zip(m.mat_kv, m.mat_tv))}
    trees = {kv: _Tree(m, kv, core_vertex) for kv in set(m.mat_kv.tolist())}
    src_at, at = {}, 0
    for p in m.populations:
        if p.kind == "source":
            src_at[p.name] = at
            at += p.size
    egrus = [p for p in m.populations if p.kind == "EGRU"]
    heads = [p for p in m.populations if p.kind == "readout"]
    cap = m.machine.link_capacity_per_tick
    cap = np.iinfo(np.int64).max if cap is None else cap
    c = dict.fromkeys(COUNTERS, 0)
    per_vertex = np.zeros((3, len(m.vertices)), np.int64)  # packets sent, received, synaptic events
    out = {p.name: np.zeros((T, B, p.size), np.int64) for p in (*egrus, *heads)}
    link_cnt: dict[int, int] = {}
    for b in range(B):
        state = {p.name: np.zeros(p.size, np.int64) for p in egrus}
        acc = {p.name: np.zeros((2, 3 * p.size), np.int64) for p in (*egrus, *heads)}
        y_now = {p.name: np.zeros(p.size, np.int64) for p in egrus}
        for t in range(ticks):
            for p in egrus:  # 1. update
                s = t - p.offset
                if not 0 <= s < T:
                    y_now[p.name][:] = 0
                    continue
                cell = cells[p.name]
                a = acc[p.name]
                y, state[p.name] = cell.step(cell.gates_x(a[0]), cell.gates_h(a[1]), state[p.name])
                a[:] = 0
                y_now[p.name] = y
                out[p.name][s, b] = y
                c["neuron_updates"] += p.size
                c["spikes"] += int(np.count_nonzero(y))
            for p in heads:  # 1. readout cores: logits of step s
                s = t - p.offset
                if 0 <= s < T:
                    a = acc[p.name]
                    out[p.name][s, b] = readouts[p.name].finish(a[0, :p.size])
                    a[:] = 0
                    c["readout_updates"] += p.size
            link_cnt.clear()
            for v in m.vertices:  # 2. packets
                tree = trees.get(v.id)
                p = pops[v.population]
                if p.kind == "readout":
                    continue
                if p.kind == "source":
                    if t >= T:
                        continue
                    vals = inputs[t, b, src_at[p.name] + v.lo:src_at[p.name] + v.lo + v.n]
                    atoms = np.arange(v.n) if p.dense else np.flatnonzero(vals)
                    if p.lookup is not None:
                        c["embedding_row_reads"] += 1
                else:
                    vals = y_now[p.name][v.lo:v.lo + v.n]
                    atoms = np.flatnonzero(vals)
                k = atoms.size
                if tree is None or k == 0:
                    continue
                payload = vals[atoms]
                c["packets_sent"] += k
                c["payload_bytes"] += PAYLOAD_BYTES * k
                if p.kind == "source" and p.dense:
                    c["dense_input_packets"] += k
                per_vertex[0, v.id] += k
                passes: list[int] = []
                for q, link in enumerate(tree.links):
                    par = tree.parent[q]
                    reach = k if par < 0 else passes[par]
                    used = link_cnt.get(link, 0)
                    pq = min(reach, max(0, cap - used))
                    passes.append(pq)
                    link_cnt[link] = used + pq
                    c["router_hops"] += pq
                    c["dropped_packets"] += reach - pq
                for tv, pos in tree.targets:
                    got = k if pos < 0 else passes[pos]
                    target = m.vertices[tv]
                    if got == 0 or t + 1 >= pops[target.population].offset + T:
                        continue  # nothing arrives, or it arrives after the target's last step
                    per_vertex[1, tv] += got
                    mi = mats[(v.id, tv)]
                    rows = m.mat_row0[mi] + atoms[:got]
                    start = m.row_start[rows]
                    length = m.row_start[rows + 1] - start
                    events = int(length.sum())
                    c["synaptic_rows_fetched"] += int(np.count_nonzero(length))
                    c["synaptic_events"] += events
                    if pops[target.population].kind == "readout":
                        c["readout_synaptic_events"] += events
                        c["readout_rows_fetched"] += int(np.count_nonzero(length))
                    per_vertex[2, tv] += events
                    if not events:
                        continue
                    idx = np.repeat(start - np.cumsum(length) + length, length) + np.arange(events)
                    w, bank, gate, index = decode_words(m.words[idx])
                    H = pops[target.population].size
                    np.add.at(acc[target.population], (bank, gate * H + target.lo + index),
                              np.repeat(payload[:got], length) * w)
        c["ticks"] += ticks
    return out, {"counters": c, "per_vertex": per_vertex}


__all__ = ["COUNTERS", "PAYLOAD_BYTES", "run"]
