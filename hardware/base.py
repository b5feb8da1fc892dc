"""The one protocol every hardware backend implements, and the artifact directory they share.

A backend is a module-level object with::

    name: str                                     # "loihi" | "spinnaker" | "fpga"
    formats: tuple[str, ...]                      # number formats it runs; formats[0] is the default
    supports(graph, fmt=None) -> list[str]        # every problem, never silent; [] = compilable
    compile(graph, out, *, fmt=None, calibration_inputs=None) -> Path   # the artifact directory
    run(artifact, spikes, **options) -> Result

``graph`` may be float (``compile`` quantizes it to ``fmt``, calibrated on
``calibration_inputs``) or already quantized (its format must be one of ``formats``).

Artifact directory (written atomically: a temporary directory renamed into place)::

    manifest.json   target, artifact_version, number format, graph digest, tool versions,
                    the files below, and whatever the backend adds under "target_info"
    graph/          the quantized graph IR (graph.json + arrays.npz): what the artifact implements
    ...             the backend's own files

``run`` returns integer values shaped ``[T, B, ...]`` for every neuron population (``spikes``,
keyed by node name) and every graph output (``outputs``), plus backend statistics (``stats``,
JSON-able). They are compared with the integer reference executor by :func:`compare`.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ARTIFACT_VERSION = 1


class UnsupportedGraph(ValueError):
    """The graph cannot run on the target; ``problems`` lists every reason."""

    def __init__(self, target: str, problems: list[str]) -> None:
        self.target, self.problems = target, list(problems)
        super().__init__(f"target {target} cannot run this graph: " + "; ".join(self.problems))


class ArtifactError(ValueError):
    """An artifact directory is missing, corrupt or for another target."""


@dataclass
class Result:
    """What a backend run produced: ``spikes`` per neuron node, ``outputs`` per Output node (both
    integer ``[T, B, ...]``) and ``stats`` (JSON-able backend statistics)."""

    spikes: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    formats: tuple[str, ...]

    def supports(self, graph: Any, fmt: str | None = None) -> list[str]: ...

    def compile(self, graph: Any, out: str | Path, *, fmt: str | None = None,
                calibration_inputs: Any = None) -> Path: ...

    def run(self, artifact: str | Path, spikes: np.ndarray, **options: Any) -> Result: ...


# ------------------------------------------------------------------------------ artifacts
def tool_versions(*extra: str) -> dict[str, str]:
    """Versions of Python, numpy, neuro and the named distributions that are installed."""
    from importlib import metadata

    out = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("neuro", *extra):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_artifact(out: str | Path, *, target: str, graph: Any,
                   write_files: Callable[[Path], dict[str, str]],
                   target_info: dict[str, Any] | None = None,
                   tools: tuple[str, ...] = ()) -> Path:
    """Write an artifact directory atomically.

    ``graph`` is the quantized graph stored under ``graph/``; ``write_files(tmpdir)`` writes the
    backend's own files into the temporary directory and returns ``{relative path: description}``.
    If ``out`` exists it must be an artifact of the same target or an empty directory; it is
    replaced only once the new one is complete.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ArtifactError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise ArtifactError(f"{out}: exists, is not empty and is not a neuro artifact "
                                "(refusing to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        graph.save(tmp / "graph")
        files = {"graph/graph.json": "quantized graph IR (structure)",
                 "graph/arrays.npz": "quantized graph IR (integer parameters)"}
        files.update(write_files(tmp))
        manifest = {
            "target": target,
            "artifact_version": ARTIFACT_VERSION,
            "number_format": graph.metadata["format"]["name"],
            "graph_digest": graph.digest(),
            "dt": graph.dt,
            "inputs": {n: list(graph.nodes[n].shape) for n in graph.inputs()},
            "outputs": graph.outputs(),
            "tool_versions": tool_versions(*tools),
            "files": files,
            "target_info": target_info or {},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_default))
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(artifact: str | Path, target: str | None = None) -> dict[str, Any]:
    """The artifact's manifest (checked: present, valid JSON, version, target, listed files)."""
    path = Path(artifact)
    mf = path / "manifest.json"
    if not mf.is_file():
        raise ArtifactError(f"{path}: not a neuro artifact (no manifest.json)")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mf}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "target" not in manifest:
        raise ArtifactError(f"{mf}: no 'target' key")
    if manifest.get("artifact_version") != ARTIFACT_VERSION:
        raise ArtifactError(f"{mf}: artifact_version {manifest.get('artifact_version')!r} is not "
                            f"supported (this neuro reads {ARTIFACT_VERSION})")
    if target is not None and manifest["target"] != target:
        raise ArtifactError(f"{path}: an artifact for target {manifest['target']!r}, "
                            f"not {target!r}")
    for rel in manifest.get("files", {}):
        if not (path / rel).is_file():
            raise ArtifactError(f"{path}: file {rel!r} listed in manifest.json is missing")
    return manifest


def load_artifact_graph(artifact: str | Path) -> Any:
    """The quantized graph an artifact implements (``graph/``), checked against the digest."""
    from neuro.graph import Graph

    path = Path(artifact)
    manifest = read_manifest(path)
    g = Graph.load(path / "graph")
    if g.digest() != manifest.get("graph_digest"):
        raise ArtifactError(f"{path}: graph/ does not match the manifest's graph_digest "
                            "(the artifact was modified)")
    return g


def prepare_graph(target: str, formats: tuple[str, ...], graph: Any, fmt: str | None,
                  calibration_inputs: Any, supports: Callable[..., list[str]]) -> Any:
    """The quantized graph a backend compiles: check ``supports`` (raising
    :class:`UnsupportedGraph` with every problem), then quantize a float graph to ``fmt``."""
    from neuro.graph.quantize import quantize

    current = graph.metadata.get("format", {}).get("name")
    fmt = fmt or current or formats[0]
    if fmt not in formats:
        raise UnsupportedGraph(target, [f"number format {fmt!r} is not one of {list(formats)}"])
    if current is not None and current != fmt:
        raise UnsupportedGraph(target, [f"the graph is quantized to {current!r}, not {fmt!r}"])
    problems = supports(graph, fmt)
    if problems:
        raise UnsupportedGraph(target, problems)
    if current is None:
        try:
            graph = quantize(graph, fmt, calibration_inputs=calibration_inputs)
        except ValueError as exc:
            raise UnsupportedGraph(target, [str(exc)]) from None
    return graph


def as_int_spikes(graph: Any, spikes: Any) -> dict[str, np.ndarray]:
    """Input spikes ``[T, N]`` or ``[T, B, N]`` (or a dict per Input node) as int64 ``[T, B, N]``,
    checked against the graph's input shapes."""
    names = graph.inputs()
    if not isinstance(spikes, dict):
        if len(names) != 1:
            raise ValueError(f"the graph has inputs {names}: pass a dict name -> array")
        spikes = {names[0]: spikes}
    out = {}
    for n in names:
        if n not in spikes:
            raise ValueError(f"no spikes for input node {n!r}")
        x = np.asarray(spikes[n])
        want = tuple(graph.nodes[n].shape)
        if x.ndim == len(want) + 1:
            x = x[:, None]
        if x.ndim != len(want) + 2 or tuple(x.shape[2:]) != want:
            raise ValueError(f"input {n!r}: expected [T, {', '.join(map(str, want))}] or [T, B, ...], "
                             f"got shape {tuple(np.shape(spikes[n]))}")
        if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)) or (x < 0).any():
            raise ValueError(f"input {n!r}: spikes must be non-negative integers (0/1)")
        out[n] = x.astype(np.int64)
    return out


def reference(graph: Any, spikes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node's values on the integer reference executor (the oracle)."""
    from neuro.graph.intsim import simulate_int

    return simulate_int(graph, spikes, record=True)


@dataclass
class Comparison:
    """Backend vs reference executor, per neuron population and output."""

    target: str
    steps: int
    batch: int
    rows: list[dict[str, Any]]

    @property
    def identical(self) -> bool:
        return all(r["identical"] for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "steps": self.steps, "batch": self.batch,
                "identical": self.identical, "rows": self.rows}

    def table(self) -> str:
        head = (f"target {self.target}: {self.steps} steps x {self.batch} samples, "
                f"{'IDENTICAL' if self.identical else 'MISMATCH'} to the reference executor\n"
                f"  {'node':14s} {'kind':8s} {'reference':>10s} {'target':>10s} {'agreement':>10s} "
                f"{'first diff':>10s}")
        rows = [f"  {r['node']:14s} {r['kind']:8s} {r['reference']:10d} {r['target']:10d} "
                f"{r['agreement']:10.6f} {('-' if r['first_divergence'] is None else str(r['first_divergence'])):>10s}"
                for r in self.rows]
        return "\n".join([head, *rows])


def compare(target: str, graph: Any, result: Result, ref: dict[str, np.ndarray]) -> Comparison:
    """Compare a backend's ``result`` with the reference values ``ref`` (from :func:`reference`)."""
    rows = []
    T = B = 0
    for group, kind_of in ((result.spikes, lambda n: graph.nodes[n].kind),
                           (result.outputs, lambda n: "Output")):
        for name, got in group.items():
            want = ref[name]
            got = np.asarray(got)
            if got.shape != want.shape:
                raise ValueError(f"target {target}: node {name!r} has shape {got.shape}, the "
                                 f"reference {want.shape}")
            T, B = want.shape[:2]
            diff = (got != want).reshape(T, -1).any(1)
            rows.append({"node": name, "kind": kind_of(name),
                         "reference": int(np.abs(want).sum()), "target": int(np.abs(got).sum()),
                         "agreement": float((got == want).mean()),
                         "first_divergence": int(np.flatnonzero(diff)[0]) if diff.any() else None,
                         "identical": not bool(diff.any())})
    return Comparison(target, T, B, rows)


__all__ = ["ARTIFACT_VERSION", "ArtifactError", "Backend", "Comparison", "Result",
           "UnsupportedGraph", "as_int_spikes", "compare", "load_artifact_graph",
           "prepare_graph", "read_manifest", "reference", "tool_versions", "write_artifact"]
