"""Files of a SpiNNaker artifact for an EGRU network (the graded-event path, ``egru_map``).

Next to ``manifest.json`` (``target_info["path"] == "graded"``) and ``graph/``::

    egru_placement.json  machine, populations (kind, size, latency offset, dense, lookup),
                         outputs, projections (synapses kept after pruning), vertices ->
                         chip/core/key/mask, table_rows (vocabulary of an Embedding source)
    egru_synapses.npz    matrices (mat_kv, mat_tv, mat_row0), row_start, words (graded words)
    egru_routing.npz     router tables: chip, entry_ptr, key, mask, route

The EGRU cores' parameters (biases, thresholds, gate tables, weight fractions), an Embedding
source's integer table and a readout's bias and weight fraction are the quantized graph's nodes
and ``metadata["egru_lm"]`` in ``graph/`` (digest-checked by the manifest).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from neuro.hardware.base import ArtifactError

from .egru_map import GradedMapping, GradedPopulation
from .machine import Machine
from .placement import Vertex

FILES = {
    "egru_placement.json": "machine, EGRU populations, projections, vertices -> chip/core/key",
    "egru_synapses.npz": "graded synaptic matrices (CSR rows of 32-bit words)",
    "egru_routing.npz": "router tables per chip (key, mask, route)",
}
_MAT = ("mat_kv", "mat_tv", "mat_row0", "row_start", "words")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(d: Path, m: GradedMapping, digests: dict[str, str]) -> dict[str, str]:
    """Write mapping ``m`` into ``d``; fill ``digests`` with every file's SHA-256."""
    placement = {
        "machine": m.machine.to_dict(),
        "populations": [vars(p) for p in m.populations],
        "outputs": m.outputs,
        "projections": m.projections,
        "table_rows": m.table_rows,
        "vertices": [{**v.to_dict(), "chip": list(m.machine.core_name(v.core)[:2]),
                      "chip_core": m.machine.core_name(v.core)[2]} for v in m.vertices],
    }
    (d / "egru_placement.json").write_text(json.dumps(placement, indent=1))
    np.savez(d / "egru_synapses.npz", **{f: getattr(m, f) for f in _MAT})
    chips = sorted(m.tables)
    rows = [m.tables[c] for c in chips]
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    allrows = np.concatenate(rows) if rows else np.zeros((0, 3), np.uint32)
    np.savez(d / "egru_routing.npz", chip=np.asarray(chips, np.int64), entry_ptr=ptr,
             key=allrows[:, 0], mask=allrows[:, 1], route=allrows[:, 2])
    digests.update({f: _sha256(d / f) for f in FILES})
    return dict(FILES)


def load(artifact: str | Path, manifest: dict[str, Any]) -> GradedMapping:
    """The mapping of a graded-path artifact (digests checked; ``ArtifactError`` naming the file)."""
    path = Path(artifact)
    digests = manifest.get("target_info", {}).get("sha256", {})
    for f in FILES:
        if f not in digests:
            raise ArtifactError(f"{path}: manifest.json has no digest for {f}")
        if not (path / f).is_file() or _sha256(path / f) != digests[f]:
            raise ArtifactError(f"{path / f}: missing or does not match the manifest's digest")
    try:
        pl = json.loads((path / "egru_placement.json").read_text())
        with np.load(path / "egru_synapses.npz", allow_pickle=False) as sy:
            mats = {f: sy[f] for f in _MAT}
        with np.load(path / "egru_routing.npz", allow_pickle=False) as rt:
            ptr = rt["entry_ptr"]
            rows = np.stack([rt["key"], rt["mask"], rt["route"]], 1).astype(np.uint32)
            tables = {int(c): rows[ptr[i]:ptr[i + 1]] for i, c in enumerate(rt["chip"].tolist())}
        vertices = [Vertex(**{k: v[k] for k in Vertex.__dataclass_fields__}) for v in pl["vertices"]]
        m = GradedMapping(Machine.from_dict(pl["machine"]),
                          [GradedPopulation(**p) for p in pl["populations"]], vertices,
                          tables=tables, outputs=dict(pl["outputs"]),
                          projections=list(pl["projections"]),
                          table_rows={str(k): int(v) for k, v in pl.get("table_rows", {}).items()},
                          **{f: (mats[f].astype(np.uint32) if f == "words" else mats[f].astype(np.int64))
                             for f in _MAT})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a valid EGRU SpiNNaker artifact ({exc})") from None
    if m.row_start.size and int(m.row_start[-1]) != m.words.size:
        raise ArtifactError(f"{path / 'egru_synapses.npz'}: row_start does not match the words")
    return m


def describe(m: GradedMapping) -> dict[str, Any]:
    """Small JSON-able facts for the manifest's ``target_info``."""
    return {"path": "graded", "machine": m.machine.to_dict(), "latency_ticks": m.latency,
            "cores_used": len(m.vertices),
            "chips_used": len({v.core // m.machine.cores_per_chip for v in m.vertices}),
            "synapses": int(m.words.size),
            "router_entries": int(sum(len(t) for t in m.tables.values()))}


__all__ = ["FILES", "describe", "load", "write"]
