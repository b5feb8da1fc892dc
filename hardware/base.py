"""The one protocol every hardware backend implements, and the artifact directory they share.

A backend is a module-level object with::

    name: str                                     # a key of neuro.hardware.TARGETS
    formats: tuple[str, ...]                      # number formats it runs; formats[0] is the default
    runs: str                                     # "quantized" or "float" (see below)
    agreement: float                              # float targets: the spike agreement it promises
    supports(graph, fmt=None) -> list[str]        # every problem, never silent; [] = compilable
    compile(graph, out, *, fmt=None, calibration_inputs=None) -> Path   # the artifact directory
    run(artifact, spikes, **options) -> Result

``graph`` may be float (``compile`` quantizes it to ``fmt``, calibrated on
``calibration_inputs``) or already quantized (its format must be one of ``formats``).

A target that ``runs = "quantized"`` graphs is compared with the integer reference executor and
must agree bit for bit; one that ``runs = "float"`` graphs (a simulator such as NEST) stores the
float graph under ``graph/`` and is compared with the float reference executor: spike agreement
at least ``agreement``, real-valued outputs within float32 rounding. :func:`check_target` is the
whole workflow (supports -> compile -> run -> compare) that ``neuro demo``, ``neuro verify`` and
``neuro energy`` share.

Artifact directory (written atomically: a temporary directory renamed into place)::

    manifest.json   target, artifact_version, number format, graph digest, tool versions,
                    the files below, the SHA-256 of every file ("sha256": run and verify
                    refuse a file that does not match, and a file it does not list), and
                    what the backend adds under "target_info"
    graph/          the quantized graph IR (graph.json + arrays.npz): what the artifact implements
    ...             the backend's own files

``run`` returns integer values shaped ``[T, B, ...]`` for every neuron population (``spikes``,
keyed by node name) and every graph output (``outputs``), plus backend statistics (``stats``,
JSON-able). They are compared with the integer reference executor by :func:`compare`.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from neuro.validate import SPIKE_COUNT_MAX

if TYPE_CHECKING:
    from neuro.graph import Graph

ARTIFACT_VERSION = 2  # 2: manifest.json records the SHA-256 of every file


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
    runs: str
    agreement: float

    def supports(self, graph: Graph, fmt: str | None = None) -> list[str]: ...

    def compile(self, graph: Graph, out: str | Path, *, fmt: str | None = None,
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
                   tools: tuple[str, ...] = (), force: bool = False) -> Path:
    """Write an artifact directory atomically.

    ``graph`` is the quantized graph stored under ``graph/``; ``write_files(tmpdir)`` writes the
    backend's own files into the temporary directory and returns ``{relative path: description}``.
    The manifest records the SHA-256 of every file (``"sha256"``); :func:`read_manifest` refuses
    an artifact whose files do not match. If ``out`` exists it must be an empty directory or an
    artifact of the same target (``force=True`` also replaces an artifact of another target);
    it is replaced only once the new one is complete.
    """
    from neuro.atomic import atomic_dir
    from neuro.safeio import sha256_file

    out = Path(out)

    def replaceable(existing: Path) -> bool:
        if not any(existing.iterdir()):
            return True
        if not (existing / "manifest.json").is_file():
            raise ArtifactError(f"{existing}: exists, is not empty and is not a neuro artifact "
                                "(refusing to replace it)")
        if not force:
            try:
                old = _read_manifest_json(existing / "manifest.json").get("target")
            except ValueError:
                old = None
            if old != target:
                raise ArtifactError(f"{existing}: holds an artifact for target {old!r}, not "
                                    f"{target!r} (refusing to replace it; --force replaces it)")
        return True

    if out.exists() and not out.is_dir():
        raise ArtifactError(f"{out}: exists and is not a directory")
    with atomic_dir(out, replace=replaceable) as tmp:
        graph.save(tmp / "graph")
        what = "quantized" if "format" in graph.metadata else "float"
        files = {"graph/graph.json": f"{what} graph IR (structure)",
                 "graph/arrays.npz": f"{what} graph IR (parameters)"}
        files.update(write_files(tmp))
        digests = {p.relative_to(tmp).as_posix(): sha256_file(p)
                   for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "target": target,
            "artifact_version": ARTIFACT_VERSION,
            "number_format": graph.metadata.get("format", {}).get("name", "float32"),
            "graph_digest": graph.digest(),
            "dt": graph.dt,
            "inputs": {n: list(graph.nodes[n].shape) for n in graph.inputs()},
            "outputs": graph.outputs(),
            "tool_versions": tool_versions(*tools),
            "files": files,
            "sha256": digests,
            "target_info": target_info or {},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_default))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


#: what manifest.json must hold (:func:`neuro.validate.check_json`)
MANIFEST_SCHEMA = {"target": str, "artifact_version": int, "?number_format": str,
                   "?graph_digest": str, "files": {str: str}, "sha256": {str: str},
                   "?target_info": dict, "?inputs": dict, "?outputs": list}


def _read_manifest_json(mf: Path) -> dict[str, Any]:
    from neuro.safeio import read_json

    try:
        manifest = read_json(mf)
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{mf}: expected a JSON object")
    return manifest


def read_manifest(artifact: str | Path, target: str | None = None) -> dict[str, Any]:
    """The artifact's manifest, checked: present, valid JSON of the expected shape, version,
    target, and every file of the artifact present with the SHA-256 the manifest records
    (``ArtifactError`` naming the file otherwise)."""
    from neuro.safeio import sha256_file
    from neuro.validate import check_json

    path = Path(artifact)
    mf = path / "manifest.json"
    if not mf.is_file():
        raise ArtifactError(f"{path}: not a neuro artifact (no manifest.json)")
    manifest = _read_manifest_json(mf)
    if "target" not in manifest:
        raise ArtifactError(f"{mf}: no 'target' key")
    version = manifest.get("artifact_version")
    if version != ARTIFACT_VERSION or isinstance(version, bool):
        age = ("written by an older neuro" if isinstance(version, int) and not isinstance(version, bool)
               and version < ARTIFACT_VERSION else "not a version this neuro knows")
        raise ArtifactError(f"{mf}: artifact_version {version!r} ({age}) is not supported: this "
                            f"neuro reads version {ARTIFACT_VERSION}, which records the SHA-256 of "
                            "every file; rebuild the artifact from its checkpoint with `neuro "
                            f"export CHECKPOINT --target {manifest['target']} --out {path} --force`")
    try:
        check_json(manifest, MANIFEST_SCHEMA, str(mf))
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None
    if target is not None and manifest["target"] != target:
        raise ArtifactError(f"{path}: an artifact for target {manifest['target']!r}, "
                            f"not {target!r}")
    for rel in manifest["files"]:
        if not (path / rel).is_file():
            raise ArtifactError(f"{path}: file {rel!r} listed in manifest.json is missing")
        if rel not in manifest["sha256"]:
            raise ArtifactError(f"{mf}: no SHA-256 for file {rel!r}")
    root = path.resolve()
    for rel, digest in manifest["sha256"].items():
        f = (path / rel)
        if rel.startswith("/") or ".." in Path(rel).parts or not f.resolve().is_relative_to(root):
            raise ArtifactError(f"{mf}: file {rel!r} is outside the artifact")
        if not f.is_file():
            raise ArtifactError(f"{path}: file {rel!r} listed in manifest.json is missing")
        if sha256_file(f) != digest:
            raise ArtifactError(f"{f}: does not match the manifest's digest (the artifact was "
                                "modified)")
    unlisted = unlisted_files(path, manifest)
    if unlisted:
        more = f" and {len(unlisted) - 1} more" if len(unlisted) > 1 else ""
        raise ArtifactError(f"{path}: file {unlisted[0]!r}{more} is not listed in manifest.json "
                            "(the artifact was modified; remove it or export the artifact again)")
    return manifest


def unlisted_files(artifact: str | Path, manifest: dict[str, Any]) -> list[str]:
    """Entries of the artifact directory that its manifest does not record (sorted relative
    paths): every file, symlink or other non-directory besides ``manifest.json`` must have a
    SHA-256 in ``manifest["sha256"]``. Symlinks are listed, never followed; empty folders are
    allowed. No target writes into its artifact at run time, so this holds after any run."""
    root = Path(artifact)
    listed = set(manifest.get("sha256", {})) | {"manifest.json"}
    found = []
    for folder, dirs, files in os.walk(root):  # does not follow symlinks to folders
        here = Path(folder)
        entries = files + [d for d in dirs if (here / d).is_symlink()]
        found += [(here / e).relative_to(root).as_posix() for e in entries]
    return sorted(rel for rel in found if rel not in listed)


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


def format_problems(graph: Any, fmt: str | None, formats: tuple[str, ...],
                    default: str | None = None) -> tuple[str, list[str]]:
    """The number format a backend uses for ``graph``: ``fmt``, else the one the graph is
    quantized to, else ``default`` (else ``formats[0]``); and what is wrong with it (``[]``:
    nothing): not one of ``formats``, or the graph is quantized to another format."""
    current = graph.metadata.get("format", {}).get("name")
    fmt = fmt or current or default or formats[0]
    if fmt not in formats:
        return fmt, [f"number format {fmt!r} is not one of {list(formats)}"]
    if current is not None and current != fmt:
        return fmt, [f"the graph is quantized to {current!r}, not {fmt!r}"]
    return fmt, []


def prepare_graph(target: str, formats: tuple[str, ...], graph: Any, fmt: str | None,
                  calibration_inputs: Any, supports: Callable[..., list[str]]) -> Any:
    """The quantized graph a backend compiles: check ``supports`` (raising
    :class:`UnsupportedGraph` with every problem), then quantize a float graph to ``fmt``."""
    from neuro.graph.quantize import quantize

    current = graph.metadata.get("format", {}).get("name")
    fmt, problems = format_problems(graph, fmt, formats)
    if problems:
        raise UnsupportedGraph(target, problems)
    problems = supports(graph, fmt)
    if problems:
        raise UnsupportedGraph(target, problems)
    if current is None:
        try:
            graph = quantize(graph, fmt, calibration_inputs=calibration_inputs)
        except ValueError as exc:
            raise UnsupportedGraph(target, [str(exc)]) from None
    return graph


_NODE_PROBLEM = re.compile(r"^node '(?P<node>[^']+)' \((?P<kind>[^)]+)\): (?P<why>.*)$", re.S)


def group_problems(problems: list[str], *, show: int = 3) -> list[str]:
    """``problems`` (``supports()``'s list) with the nodes that share a kind and a reason merged
    into one entry: ``"nodes 'a', 'b', 'c' and 4 more (LayerNorm): why"``; other problems are
    kept as they are, in order of first appearance. Nothing is dropped but repeated reasons."""
    groups: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str] | str] = []
    for p in problems:
        m = _NODE_PROBLEM.match(p)
        if m is None:
            order.append(p)
            continue
        key = (m["kind"], m["why"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(m["node"])
    out = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
            continue
        nodes = groups[item]
        names = ", ".join(f"'{n}'" for n in nodes[:show])
        more = f" and {len(nodes) - show} more" if len(nodes) > show else ""
        out.append(f"node{'s' if len(nodes) > 1 else ''} {names}{more} ({item[0]}): {item[1]}")
    return out


def quantize_problems(graph: Any, fmt: str) -> list[str]:
    """What ``quantize`` refuses in a float ``graph`` for ``fmt`` (``[]`` for a quantized graph or
    when it quantizes): the last check of a backend's ``supports``, so that ``supports() == []``
    means ``compile`` will not refuse the graph. Quantizing here is uncalibrated; ``compile``
    quantizes again with the calibration inputs."""
    from neuro.graph.quantize import quantize

    if "format" in graph.metadata:
        return []
    try:
        quantize(graph, fmt)
    except ValueError as exc:
        return [f"quantize to {fmt}: {exc}"]
    return []


def as_int_spikes(graph: Any, spikes: Any, *, max_count: int = SPIKE_COUNT_MAX) -> dict[str, np.ndarray]:
    """Input spikes ``[T, N]`` or ``[T, B, N]`` (or a dict per Input node) as int64 ``[T, B, N]``,
    checked by :func:`neuro.validate.check_spikes` against the graph's input shapes: dtype
    bool/int/uint/float, finite, integers in ``[0, max_count]`` (a target that takes only 0/1
    passes ``max_count=1``; the default is the largest count any target takes), ``T, B >= 1``,
    every input with the same ``[T, B]``. Every backend's ``run`` goes through here, so no value
    is wrapped, rounded or overflowed on the way to a target."""
    from neuro.validate import SpikeError, check_spikes

    names = graph.inputs()
    if not isinstance(spikes, dict):
        if len(names) != 1:
            raise SpikeError(f"the graph has inputs {names}: pass a dict name -> array")
        spikes = {names[0]: spikes}
    out = {}
    for n in names:
        if n not in spikes:
            raise SpikeError(f"no spikes for input node {n!r}")
        x = check_spikes(spikes[n], f"input {n!r}", feature_shape=tuple(graph.nodes[n].shape),
                         max_count=max_count)
        out[n] = x.astype(np.int64)
    if len({v.shape[:2] for v in out.values()}) > 1:
        raise SpikeError(f"inputs differ in [T, B]: { {k: v.shape[:2] for k, v in out.items()} }")
    return out


def reference(graph: Any, spikes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node's values on the integer reference executor (the oracle)."""
    from neuro.graph.intsim import simulate_int

    return simulate_int(graph, spikes, record=True)


@dataclass
class Comparison:
    """Backend vs reference executor, per neuron population and output.

    ``threshold`` 1.0 (quantized targets): every row must be identical. Below 1 (float targets):
    a spike row passes when its agreement reaches ``threshold``, a real-valued row when every
    value is within float32 rounding of the reference (``rtol 1e-5, atol 1e-6``)."""

    target: str
    steps: int
    batch: int
    rows: list[dict[str, Any]]
    threshold: float = 1.0

    @property
    def identical(self) -> bool:
        return all(r["identical"] for r in self.rows)

    @property
    def ok(self) -> bool:
        """Whether the target kept its promise (identical, or within its stated agreement)."""
        return all(r["ok"] for r in self.rows)

    @property
    def verdict(self) -> str:
        if self.identical:
            return "IDENTICAL"
        return f"AGREES (>= {self.threshold:g})" if self.ok else "MISMATCH"

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "steps": self.steps, "batch": self.batch,
                "identical": self.identical, "ok": self.ok, "threshold": self.threshold,
                "rows": self.rows}

    def table(self) -> str:
        head = (f"target {self.target}: {self.steps} steps x {self.batch} samples, "
                f"{self.verdict} to the reference executor\n"
                f"  {'node':14s} {'kind':8s} {'reference':>10s} {'target':>10s} {'agreement':>10s} "
                f"{'first diff':>10s}")
        rows = [f"  {r['node']:14s} {r['kind']:8s} {r['reference']:10d} {r['target']:10d} "
                f"{r['agreement']:10.6f} {('-' if r['first_divergence'] is None else str(r['first_divergence'])):>10s}"
                for r in self.rows]
        return "\n".join([head, *rows])

    def spike_count(self) -> int:
        """Spikes the target produced in its spiking populations."""
        return sum(r["target"] for r in self.rows if r.get("spiking"))


def compare(target: str, graph: Any, result: Result, ref: dict[str, np.ndarray], *,
            threshold: float = 1.0) -> Comparison:
    """Compare a backend's ``result`` with the reference values ``ref`` (from :func:`reference`
    or :func:`float_reference`); ``threshold`` as in :class:`Comparison`. A row's ``reference`` and
    ``target`` are the summed magnitudes (spike counts), for an EGRU its events (``y != 0``)."""
    rows = []
    T = B = 0
    for group, node_of in ((result.spikes, lambda n: graph.nodes[n]), (result.outputs, lambda n: None)):
        for name, got in group.items():
            want = np.asarray(ref[name])
            got = np.asarray(got)
            if got.shape != want.shape:
                raise ValueError(f"target {target}: node {name!r} has shape {got.shape}, the "
                                 f"reference {want.shape}")
            node = node_of(name)
            spiking = bool(node is not None and node.spiking)
            T, B = want.shape[:2]
            same = got == want
            diff = (~same).reshape(T, -1).any(1)
            agreement = float(same.mean())
            if threshold >= 1.0:
                ok = not bool(diff.any())
            elif spiking:
                ok = agreement >= threshold
            else:
                ok = bool(np.allclose(got, want, rtol=1e-5, atol=1e-6))
            graded = node is not None and node.kind == "EGRU"  # payloads: count the events
            size = (lambda a: int(np.count_nonzero(a))) if graded else (lambda a: int(np.abs(a).sum()))
            rows.append({"node": name, "kind": node.kind if node is not None else "Output",
                         "spiking": spiking,
                         "reference": size(want), "target": size(got),
                         "agreement": agreement,
                         "first_divergence": int(np.flatnonzero(diff)[0]) if diff.any() else None,
                         "identical": not bool(diff.any()), "ok": ok})
    return Comparison(target, T, B, rows, threshold)


def float_reference(graph: Any, spikes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node's values on the float reference executor (the oracle of float targets)."""
    from neuro.graph import simulate

    values = simulate(graph, {k: v.astype(np.float32) for k, v in spikes.items()}, record=True)
    return {k: v.numpy() for k, v in values.items()}


def runs_float(backend: Any) -> bool:
    """Whether ``backend`` runs the float graph (else the quantized one)."""
    runs = getattr(backend, "runs", None)
    if runs not in ("quantized", "float"):
        raise ValueError(f"backend {getattr(backend, 'name', backend)!r} declares runs={runs!r}; "
                         "it must be 'quantized' or 'float'")
    return runs == "float"


@dataclass
class TargetCheck:
    """One target's run of a model: the artifact directory (None once a temporary one is
    removed), the graph it implements, what it produced and the comparison with its reference."""

    target: str
    artifact: Path | None
    graph: Any
    result: Result
    comparison: Comparison


@contextlib.contextmanager
def compiled(backend: Any, graph: Any, spikes: np.ndarray, out: str | Path | None = None, *,
             fmt: str | None = None) -> Iterator[Path]:
    """``supports`` (raising :class:`UnsupportedGraph` with every problem), then ``compile`` into
    ``out``, or into a temporary directory that is removed when the block ends (``out=None``)."""
    problems = backend.supports(graph, fmt)
    if problems:
        raise UnsupportedGraph(backend.name, problems)
    tmp = None
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix=f"neuro-{backend.name}-"))
        out = tmp / "artifact"
    try:
        yield Path(backend.compile(graph, out, fmt=fmt, calibration_inputs=spikes))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_on_target(backend: Any, graph: Any, spikes: np.ndarray, out: str | Path | None = None, *,
                  fmt: str | None = None) -> Result:
    """Export and run without comparing (``neuro energy`` wants the target's statistics)."""
    with compiled(backend, graph, spikes, out, fmt=fmt) as art:
        return backend.run(art, spikes)


def check_target(backend: Any, graph: Any, spikes: np.ndarray, out: str | Path | None = None, *,
                 fmt: str | None = None) -> TargetCheck:
    """The export -> run -> compare workflow (``neuro demo``, ``neuro verify``): :func:`compiled`,
    ``run`` on ``spikes`` (``[T, N]`` or ``[T, B, N]``), and compare with the reference executor
    the target promises to match (integer for quantized targets, float for float ones)."""
    with compiled(backend, graph, spikes, out, fmt=fmt) as art:
        implemented = load_artifact_graph(art)
        result = backend.run(art, spikes)
    inputs = as_int_spikes(implemented, spikes)
    if runs_float(backend):
        comp = compare(backend.name, implemented, result, float_reference(implemented, inputs),
                       threshold=float(backend.agreement))
    else:
        comp = compare(backend.name, implemented, result, reference(implemented, inputs))
    return TargetCheck(backend.name, Path(art) if out is not None else None, implemented, result, comp)


__all__ = ["ARTIFACT_VERSION", "ArtifactError", "Backend", "Comparison", "Result", "TargetCheck",
           "UnsupportedGraph", "as_int_spikes", "check_target", "compare", "compiled", "float_reference",
           "format_problems", "group_problems",
           "load_artifact_graph", "prepare_graph", "read_manifest", "reference", "run_on_target", "runs_float",
           "tool_versions", "unlisted_files", "write_artifact"]
