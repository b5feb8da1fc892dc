"""The backend protocol for graphs with EGRU populations (the graded-event path).

``supports``/``compile``/``run`` of :mod:`neuro.hardware.spinnaker` hand a graph holding an EGRU
node to the functions here (mapping: :mod:`.egru_map`, run: :mod:`.egru_engine`, files:
:mod:`.egru_artifact`). ``Result.spikes`` holds every EGRU population's graded events ``y``
(s16.15 integers, 0 where no event), bit for bit those of the integer reference executor
(an EGRU language model's integer logits are in ``Result.outputs``, ``neuro.graph.egru_lm_int``);
``Result.stats`` (summed over the batch):

``ticks``, ``neuron_updates`` (units x T x B), ``spikes`` (events: units with ``y != 0``),
``packets_sent`` (graded packets of EGRU cores plus the sources' input packets),
``payload_bytes`` (4 per packet: every packet carries a 32-bit payload),
``dense_input_packets`` (the part of ``packets_sent`` sent by dense sources every step),
``router_hops``, ``synaptic_rows_fetched`` (non-empty CSR rows fetched), ``synaptic_events``
(synaptic words processed: one multiply-accumulate of payload x weight each),
``dropped_packets``, ``delay_extension_packets`` (0: this path has no delay extension),
``embedding_row_reads`` (an EGRU LM's Embedding source cores reading the token's row, one per
core and step), ``readout_synaptic_events`` / ``readout_rows_fetched`` / ``readout_updates``
(the decoder's part of ``synaptic_events`` and ``synaptic_rows_fetched``, and its logits
computed: ``V x T x B``),
``routing_entries_per_chip``, ``per_core`` and ``link_capacity_per_tick`` as on the spike path.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from neuro.graph import nodes as N
from neuro.graph.egru_int import Cell
from neuro.graph.egru_lm_int import Readout, embed, registers
from neuro.hardware.base import (
    Result,
    UnsupportedGraph,
    load_artifact_graph,
    prepare_graph,
    write_artifact,
)

from . import egru_artifact, egru_engine
from .egru_map import TARGET, build, graph_problems
from .machine import Machine

#: ``run``'s ``link_capacity_per_tick`` that keeps the artifact's machine
KEEP: Any = object()


def supports(graph: Any, fmt: str | None, machine: Machine | None, formats: tuple[str, ...]
             ) -> list[str]:
    """Every reason the graded-event path cannot run ``graph`` on ``machine``; [] if it can."""
    problems = []
    if fmt is not None and fmt not in formats:
        problems.append(f"number format {fmt!r} is not one of {list(formats)}")
    integer = "format" in graph.metadata
    if integer and graph.metadata["format"].get("name") != TARGET:
        problems.append(f"number format {graph.metadata['format'].get('name')!r}: the SpiNNaker "
                        "simulator runs 'spinnaker' only")
    found = graph_problems(graph, integer)
    if found:
        return problems + found
    try:
        build(graph, machine or Machine(), integer=integer)
    except UnsupportedGraph as exc:
        problems.extend(exc.problems)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def compile(graph: Any, out: str | Path, *, fmt: str | None, calibration_inputs: Any,
            machine: Machine | None, formats: tuple[str, ...]) -> Path:
    """Quantize (if float), map and write the artifact (``UnsupportedGraph`` when it cannot)."""
    q = prepare_graph(TARGET, formats, graph, fmt, calibration_inputs,
                      lambda g, f: supports(g, f, machine, formats))
    try:
        m = build(q, machine or Machine())
    except ValueError as exc:
        if isinstance(exc, UnsupportedGraph):
            raise
        raise UnsupportedGraph(TARGET, [str(exc)]) from None
    info = egru_artifact.describe(m)
    digests: dict[str, str] = info.setdefault("sha256", {})
    return write_artifact(out, target=TARGET, graph=q,
                          write_files=lambda d: egru_artifact.write(d, m, digests),
                          target_info=info, tools=("numpy",))


def int_inputs(graph: Any, x: Any) -> dict[str, np.ndarray]:
    """Integer inputs ``[T, N]``/``[T, B, N]`` (or a dict per Input) as int64 ``[T, B, N]``;
    signed values are allowed (s16.15 inputs of ``input_frac_bits > 0``)."""
    names = graph.inputs()
    if not isinstance(x, dict):
        if len(names) != 1:
            raise ValueError(f"the graph has inputs {names}: pass a dict name -> array")
        x = {names[0]: x}
    out = {}
    for n in names:
        if n not in x:
            raise ValueError(f"no values for input node {n!r}")
        a = np.asarray(x[n])
        want = tuple(graph.nodes[n].shape)
        if a.ndim == len(want) + 1:
            a = a[:, None]
        if a.ndim != len(want) + 2 or tuple(a.shape[2:]) != want:
            raise ValueError(f"input {n!r}: expected [T, {', '.join(map(str, want))}] or "
                             f"[T, B, ...], got shape {tuple(np.shape(x[n]))}")
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"input {n!r}: values must be integers (spikes, counts or s16.15)")
        out[n] = a.astype(np.int64).reshape(a.shape[0], a.shape[1], -1)
    return out


def run(artifact: str | Path, manifest: dict[str, Any], x: Any,
        link_capacity_per_tick: Any = KEEP) -> Result:
    """Run a graded-path artifact on integer inputs ``x`` (``[T, N]``, ``[T, B, N]`` or a dict)."""
    graph = load_artifact_graph(artifact)
    m = egru_artifact.load(artifact, manifest)
    if link_capacity_per_tick is not KEEP:
        m.machine = dataclasses.replace(m.machine, link_capacity_per_tick=link_capacity_per_tick)
    inputs = int_inputs(graph, x)
    src = [p for p in m.populations if p.kind == "source"]
    (T, B), = {inputs[p.lookup or p.name].shape[:2] for p in src}
    xs = np.concatenate([embed(p.name, np.asarray(graph.nodes[p.name].weight), inputs[p.lookup])
                         if p.lookup is not None else inputs[p.name] for p in src], axis=2)
    cells = {n: Cell(n, node) for n, node in graph.nodes.items() if type(node) is N.EGRU}
    heads = {n: Readout(n, graph.nodes[n], r) for n, r in registers(graph)["readout"].items()}
    values, raw = egru_engine.run(m, cells, xs, heads)
    shapes = graph.infer_shapes()
    spikes = {n: v.reshape(T, B, *shapes[n]) for n, v in values.items() if n in cells}
    outputs = {o: (values[p].reshape(T, B, *shapes[p]) if p in values
                   else inputs[p].reshape(T, B, *graph.nodes[p].shape))
               for o, p in m.outputs.items()}
    return Result(spikes, outputs, stats(m, raw))


def stats(m: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """``Result.stats`` of one run (module docstring)."""
    c, pv = raw["counters"], raw["per_vertex"]
    per_core = []
    for v in m.vertices:
        x, y, core = m.machine.core_name(v.core)
        per_core.append({"chip": [x, y], "core": core, "population": v.population, "kind": v.kind,
                         "neurons": v.n, "packets_sent": int(pv[0, v.id]),
                         "packets_received": int(pv[1, v.id]), "synaptic_events": int(pv[2, v.id])})
    entries = {}
    for chip in sorted(m.tables):
        cx, cy = m.machine.chip_xy(chip)
        entries[f"{cx},{cy}"] = int(len(m.tables[chip]))
    return {**{k: int(v) for k, v in c.items()}, "delay_extension_packets": 0,
            "routing_entries_per_chip": entries, "per_core": per_core,
            "link_capacity_per_tick": m.machine.link_capacity_per_tick, "graded": True}


__all__ = ["KEEP", "compile", "int_inputs", "run", "stats", "supports"]
