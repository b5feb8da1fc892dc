"""NEST backend: the float graph as an ``iaf_psc_delta`` network (subtractive-reset populations: the
NESTML model ``neuro_lif_subtract_neuron``), run on NEST in a worker process.

Protocol (``neuro.hardware.base``)::

    supports(graph, fmt=None) -> list[str]     every reason NEST cannot reproduce the graph
    compile(graph, out, *, fmt=None, calibration_inputs=None) -> Path
    run(artifact, spikes, *, threads=1, timeout=None, python=None) -> Result

A float target (``runs = "float"``): compared with the float reference executor. Zero-reset and
subtractive-reset LIF/IF populations with integer delays run exactly (equations and latency
alignment in ``mapping``); NEST computes in float64 where the reference uses float32, so a membrane that lands
within float32 rounding of the threshold could in principle fire on one side only (never seen on
the shared test networks: ``agreement = 1.0``).

Artifact directory::

    manifest.json        target "nest", float graph digest, NEST/PyNN versions, lags
    graph/               the float graph IR (what the artifact implements)
    nest/network.json    populations (size, lag, t_ref), inputs, projections, host readouts
    nest/network.npz     per neuron tau_m [ms], v_th [mV], bias [mV/step], beta_simulated;
                         per projection pre, post, weight [mV], delay [ms] (connection lists)
    nest/run_pynn.py     standalone PyNN script (FromListConnector lists; PyNN work-arounds)
    nest/<model>.nestml  NESTML source of each NESTML model the populations use (subtractive reset)

``run`` starts ``worker.py`` (NEST directly, no PyNN) under ``$NEURO_NEST_PYTHON`` or the current
interpreter (after building, or finding in the cache, the NESTML module the populations need:
``nestml_models.build_module``) and returns spikes ``[T, B, N]`` per LIF/IF node; LI readouts and
graph outputs are computed on the host by the float reference executor from NEST's spikes (``mapping.host_graph``).
``stats`` holds NEST's build and simulate seconds, threads, connections and spike counts.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neuro.hardware.base import (
    ArtifactError,
    Result,
    UnsupportedGraph,
    as_int_spikes,
    load_artifact_graph,
    read_manifest,
    write_artifact,
)
from neuro.hardware.workers import supervised

from . import mapping, nestml_models

name = "nest"
formats = ("float32",)
#: runs the float graph, compared with the float reference executor
runs = "float"
#: exact on zero-reset LIF/IF networks with integer delays (float64 vs float32 ties aside)
agreement = 1.0
NEST_REQUIREMENT = "nest-simulator==3.10.0"
PYNN_REQUIREMENT = "pynn==0.13.0"
WORKER = Path(__file__).with_name("worker.py")
PYNN_SCRIPT = Path(__file__).with_name("pynn_script.py")
ENV_PYTHON = "NEURO_NEST_PYTHON"
ENV_TIMEOUT = "NEURO_NEST_TIMEOUT"
NESTML_NOTE = (f"populations with subtractive reset use the NESTML model "
               f"{nestml_models.SUBTRACT_MODEL} ({nestml_models.NESTML_REQUIREMENT}), built into a NEST "
               "extension module at run time (hardware/nest/nestml_models.py)")
INSTALL_HINT = (f"install NEST with `pip install {NEST_REQUIREMENT} {PYNN_REQUIREMENT}` (or in an "
                f"environment of its own, and set {ENV_PYTHON} to its python)")


class NestWorkerError(OSError):
    """The NEST worker failed (NEST missing, a NEST error, a crash or a time-out)."""


def supports(graph: Any, fmt: str | None = None) -> list[str]:
    """Every reason NEST cannot reproduce ``graph`` (a float graph); ``[]`` when it can."""
    problems = []
    if fmt is not None and fmt not in formats:
        problems.append(f"number format {fmt!r}: NEST runs the float graph ({list(formats)})")
    current = graph.metadata.get("format", {}).get("name")
    if current is not None:
        problems.append(f"the graph is quantized to {current!r}; NEST runs the float graph")
    problems += mapping.plan(graph).problems
    return problems


def compile(graph: Any, out: str | Path, *, fmt: str | None = None,
            calibration_inputs: Any = None, force: bool = False) -> Path:
    """Write the artifact directory ``out`` (module docstring); ``calibration_inputs`` unused."""
    problems = supports(graph, fmt)
    if problems:
        raise UnsupportedGraph(name, problems)
    p = mapping.plan(graph)
    net, arrays = mapping.network(p)

    nestml = [m for m in net["neuron_models"] if m in nestml_models.MODELS]

    def write_files(tmp: Path) -> dict[str, str]:
        (tmp / "nest").mkdir()
        (tmp / "nest" / "network.json").write_text(json.dumps(net, indent=1))
        np.savez(tmp / "nest" / "network.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
        shutil.copyfile(PYNN_SCRIPT, tmp / "nest" / "run_pynn.py")
        extra = {}
        for m in nestml:
            (tmp / "nest" / f"{m}.nestml").write_text(nestml_models.MODELS[m])
            extra[f"nest/{m}.nestml"] = ("NESTML source of the neuron model (subtractive reset); "
                                         "neuro builds it with nestml_models.build_module")
        return extra | {"nest/network.json": "NEST network: populations, lags, projections, host readouts",
                "nest/network.npz": "tau_m, v_th, bias per neuron; connection lists (pre, post, "
                                    "weight mV, delay ms) per projection",
                "nest/run_pynn.py": "standalone PyNN script: python run_pynn.py --input S.npz "
                                    "--out OUT.npz [--simulator nest] [--threads N] "
                                    "[--nest-module MODULE.so] [--map-only]"}

    info = {"nest_requirement": NEST_REQUIREMENT, "pynn_requirement": PYNN_REQUIREMENT,
            "neuron_models": net["neuron_models"], "nestml": NESTML_NOTE if nestml else None,
            "resolution_ms": 1.0, "lags": p.lags,
            "max_lag": net["max_lag"], "host_readouts": p.host,
            "beta_exact": all(q["beta_exact"] for q in net["populations"]),
            "connections": sum(q["connections"] for q in net["projections"])}
    tools = ("nest-simulator", "PyNN", "nestml") if nestml else ("nest-simulator", "PyNN")
    return write_artifact(out, target=name, graph=graph, write_files=write_files,
                          target_info=info, tools=tools, force=force)


def nest_python() -> str:
    """The interpreter that runs NEST: ``$NEURO_NEST_PYTHON`` or the current one."""
    return os.environ.get(ENV_PYTHON) or sys.executable


def default_timeout(neuron_steps: int) -> float:
    """Start-up (60 s) plus 2 us per neuron-step; ``$NEURO_NEST_TIMEOUT`` overrides."""
    if os.environ.get(ENV_TIMEOUT):
        return float(os.environ[ENV_TIMEOUT])
    return 60.0 + 2e-6 * neuron_steps


def call_worker(args: list[str], *, timeout: float, python: str | None = None) -> str:
    """Run ``worker.py *args`` in its own session; return stdout or raise NestWorkerError."""
    python = python or nest_python()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        proc = subprocess.Popen([python, str(WORKER), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    except OSError as exc:
        raise NestWorkerError(f"cannot start the NEST interpreter {python}: {exc}; {INSTALL_HINT}") from None
    try:
        with supervised(proc):  # SIGTERM/SIGHUP raise here, so the group always goes
            out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise NestWorkerError(f"the NEST worker timed out after {timeout:.0f} s "
                                  f"(raise {ENV_TIMEOUT})") from None
        raise
    lines = [ln for ln in err.splitlines() if ln.startswith("nest worker:")]
    first = lines[0].removeprefix("nest worker: ") if lines else (err.strip().splitlines() or ["?"])[-1]
    if proc.returncode == 3:
        raise NestWorkerError(f"NEST is not importable with {python}: {first}; {INSTALL_HINT}")
    if proc.returncode != 0:
        raise NestWorkerError(f"the NEST worker failed (exit {proc.returncode}): {first}\n{err[-4000:]}")
    return out


def nestml_modules(net: dict, python: str | None = None) -> list[str]:
    """Paths (for ``nest.Install``) of the NESTML modules the network's populations need, built
    on first use (``nestml_models.build_module``; NestWorkerError when they cannot be)."""
    needed = {p.get("model", "iaf_psc_delta") for p in net["populations"]} & set(nestml_models.MODELS)
    if not needed:
        return []
    try:
        return [str(nestml_models.build_module(python or nest_python()).path)]
    except nestml_models.NestmlBuildError as exc:
        raise NestWorkerError(f"populations need the NESTML model(s) {sorted(needed)}: {exc}") from None


def probe(python: str | None = None) -> dict:
    """``{"nest": version, "numpy": ..., "python": ..., "have_mpi": ...}`` of the NEST interpreter."""
    return json.loads(call_worker(["--probe"], timeout=60.0, python=python).strip().splitlines()[-1])


def run(artifact: str | Path, spikes: Any, *, threads: int = 1, timeout: float | None = None,
        python: str | None = None) -> Result:
    """Run the artifact on NEST with ``threads`` OpenMP threads; spikes ``[T, N]``, ``[T, B, N]``
    or a dict per input (0/1). Returns spikes per LIF/IF node and values per LI node ``[T, B, ...]``
    and every output, aligned to the reference executor's steps."""
    artifact = Path(artifact)
    manifest = read_manifest(artifact, name)
    g = load_artifact_graph(artifact)
    from neuro.safeio import read_json

    try:
        net = read_json(artifact / "nest" / "network.json")
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None
    if not isinstance(net, dict) or not isinstance(net.get("max_lag"), int):
        raise ArtifactError(f"{artifact}/nest/network.json: expected an object with 'max_lag'")
    if int(threads) < 1:
        raise ValueError(f"nest run: threads must be >= 1, got {threads}")
    x = as_int_spikes(g, spikes, max_count=1)
    for k, v in x.items():
        if v.max(initial=0) > 1:
            raise ValueError(f"input {k!r}: NEST spike generators take binary spikes (0/1), got "
                             f"values up to {int(v.max())}")
    T, B = next(iter(x.values())).shape[:2]
    tmp = Path(tempfile.mkdtemp(prefix="neuro-nest-"))
    try:
        data = {f"in/{k}": v.reshape(T, B, -1).transpose(1, 0, 2).astype(np.int8) for k, v in x.items()}
        opts = {"steps": int(T), "batch": int(B), "threads": int(threads),
                "modules": nestml_modules(net, python)}
        np.savez(tmp / "in.npz", options=np.array(json.dumps(opts)), **data)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
        size = sum(p["size"] for p in net["populations"])
        call_worker([str(artifact.resolve()), str(tmp / "in.npz"), str(tmp / "out.npz")],
                    timeout=(default_timeout(B * size * (T + net["max_lag"])) if timeout is None
                             else timeout), python=python)
        try:
            with np.load(tmp / "out.npz", allow_pickle=False) as f:
                rec = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise NestWorkerError(f"the NEST worker wrote no readable result ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    values: dict[str, np.ndarray] = {}
    for p in net["populations"]:
        s = np.zeros((T, B * p["size"]), np.int64)
        s[rec[f"t/{p['name']}"], rec[f"n/{p['name']}"]] = 1
        values[p["name"]] = s.reshape(T, B, *p["shape"])
    outputs: dict[str, np.ndarray] = {}
    host = mapping.host_graph(g, [p["name"] for p in net["populations"]])
    if host is not None:
        from neuro.hardware.base import float_reference

        feed = {n: (values[n] if n in values else x[n]) for n in host.inputs()}
        hv = float_reference(host, feed)
        for n in net["host_readouts"]:
            values[n] = hv[n]
        outputs = {o: hv[o] for o in g.outputs()}
    worker = json.loads(str(rec["stats"]))
    models = ", ".join(net.get("neuron_models", ["iaf_psc_delta"]))
    stats = {"target": name, "simulator": f"NEST {worker['nest']} {models}, resolution 1 ms",
             "steps": int(T), "samples": int(B), "threads": worker["threads"],
             "nest_steps": worker["nest_steps"], "latency_removed_steps": net["max_lag"],
             "connections": worker["connections"],
             "spikes": {p["name"]: int(values[p["name"]].sum()) for p in net["populations"]},
             "nest_build_seconds": round(float(worker["build_seconds"]), 4),
             "nest_simulate_seconds": round(float(worker["simulate_seconds"]), 4),
             "host_readouts": net["host_readouts"],
             "beta_exact": manifest["target_info"].get("beta_exact")}
    return Result(spikes=values, outputs=outputs, stats=stats)


__all__ = ["NEST_REQUIREMENT", "NestWorkerError", "PYNN_REQUIREMENT", "agreement", "compile",
           "formats", "name", "nest_python", "probe", "run", "runs", "supports"]
