"""Loihi 2 backend: the graph as a Lava process graph, run bit-exact in Lava's CPU simulator.

Protocol (``neuro.hardware.base``)::

    supports(graph, fmt=None) -> list[str]     every reason the graph cannot run on one Loihi 2 chip
    compile(graph, out, *, fmt=None, calibration_inputs=None) -> Path
    run(artifact, spikes, *, mode="fixed_pt", probe_membranes=False, timeout=None) -> LoihiResult

``compile`` quantizes a float graph to the ``loihi2`` format (Lava's bit-accurate LIF and Dense
arithmetic, equations in ``neuro.graph.formats``) and writes the artifact directory::

    manifest.json          target "loihi", format, graph digest, lags, cores, Lava version needed
    graph/                 the quantized graph IR (what the artifact implements)
    lava/network.json      the Lava process graph (processes, registers, lags; mapping.py)
    lava/arrays.npz        its arrays: integer weights/delays/biases and the float parameters
    netx/network.net       lava-dl netx HDF5, for feed-forward networks that fit it (netx.py)

``run`` starts the Lava worker (``worker.py``, under ``$NEURO_LAVA_PYTHON`` or the current
interpreter) with ``Loihi2SimCfg(select_tag=mode)``: ``"fixed_pt"`` (bit-accurate, integer values
equal to the reference executor's) or ``"floating_pt"`` (Lava's float LIF/Dense on the float
parameters; compare with the float model). Values are ``[T, B, ...]``, aligned to the reference
executor's steps (the one-step latency of every Lava Dense is removed, see ``mapping``): spikes
(0/1) for spiking populations and the membrane ``v`` for non-spiking (LI) readouts. Input spikes
must be 0/1 (Lava's Dense takes binary spikes).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuro.hardware.base import (
    ArtifactError,
    Result,
    UnsupportedGraph,
    as_int_spikes,
    load_artifact_graph,
    prepare_graph,
    read_manifest,
    write_artifact,
)

from . import mapping, netx
from .runner import LavaWorkerError, call_worker, default_timeout, lava_python, probe

if TYPE_CHECKING:
    from neuro.graph import Graph

name = "loihi"
formats: tuple[str, ...] = ("loihi2",)
#: runs the quantized graph, bit-exact with the integer reference executor
runs = "quantized"
agreement = 1.0
MODES = ("fixed_pt", "floating_pt")
LAVA_REQUIREMENT = "lava-nc==0.10.0"


@dataclass
class LoihiResult(Result):
    """:class:`~neuro.hardware.base.Result` plus the probed membranes ``{neuron: v [T, B, ...]}``."""

    membranes: dict[str, np.ndarray] = field(default_factory=dict)


def supports(graph: Graph, fmt: str | None = None) -> list[str]:
    """Every reason ``graph`` (float or ``loihi2``-quantized) cannot run on one Loihi 2 chip."""
    problems: list[str] = []
    current = graph.metadata.get("format", {}).get("name")
    if fmt is not None and fmt not in formats:
        problems.append(f"number format {fmt!r}: Loihi runs {list(formats)}")
    if current is not None and current not in formats:
        problems.append(f"the graph is quantized to {current!r}; Loihi needs {list(formats)}")
    p = mapping.plan(graph)
    problems.extend(p.problems)
    if problems:
        return problems
    if current is not None:
        return mapping.value_problems(graph, p)
    from neuro.graph.quantize import quantize

    try:  # what the format cannot express (compile quantizes again, calibrated)
        q = quantize(graph, formats[0])
    except ValueError as exc:
        return [f"quantize to {formats[0]}: {exc}"]
    return mapping.value_problems(q, mapping.plan(q))


def compile(graph: Graph, out: str | Path, *, fmt: str | None = None,
            calibration_inputs: Any = None, force: bool = False) -> Path:
    """Quantize (when float), map to Lava processes and write the artifact directory ``out``."""
    q = prepare_graph(name, formats, graph, fmt, calibration_inputs, supports)
    p = mapping.plan(q)
    problems = p.problems + mapping.value_problems(q, p)
    if problems:
        raise UnsupportedGraph(name, problems)
    float_graph = graph if "format" not in graph.metadata else None
    net, arrays = mapping.lava_network(q, p, float_graph)
    netx_reason = netx.unsupported_reason(q, p)

    def write_files(tmp: Path) -> dict[str, str]:
        (tmp / "lava").mkdir()
        (tmp / "lava" / "network.json").write_text(json.dumps(net, indent=1))
        np.savez(tmp / "lava" / "arrays.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
        files = {"lava/network.json": "Lava process graph (processes, registers, alignment lags)",
                 "lava/arrays.npz": "Lava weights, delays, biases (integer) and float parameters"}
        if netx_reason is None:
            (tmp / "netx").mkdir()
            netx.write(tmp / "netx" / "network.net", q, p)
            files["netx/network.net"] = "lava-dl netx HDF5 (netx.hdf5.Network(net_config=...))"
        return files

    info = {"lava_requirement": LAVA_REQUIREMENT, "modes": list(MODES),
            "max_lag": p.max_lag, "lags": p.lags, "cores": sum(p.cores.values()),
            "cores_per_population": p.cores, "chip_cores": mapping.CHIP_CORES,
            "processes": {s["name"]: s["kind"] for s in net["synapses"]},
            "float_source": net["float_source"],
            "netx": "netx/network.net" if netx_reason is None else f"not written: {netx_reason}"}
    return write_artifact(out, target=name, graph=q, write_files=write_files, target_info=info,
                          force=force)


def _load_network(artifact: Path) -> dict:
    from neuro.safeio import read_json
    from neuro.validate import check_json

    try:
        net = read_json(artifact / "lava" / "network.json")
        return check_json(net, {"neurons": [dict], "synapses": [dict], "inputs": list,
                                "outputs": dict, "max_lag": int},
                          str(artifact / "lava" / "network.json"))
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None


def run(artifact: str | Path, spikes: Any, *, mode: str = "fixed_pt",
        probe_membranes: bool = False, timeout: float | None = None,
        python: str | None = None) -> LoihiResult:
    """Run the artifact in Lava's simulator on ``spikes`` (``[T, N]``, ``[T, B, N]`` or a dict
    per input); see the module docstring. ``probe_membranes`` also records every LIF's ``v``
    (after reset, as ``simulate_int(..., record_membranes=True)``)."""
    if mode not in MODES:
        raise ValueError(f"loihi run: mode must be one of {list(MODES)}, got {mode!r}")
    artifact = Path(artifact)
    read_manifest(artifact, name)
    q = load_artifact_graph(artifact)
    net = _load_network(artifact)
    x = as_int_spikes(q, spikes, max_count=1)
    for k, v in x.items():
        if v.max(initial=0) > 1:
            raise ValueError(f"input {k!r}: Loihi takes binary spikes (0/1), got values up to "
                             f"{int(v.max())}")
    T, B = next(iter(x.values())).shape[:2]
    if T < 1 or B < 1:
        raise ValueError(f"loihi run: spikes need at least one step and one sample, got T={T}, B={B}")
    lag = int(net["max_lag"])
    steps = T + lag
    probe_v = [n["name"] for n in net["neurons"] if n["spiking"]] if probe_membranes else []
    n_proc = (len(net["inputs"]) + len(net["neurons"]) + len(net["synapses"])
              + len(net["neurons"]) + len(probe_v))
    tmp = Path(tempfile.mkdtemp(prefix="neuro-lava-"))
    try:
        data = {}
        for k, v in x.items():  # [T, B, ...] -> [B, T + lag, N], zeros after the sample
            flat = v.reshape(T, B, -1).transpose(1, 0, 2)
            data[f"in/{k}"] = np.concatenate(
                [flat, np.zeros((B, lag, flat.shape[2]), flat.dtype)], 1).astype(np.int8)
        opts = {"mode": mode, "steps": steps, "probe_v": probe_v}
        np.savez(tmp / "in.npz", options=np.array(json.dumps(opts)), **data)
        call_worker([str(artifact.resolve()), str(tmp / "in.npz"), str(tmp / "out.npz")],
                    timeout=default_timeout(B * steps, n_proc) if timeout is None else timeout,
                    python=python)
        try:
            with np.load(tmp / "out.npz", allow_pickle=False) as f:
                rec = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise LavaWorkerError(f"the Lava worker wrote no readable result ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _result(q, net, rec, x, mode)


def _result(q: Any, net: dict, rec: dict[str, np.ndarray], x: dict[str, np.ndarray],
            mode: str) -> LoihiResult:
    T, B = next(iter(x.values())).shape[:2]
    shapes = q.infer_shapes()
    dtype = np.int64 if mode == "fixed_pt" else np.float64

    def aligned(key: str, n: dict) -> np.ndarray:
        a = rec[key][:, n["lag"]:n["lag"] + T]  # [B, T, n] from the population's lag on
        return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(T, B, *shapes[n["name"]])

    values, membranes = {}, {}
    for n in net["neurons"]:
        key = f"s/{n['name']}" if n["spiking"] else f"v/{n['name']}"
        if key not in rec:
            raise LavaWorkerError(f"the Lava worker returned no {key!r}")
        values[n["name"]] = aligned(key, n).astype(np.int64 if n["spiking"] else dtype)
        if n["spiking"] and f"v/{n['name']}" in rec:
            membranes[n["name"]] = aligned(f"v/{n['name']}", n).astype(dtype)
    outputs = {o: values[src] for o, src in net["outputs"].items()}
    worker = json.loads(str(rec["stats"]))
    stats = {"target": "loihi", "simulator": f"Lava {worker['lava']} Loihi2SimCfg({mode})",
             "steps": T, "samples": B, "lava_steps_per_sample": T + int(net["max_lag"]),
             "latency_removed_steps": int(net["max_lag"]), "processes": worker["processes"],
             "cores": net["cores"], **_activity(net, {**x, **values}, q),
             "lava_run_seconds": round(float(sum(worker["run_seconds"])), 4),
             "lava_run_seconds_per_sample": [round(float(t), 4) for t in worker["run_seconds"]],
             "lava_compile_seconds": round(float(worker["compile_seconds"]), 4),
             "lava_build_seconds": round(float(worker["build_seconds"]), 4)}
    return LoihiResult(spikes=values, outputs=outputs, stats=stats, membranes=membranes)


def _activity(net: dict, values: dict[str, np.ndarray], q: Any) -> dict[str, Any]:
    """Spike counts per population and synaptic events (each input or neuron spike times the
    non-zero weights it reaches), as the chip would count them."""
    spikes = {n["name"]: int(values[n["name"]].sum()) for n in net["neurons"] if n["spiking"]}
    events = 0
    for s in net["synapses"]:
        src = values[s["src"]]
        fan_out = np.count_nonzero(q.nodes[s["name"]].weight, axis=0)
        events += int((src.reshape(*src.shape[:2], -1).sum((0, 1)) * fan_out).sum())
    T, B = next(iter(values.values())).shape[:2]
    return {"spikes": spikes, "synaptic_events": events,
            "neuron_updates": int(sum(n["size"] for n in net["neurons"])) * T * B}


__all__ = ["LAVA_REQUIREMENT", "LavaWorkerError", "LoihiResult", "MODES", "compile", "formats",
           "lava_python", "name", "probe", "run", "supports"]
