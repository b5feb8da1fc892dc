"""The SpiNNaker artifact's own files: writer and reader of a :class:`Mapping`.

Files (next to ``manifest.json`` and ``graph/``, see ``neuro.hardware.base``)::

    placement.json   machine, number format, populations (kind, size, shape, reset, latency
                     offset, ring-buffer shift), outputs, projections (synapses, machine delays),
                     vertices (population slice or delay extension -> chip, core, key, mask) and
                     the synaptic-row bytes of each core
    neurons.npz      bias, beta_m, alpha_m, vth of every neuron population, concatenated in the
                     order of placement.json's neuron populations (int64, state units)
    routing.npz      router tables: for table i, chip[i] (chip index y * width + x) and rows
                     entry_ptr[i]..entry_ptr[i+1] of key, mask, route (uint32)
    synapses.npz     synaptic matrices (key_vertex, target_vertex, rowbase, stride, row_start,
                     words),
                     delay-extension stage masks (ext_base, ext_mask) and the master population
                     tables (mpt_core, mpt_key, mpt_mask, mpt_matrix)
    summary.txt      the same for a human: machine, placement, keys, routing tables, matrices

:func:`load_mapping` checks every file (``ArtifactError`` naming it) and that the master
population tables agree with the matrices and keys.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np

from neuro.graph.formats import get_format
from neuro.hardware.base import ArtifactError

from .machine import LINK_NAMES, RING_SLOTS, Machine
from .mapper import Mapping
from .network import Population
from .placement import Vertex
from .synapses import Matrices

FILES = {
    "placement.json": "machine, populations, projections, vertices -> chip/core/key/mask",
    "neurons.npz": "neuron parameters (s16.15 integers)",
    "routing.npz": "router tables per chip (key, mask, route)",
    "synapses.npz": "synaptic matrices, delay-extension stage masks, master population tables",
    "summary.txt": "human-readable summary of placement, routing and synaptic matrices",
}
DATA_FILES = ("placement.json", "neurons.npz", "routing.npz", "synapses.npz")
_NEURON_FIELDS = ("bias", "beta_m", "alpha_m", "vth")
_MATRIX_FIELDS = ("key_vertex", "target_vertex", "rowbase", "stride", "row_start", "words",
                  "ext_base", "ext_mask")


def write_mapping(d: Path, m: Mapping) -> dict[str, str]:
    """Write the files of mapping ``m`` into directory ``d``; returns ``{file: description}``
    (:func:`neuro.hardware.base.write_artifact` records every file's SHA-256)."""
    machine = m.machine
    neurons = [p for p in m.populations if not p.is_source]
    placement = {
        "machine": machine.to_dict(),
        "number_format": m.fmt.name,
        "populations": [{"name": p.name, "kind": p.kind, "size": p.size, "shape": list(cast(tuple[int, ...], p.shape)),
                         "reset": p.reset, "offset": m.offsets[p.name], "shift": m.shifts[p.name]}
                        for p in m.populations],
        "outputs": m.outputs,
        "projections": m.projections,
        "vertices": [{**v.to_dict(), "chip": list(machine.core_name(v.core)[:2]),
                      "chip_core": machine.core_name(v.core)[2]} for v in m.vertices],
        "row_bytes": [int(b) for b in m.row_bytes],
    }
    (d / "placement.json").write_text(json.dumps(placement, indent=1))
    np.savez(d / "neurons.npz", **{f: (np.concatenate([getattr(p, f) for p in neurons])  # type: ignore[arg-type]
                                       if neurons else np.zeros(0, np.int64)) for f in _NEURON_FIELDS})
    chips = sorted(m.tables)
    rows = [m.tables[c] for c in chips]
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    allrows = np.concatenate(rows) if rows else np.zeros((0, 3), np.uint32)
    np.savez(d / "routing.npz", chip=np.asarray(chips, np.int64), entry_ptr=ptr,
             key=allrows[:, 0], mask=allrows[:, 1], route=allrows[:, 2])
    mpt = m.master_population_table()
    mpt_rows = [(c, k, mk, mat) for c in sorted(mpt) for k, mk, mat in mpt[c]]
    mp = np.array(mpt_rows, np.int64).reshape(-1, 4)
    np.savez(d / "synapses.npz", **{f: getattr(m.matrices, f) for f in _MATRIX_FIELDS},
             mpt_core=mp[:, 0], mpt_key=mp[:, 1].astype(np.uint32),
             mpt_mask=mp[:, 2].astype(np.uint32), mpt_matrix=mp[:, 3])
    (d / "summary.txt").write_text(summary(m))
    return dict(FILES)


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    from neuro.safeio import read_npz

    try:
        return read_npz(path, keys)
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None


def load_mapping(artifact: str | Path) -> Mapping:
    """Read the mapping of a SpiNNaker artifact directory (checked against the manifest's
    SHA-256 digests and for consistency; ``ArtifactError``)."""
    from neuro.hardware.base import read_manifest

    path = Path(artifact)
    digests = read_manifest(path, "spinnaker")["sha256"]  # checks every file's digest
    for f in DATA_FILES:
        if f not in digests:
            raise ArtifactError(f"{path}: manifest.json has no digest for {f}")
    try:
        pl = json.loads((path / "placement.json").read_text())
        machine = Machine.from_dict(pl["machine"])
        fmt = get_format(pl["number_format"])
        pops_json = pl["populations"]
        outputs = dict(pl["outputs"])
        vertices = [Vertex(**{k: v[k] for k in Vertex.__dataclass_fields__}) for v in pl["vertices"]]
        row_bytes = np.asarray(pl["row_bytes"], np.int64)
        projections = list(pl["projections"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path / 'placement.json'}: not a valid placement file ({exc})") from None
    nd = _load_npz(path / "neurons.npz", _NEURON_FIELDS)
    rt = _load_npz(path / "routing.npz", ("chip", "entry_ptr", "key", "mask", "route"))
    sy = _load_npz(path / "synapses.npz", (*_MATRIX_FIELDS, "mpt_core", "mpt_key", "mpt_mask",
                                           "mpt_matrix"))
    try:
        populations, offsets, shifts, at = [], {}, {}, 0
        for pj in pops_json:
            n = int(pj["size"])
            params = {}
            if pj["kind"] != "source":
                params = {f: nd[f][at:at + n] for f in _NEURON_FIELDS}
                at += n
            populations.append(Population(pj["name"], n, pj["kind"], tuple(pj["shape"]),
                                          pj["reset"], **params))
            offsets[pj["name"]], shifts[pj["name"]] = int(pj["offset"]), int(pj["shift"])
        if at != nd["bias"].size:
            raise ValueError(f"neurons.npz holds {nd['bias'].size} neurons, the populations {at}")
        ptr = rt["entry_ptr"]
        rows = np.stack([rt["key"], rt["mask"], rt["route"]], 1).astype(np.uint32)
        tables = {int(c): rows[ptr[i]:ptr[i + 1]] for i, c in enumerate(rt["chip"].tolist())}
        mats = Matrices(**{f: sy[f] for f in _MATRIX_FIELDS})
        mats.words = mats.words.astype(np.uint32)
        m = Mapping(machine, fmt, populations, offsets, shifts, vertices, mats, tables, outputs,
                    projections, row_bytes)
        _check(m, sy)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{path}: inconsistent SpiNNaker artifact ({exc})") from None
    return m


def _check(m: Mapping, sy: dict[str, np.ndarray]) -> None:
    nv = len(m.vertices)
    mats = m.matrices
    if any(v.id != i for i, v in enumerate(m.vertices)):
        raise ValueError("vertex ids are not 0..V-1")
    for f in ("key_vertex", "target_vertex"):
        a = getattr(mats, f)
        if a.size and (a.min() < 0 or a.max() >= nv):
            raise ValueError(f"synapses.npz {f} out of range")
    n_rows = int(sum(m.vertices[k].n for k in mats.key_vertex.tolist()))
    if mats.row_start.size != n_rows + 1 or int(mats.row_start[-1]) != mats.words.size:
        raise ValueError("synapses.npz row_start does not match the matrices and words")
    if mats.ext_base.size != nv:
        raise ValueError("synapses.npz ext_base must have one entry per vertex")
    mpt = m.master_population_table()
    want = [(c, k, mk, mat) for c in sorted(mpt) for k, mk, mat in mpt[c]]
    got = list(zip(sy["mpt_core"].tolist(), sy["mpt_key"].tolist(), sy["mpt_mask"].tolist(),
                   sy["mpt_matrix"].tolist()))
    if got != want:
        raise ValueError("the master population tables do not match the matrices and keys")


def _route_text(route: int, cpc: int) -> str:
    links = [LINK_NAMES[d] for d in range(6) if route >> d & 1]
    cores = [str(c) for c in range(cpc) if route >> (6 + c) & 1]
    return ("links " + ",".join(links) if links else "") + ("; " if links and cores else "") + \
        ("cores " + ",".join(cores) if cores else "")


def summary(m: Mapping, max_table_lines: int = 2000) -> str:
    """Human-readable description of mapping ``m``."""
    machine = m.machine
    lines = ["SpiNNaker artifact (neuro)", "", f"machine: {machine.describe()}",
             f"number format: {m.fmt.name} (s16.15 state, 16-bit weights, floor rounding, saturation)",
             f"latency: the run lasts T + {m.latency} ticks (1 ms each); population offsets below",
             "", "populations:"]
    for p in m.populations:
        assert p.shape is not None  # Population.__post_init__ sets it
        lines.append(f"  {p.name:20s} {p.kind:8s} {p.size:7d} atoms  shape {list(p.shape)}  "
                     f"offset {m.offsets[p.name]} ticks  ring-buffer shift {m.shifts[p.name]}"
                     + (f"  reset {p.reset}" if not p.is_source else ""))
    lines += ["", "projections:"]
    for pr in m.projections:
        d = pr["machine_delay"]
        lines.append(f"  {pr['name']:20s} {pr['pre']} -> {pr['post']}: {pr['synapses']} synapses, "
                     f"weight_exp {pr['weight_exp']}, machine delay "
                     f"{'-' if d is None else f'{d[0]}..{d[1]}'} ticks")
    lines += ["", "placement (vertex: population atoms -> chip (x, y) core c, key/mask, row bytes):"]
    for v in m.vertices:
        x, y, c = machine.core_name(v.core)
        what = (f"delay extension of vertex {v.source} ({v.stages} x 16-tick stages)"
                if v.kind == "delay_extension" else f"{v.kind} {v.lo}..{v.lo + v.n - 1}")
        key = "no key (sends nothing)" if v.key < 0 else f"key 0x{v.key:08x}/0x{v.mask:08x}"
        lines.append(f"  {v.id:4d} {v.population:20s} {what:44s} -> ({x}, {y}) core {c:2d}  {key}  "
                     f"{int(m.row_bytes[v.id])} B")
    mats = m.matrices
    lines += ["", f"synaptic matrices: {mats.key_vertex.size} (rows {mats.row_start.size - 1}, "
              f"synaptic words {mats.words.size}; word = weight<<16 | (delay-1)<<12 | "
              f"inhibitory<<11 | index; ring buffer of {RING_SLOTS} slots)"]
    lines += ["", "router tables (key/mask -> route; chips that only pass packets straight on use "
              "default routing and have no entry):"]
    count = 0
    for chip in sorted(m.tables):
        x, y = machine.chip_xy(chip)
        lines.append(f"  chip ({x}, {y}): {len(m.tables[chip])} of {machine.router_entries} entries")
        for key, mask, route in m.tables[chip].tolist():
            if count >= max_table_lines:
                break
            lines.append(f"    0x{key:08x}/0x{mask:08x} -> {_route_text(route, machine.cores_per_chip)}")
            count += 1
    if count >= max_table_lines:
        lines.append(f"  ... (first {max_table_lines} entries shown; all are in routing.npz)")
    return "\n".join(lines) + "\n"


def describe(m: Mapping) -> dict[str, Any]:
    """Small JSON-able facts for the manifest's ``target_info``."""
    return {"machine": m.machine.to_dict(), "latency_ticks": m.latency,
            "cores_used": len(m.vertices),
            "chips_used": len({v.core // m.machine.cores_per_chip for v in m.vertices}),
            "delay_extensions": sum(v.kind == "delay_extension" for v in m.vertices),
            "synapses": int(m.matrices.words.size),
            "router_entries": int(sum(len(t) for t in m.tables.values()))}


__all__ = ["DATA_FILES", "FILES", "describe", "load_mapping", "summary", "write_mapping"]
