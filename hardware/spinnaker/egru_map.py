"""EGRU populations on the SpiNNaker machine: graded-event projections, CSR rows, placement.

A quantized graph of ``Input`` -> EGRU -> ... -> EGRU -> ``Output`` (``neuro.graph.egru_int``)
becomes a :class:`GradedMapping`, separate from the spike path (``network``/``mapper``) because
its packets carry a payload and its rows hold gate-tagged signed weights:

* **populations**: every ``Input`` (a source core sends its values) and every EGRU (a core holds up
  to ``neurons_per_core`` units: their states ``c`` and two banks of ``3 x units`` 64-bit
  accumulators, *input* and *recurrent*). An EGRU language model (``neuro.graph.egru_lm_int``)
  adds an ``Embedding`` source (``kind="source"``, ``lookup`` = the Input of one-hot tokens; its
  cores hold the columns ``Eq[:, atoms]`` of the integer table and send, every step, the token's
  row as dense values; the one-hot Input itself gets no core) and a *readout* population for the
  decoder ``Affine`` (``kind="readout"``: ``V`` accumulators fed by the last EGRU's graded packets
  through CSR rows of ``Wq^T``, turned into integer logits ``sat((acc >> kf) + bq)`` one tick
  later; it sends nothing);
* **packets**: multicast AER packets with a 32-bit payload. An EGRU unit sends one only when it
  emits (``y != 0``; payload ``y``, s16.15). An ``Input`` read with fraction bits (``in_frac >
  0``: dense real values such as an embedding) sends every channel every step; one read as spikes
  or counts (``in_frac = 0``) sends its non-zero values;
* **projections**: for EGRU ``E`` fed by population ``P``, the rows of ``E``'s kernel ``Wq`` (one
  row per atom of ``P``: the non-zero weights of ``Wq[i, :]``), into the input bank; and ``E``'s
  recurrent kernel ``Rq`` from ``E`` to itself, into the recurrent bank. Pruned (zero) weights are
  not stored: the rows are the CSR form of the matrices;
* **synaptic words** (32 bits)::

      bits 31..16  weight (16-bit two's complement mantissa)
      bit  13      bank   (0 input, 1 recurrent)
      bits 12..11  gate   (0 z, 1 r, 2 n)
      bits 10..0   unit index within the target core

  A receiving core adds ``payload x weight`` into ``acc[bank][gate, index]`` (exact, 64 bits);
* **timing**: every projection takes one tick, so a population ``P`` runs with offset
  ``k_P = 1 + k`` of its inputs (sources ``k = 0``); its reference step ``s`` is tick ``s + k_P``,
  its recurrent packets of tick ``t`` are read on ``t + 1`` (step ``s + 1``). Inputs of one
  EGRU must share one offset (a skip connection would need a delay buffer: refused).

Keys, placement, router tables and the multicast trees are the spike path's
(``placement``, ``routing``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.egru_lm_int import lm_parts, lm_problems, registers
from neuro.hardware.base import UnsupportedGraph

from .machine import Machine
from .placement import Vertex, place
from .routing import allocate_keys, build_tables

TARGET = "spinnaker"
#: node kinds the graded-event path runs (exact classes; an Affine only as a graded readout)
KINDS = (N.Input, N.Output, N.EGRU, LM.Embedding, N.Affine)
WEIGHT_SHIFT, BANK_SHIFT, GATE_SHIFT = 16, 13, 11
INDEX_MASK = (1 << 11) - 1
BANKS = ("input", "recurrent")


def encode_words(weight: np.ndarray, bank: np.ndarray, gate: np.ndarray,
                 index: np.ndarray) -> np.ndarray:
    """32-bit graded synaptic words (module docstring); ``weight`` in ``[-2^15, 2^15)``."""
    w = weight.astype(np.int64) & 0xFFFF
    return ((w << WEIGHT_SHIFT) | (bank.astype(np.int64) << BANK_SHIFT)
            | (gate.astype(np.int64) << GATE_SHIFT) | index.astype(np.int64)).astype(np.uint32)


def decode_words(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(signed weight, bank, gate, index)`` of graded synaptic words."""
    w = words.astype(np.uint32)
    return ((w >> WEIGHT_SHIFT).astype(np.uint16).view(np.int16).astype(np.int64),
            ((w >> BANK_SHIFT) & 1).astype(np.int64), ((w >> GATE_SHIFT) & 3).astype(np.int64),
            (w & INDEX_MASK).astype(np.int64))


@dataclass
class GradedPopulation:
    """An ``Input`` or ``Embedding`` (``kind="source"``; ``dense``: sends every value every step;
    ``lookup``: an Embedding's token Input), an EGRU population of ``size`` units, or a readout
    (``kind="readout"``, the decoder's ``size`` logits), with latency ``offset`` (ticks)."""

    name: str
    kind: str
    size: int
    offset: int
    dense: bool = False
    lookup: str | None = None  # an Embedding source: the Input of one-hot tokens it reads


@dataclass
class GradedProjection:
    """Weights ``[pre size, gates x post size]`` (gate-major columns ``g H + unit``; ``gates`` 3
    into an EGRU, 1 into a readout) from ``pre`` into bank ``bank`` of ``post``."""

    name: str
    pre: str
    post: str
    bank: int
    weight: np.ndarray
    gates: int = 3


@dataclass
class GradedMapping:
    """An EGRU network on a machine (module docstring). Matrix ``m`` holds the rows of key vertex
    ``mat_kv[m]`` for target vertex ``mat_tv[m]``: atom ``a``'s words are
    ``words[row_start[r]:row_start[r + 1]]`` with ``r = mat_row0[m] + a``."""

    machine: Machine
    populations: list[GradedPopulation]
    vertices: list[Vertex]
    mat_kv: np.ndarray
    mat_tv: np.ndarray
    mat_row0: np.ndarray
    row_start: np.ndarray
    words: np.ndarray
    tables: dict[int, np.ndarray]
    outputs: dict[str, str]
    projections: list[dict[str, Any]] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)  # Embedding source -> vocabulary V

    @property
    def latency(self) -> int:
        return max((p.offset for p in self.populations), default=0)

    def population(self, name: str) -> GradedPopulation:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def row_bytes(self) -> np.ndarray:
        """Synaptic-row memory (address words + synaptic words, 4 bytes each) per vertex, plus
        an Embedding source core's table columns (``V x atoms`` 32-bit values)."""
        out = np.zeros(len(self.vertices), np.int64)
        for v in self.vertices:
            p = self.population(v.population)
            if p.lookup is not None:
                out[v.id] += 4 * v.n * self.table_rows.get(p.name, 0)
        for m, (kv, tv) in enumerate(zip(self.mat_kv.tolist(), self.mat_tv.tolist())):
            n = self.vertices[kv].n
            r0 = int(self.mat_row0[m])
            out[tv] += 4 * (n + int(self.row_start[r0 + n] - self.row_start[r0]))
        return out

    def dest_cores(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for kv, tv in zip(self.mat_kv.tolist(), self.mat_tv.tolist()):
            out.setdefault(kv, set()).add(self.vertices[tv].core)
        return out


def has_egru(graph: Any) -> bool:
    """Whether ``graph`` holds an EGRU population (it then runs on this path)."""
    return any(type(n) is N.EGRU for n in graph.nodes.values())


def graph_problems(graph: Any, integer: bool) -> list[str]:
    """Every reason a graph with EGRU populations cannot run on the graded-event path."""
    problems = []
    _, readouts = lm_parts(graph)
    for name, node in graph.nodes.items():
        if type(node) not in KINDS or (type(node) is N.Affine and name not in readouts):
            problems.append(f"node {name!r} ({node.kind}): a graph with EGRU populations runs on the "
                            "SpiNNaker simulator's graded-event path, which holds Input, EGRU, "
                            "Output nodes, an Embedding of one-hot tokens and a decoder Affine "
                            "reading an EGRU only (EGRU next to spiking LIF populations or other "
                            "synapse nodes is not implemented)")
    if problems:
        return problems
    problems += lm_problems(graph)
    for name, node in graph.nodes.items():
        preds = graph.predecessors(name)
        if node.role == "output" and (len(preds) != 1 or graph.nodes[preds[0]].role == "output"
                                      or type(graph.nodes[preds[0]]) is LM.Embedding):
            problems.append(f"output {name!r}: must read one EGRU population, decoder or Input")
        if type(node) is N.EGRU and integer and node.q is None:
            problems.append(f"node {name!r} (EGRU): no integer registers (run quantize first)")
        if name in readouts and integer and name not in registers(graph)["readout"]:
            problems.append(f"node {name!r} (Affine): no graded-readout registers (run quantize "
                            "first)")
    try:
        _offsets(graph)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def _offsets(graph: Any) -> dict[str, int]:
    off: dict[str, int] = {}
    for name in graph.schedule().order:
        node = graph.nodes[name]
        if node.role == "input" or type(node) is LM.Embedding:
            off[name] = 0
        elif type(node) is N.Affine:  # a graded readout: one tick after its EGRU
            off[name] = off[graph.predecessors(name)[0]] + 1
        elif type(node) is N.EGRU:
            ks = {off[p] for p in graph.predecessors(name)}
            if len(ks) != 1:
                raise ValueError(f"node {name!r} (EGRU): its inputs {graph.predecessors(name)} reach "
                                 f"the machine at different latencies {sorted(ks)} (a skip "
                                 "connection needs a delay buffer, not implemented on the "
                                 "graded-event path)")
            off[name] = ks.pop() + 1
    return off


def build(graph: Any, machine: Machine, *, integer: bool = True) -> GradedMapping:
    """Map a quantized graph (``integer=False``: a float graph, placeholder weights, for resource
    checks) onto ``machine``; :class:`UnsupportedGraph` for what cannot run, ``ValueError`` naming
    the population and the limit for what does not fit."""
    problems = graph_problems(graph, integer)
    if problems:
        raise UnsupportedGraph(TARGET, problems)
    shapes = graph.infer_shapes()
    off = _offsets(graph)
    egrus = [n for n in graph.schedule().order if type(graph.nodes[n]) is N.EGRU]
    embeddings, readouts = lm_parts(graph)
    dense_inputs = {p for e in egrus for p in graph.predecessors(e)
                    if (graph.nodes[p].role == "input" or p in embeddings)
                    and (not integer or int((graph.nodes[e].q or {}).get("in_frac", 0)) > 0)}
    looked_up = {graph.predecessors(e)[0] for e in embeddings}
    pops = [GradedPopulation(n, "source", int(np.prod(shapes[n])), 0, n in dense_inputs)
            for n in graph.inputs() if n not in looked_up
            or any(s not in embeddings for s in graph.successors(n))]
    pops += [GradedPopulation(n, "source", int(shapes[n][0]), 0, n in dense_inputs,
                              lookup=graph.predecessors(n)[0]) for n in embeddings]
    pops += [GradedPopulation(n, "EGRU", int(shapes[n][0]), off[n]) for n in egrus]
    pops += [GradedPopulation(n, "readout", int(shapes[n][0]), off[n]) for n in readouts]
    table_rows = {n: int(np.shape(graph.nodes[n].weight)[0]) for n in embeddings}
    projs = []
    for ro in readouts:
        w = np.asarray(graph.nodes[ro].weight)
        w = w if integer else (w != 0)
        src = graph.predecessors(ro)[0]
        projs.append(GradedProjection(f"{ro}:readout<-{src}", src, ro, 0,
                                      np.ascontiguousarray(w.T).astype(np.int64), gates=1))
    for e in egrus:
        node = graph.nodes[e]
        k, r = np.asarray(node.kernel), np.asarray(node.recurrent_kernel)
        if not integer:
            k, r = (k != 0).astype(np.int64), (r != 0).astype(np.int64)
        for p in graph.predecessors(e):
            projs.append(GradedProjection(f"{e}:input<-{p}", p, e, 0, k.astype(np.int64)))
        projs.append(GradedProjection(f"{e}:recurrent", e, e, 1, r.astype(np.int64)))
    outputs = {o: graph.predecessors(o)[0] for o in graph.outputs()}
    per_core = {p.name: min(machine.neurons_per_core, p.size) for p in pops}
    while True:
        m = _mapping(machine, pops, projs, per_core, outputs)
        m.table_rows = table_rows
        over = sorted({m.vertices[i].population
                       for i in np.flatnonzero(m.row_bytes() > machine.row_memory_per_core)})
        if not over:
            break
        for name in over:
            if per_core[name] == 1:
                raise ValueError(f"population {name!r}: the synaptic rows of one unit need more than "
                                 f"the per-core budget of {machine.row_memory_per_core} bytes")
            per_core[name] = max(1, per_core[name] // 2)
    place(m.vertices, machine)
    dest = m.dest_cores()
    allocate_keys(m.vertices, set(dest))
    m.tables = build_tables(m.vertices, dest, machine)
    return m


def _mapping(machine: Machine, pops: list[GradedPopulation], projs: list[GradedProjection],
             per_core: dict[str, int], outputs: dict[str, str]) -> GradedMapping:
    vertices: list[Vertex] = []
    by_pop: dict[str, list[Vertex]] = {}
    for p in pops:
        for lo in range(0, p.size, per_core[p.name]):
            v = Vertex(len(vertices), {"source": "source", "readout": "readout"}.get(p.kind, "egru"),
                       p.name, lo, min(per_core[p.name], p.size - lo))
            vertices.append(v)
            by_pop.setdefault(p.name, []).append(v)
    # (key vertex, target vertex) -> [(atoms, words)] of every projection
    rows: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    summary = []
    for pr in projs:
        H = pr.weight.shape[1] // pr.gates
        nnz = 0
        for kv in by_pop[pr.pre]:
            block = pr.weight[kv.lo:kv.lo + kv.n]
            for tv in by_pop[pr.post]:
                cols = (np.arange(pr.gates)[:, None] * H + tv.lo + np.arange(tv.n)[None, :]).reshape(-1)
                sub = block[:, cols]  # [atoms, gates x units], gate-major
                a, j = np.nonzero(sub)
                if a.size == 0:
                    continue
                nnz += a.size
                words = encode_words(sub[a, j], np.full(a.size, pr.bank), j // tv.n, j % tv.n)
                rows.setdefault((kv.id, tv.id), []).append((a, words))
        summary.append({"name": pr.name, "pre": pr.pre, "post": pr.post, "bank": BANKS[pr.bank],
                        "synapses": int(nnz), "weights": int(pr.weight.size)})
    keys = sorted(rows)
    starts: list[np.ndarray] = [np.zeros(1, np.int64)]
    chunks: list[np.ndarray] = []
    row0: list[int] = []
    at = n_rows = 0
    for key in keys:
        atoms = np.concatenate([a for a, _ in rows[key]])
        ws = np.concatenate([w for _, w in rows[key]])
        order = np.argsort(atoms, kind="stable")  # one row per atom, projection order inside
        n = vertices[key[0]].n
        row0.append(n_rows)
        starts.append(at + np.cumsum(np.bincount(atoms, minlength=n)))
        chunks.append(ws[order])
        at += ws.size
        n_rows += n
    row_start = np.concatenate(starts)
    return GradedMapping(
        machine, pops, vertices, np.array([k for k, _ in keys], np.int64),
        np.array([t for _, t in keys], np.int64), np.array(row0, np.int64),
        row_start.astype(np.int64),
        np.concatenate(chunks).astype(np.uint32) if chunks else np.zeros(0, np.uint32),
        {}, outputs, summary)


__all__ = ["GradedMapping", "GradedPopulation", "GradedProjection", "build", "decode_words",
           "encode_words", "graph_problems", "has_egru"]
