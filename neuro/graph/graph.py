"""The graph: named nodes, directed edges, ``dt``; validation, shape inference, schedule, I/O.

Semantics of one time step: a node's input is the sum of its incoming edges' values, in edge order
(a node with ``ports`` takes them one per port instead, in edge order: ``neuro.graph.lm_nodes``).
Edges inside a cycle that leave a neuron node deliver that node's value from the previous step
(zero at the first step); every other edge delivers the current step's value. So a recurrent
population is ``in -> LIF``, ``LIF -> Linear(W_rec) -> LIF``, with ``W_rec`` acting on the
previous step's spikes, and a delay line of ``d`` steps in the loop makes it ``1 + d`` steps. A
cycle through no neuron node has no meaning and is rejected.

Files: ``graph.json`` (structure, scalar fields, ``dt``, metadata) + ``arrays.npz`` (every numpy
field, keyed ``"<node>/<field>"``; dtypes preserved). Saving is atomic (a temporary directory
renamed into place).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from .nodes import Input, Node, NodeError, Output, Shape
from .registry import node_from_dict

FORMAT_VERSION = 1
#: the shape of graph.json (:func:`neuro.validate.check_json`), checked before use
GRAPH_SCHEMA = {"format_version": int, "nodes": {str: {"type": str}}, "edges": [[str]],
                "?dt": float, "?metadata": dict}


class GraphError(ValueError):
    """The graph is malformed; the message names the node or edge."""


@dataclass
class Schedule:
    """Evaluation plan: strongly connected groups in dependency order.

    ``groups``: lists of node names; a group of one node without a self-loop can run over the
    whole sequence at once, a larger group (a cycle) must run step by step in its listed order.
    ``delayed``: edges that deliver the previous step's value.
    """

    groups: list[list[str]]
    delayed: set[tuple[str, str]]

    @property
    def order(self) -> list[str]:
        return [n for g in self.groups for n in g]

    def cyclic(self, group: list[str]) -> bool:
        return len(group) > 1 or any((group[0], group[0]) == e for e in self.delayed)


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    dt: float = 1e-3
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.edges = [tuple(e) for e in self.edges]  # type: ignore[misc]

    # -- structure ----------------------------------------------------------------------------
    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    def predecessors(self, name: str) -> list[str]:
        return [s for s, d in self.edges if d == name]

    def input_sum(self, name: str, values: dict[str, Any]) -> Any:
        """The input of node ``name``: its predecessors' values summed in edge order."""
        srcs = self.predecessors(name)
        x = values[srcs[0]]
        for s in srcs[1:]:
            x = x + values[s]
        return x

    def node_input(self, name: str, values: dict[str, Any]) -> Any:
        """The input of node ``name``: the sum of its predecessors' values (:meth:`input_sum`),
        or, for a node with ``ports``, the tuple of their values in edge order."""
        if self.nodes[name].ports:
            return tuple(values[s] for s in self.predecessors(name))
        return self.input_sum(name, values)

    def successors(self, name: str) -> list[str]:
        return [d for s, d in self.edges if s == name]

    def _check_structure(self) -> None:
        if not isinstance(self.dt, (int, float)) or not self.dt > 0:
            raise GraphError(f"graph dt must be a positive number of seconds, got {self.dt!r}")
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"node names must be non-empty strings, got {name!r}")
            if not isinstance(node, Node):
                raise GraphError(f"node {name!r} is a {type(node).__name__}, not a graph Node")
            _check_finite(name, node)
        for edge in self.edges:
            if len(edge) != 2:
                raise GraphError(f"edge {edge!r} must be (source, destination)")
            for end in edge:
                if end not in self.nodes:
                    raise GraphError(f"dangling edge {edge[0]!r} -> {edge[1]!r}: no node {end!r}")
        if len(set(self.edges)) != len(self.edges):
            raise GraphError("duplicate edges")
        if not self.inputs():
            raise GraphError("the graph has no Input node")
        if not self.outputs():
            raise GraphError("the graph has no Output node")
        for name, node in self.nodes.items():
            preds = self.predecessors(name)
            if isinstance(node, Input) and preds:
                raise GraphError(f"Input node {name!r} has incoming edges from {preds}")
            if not isinstance(node, Input) and not preds:
                raise GraphError(f"node {name!r} ({node.kind}) has no incoming edge")
            if node.ports and len(preds) != len(node.ports):
                raise GraphError(f"node {name!r} ({node.kind}) takes {len(node.ports)} inputs "
                                 f"({', '.join(node.ports)}, one edge each, in that order), "
                                 f"got {len(preds)}")
            if isinstance(node, Output) and self.successors(name):
                raise GraphError(f"Output node {name!r} has outgoing edges")

    def schedule(self) -> Schedule:
        """Strongly connected groups in dependency order, and the delayed (previous-step) edges."""
        self._check_structure()
        sccs = _tarjan(list(self.nodes), self.edges)  # reverse topological order
        comp = {n: i for i, c in enumerate(sccs) for n in c}
        delayed: set[tuple[str, str]] = set()
        groups: list[list[str]] = []
        for c in reversed(sccs):
            members = set(c)
            inner = [(s, d) for s, d in self.edges if s in members and d in members]
            if not inner:
                groups.append(list(c))
                continue
            for s, d in inner:
                if self.nodes[s].breaks_cycles:
                    delayed.add((s, d))
            same_step = [(s, d) for s, d in inner if (s, d) not in delayed]
            order = _toposort([n for n in self.nodes if n in members], same_step)
            if order is None:
                cyc = sorted(members)
                raise GraphError(f"cycle without a stateful (neuron) node through {cyc}: "
                                 "a value would depend on itself within one step")
            groups.append(order)
        assert all(comp[s] >= comp[d] or (s, d) in delayed for s, d in self.edges)
        return Schedule(groups, delayed)

    # -- shapes ---------------------------------------------------------------------------------
    def infer_shapes(self) -> dict[str, Shape]:
        """Output shape of every node; raises ``ValueError`` naming the node on any mismatch."""
        sched = self.schedule()
        shapes: dict[str, Shape] = {}
        pending = sched.order
        while pending:
            progress, left = False, []
            for name in pending:
                known = [(s, shapes[s]) for s in self.predecessors(name) if s in shapes]
                node = self.nodes[name]
                if not isinstance(node, Input) and not known:
                    left.append(name)
                    continue
                in_shape = known[0][1] if known else None
                for s, sh in known[1:]:
                    if sh != in_shape:
                        raise GraphError(f"shape mismatch at node {name!r}: input {known[0][0]!r} gives "
                                         f"{in_shape}, input {s!r} gives {sh}")
                try:
                    shapes[name] = tuple(node.output_shape(name, in_shape))
                except NodeError as exc:
                    raise GraphError(str(exc)) from None
                progress = True
            if not progress:
                raise GraphError(f"cannot infer the shapes of {left}: no input reaches them")
            pending = left
        for s, d in self.edges:  # every edge into a node carries the same shape
            first = self.predecessors(d)[0]
            if shapes[s] != shapes[first]:
                raise GraphError(f"shape mismatch at node {d!r}: input {first!r} gives "
                                 f"{shapes[first]}, input {s!r} gives {shapes[s]}")
        for name in self.outputs():
            self.nodes[name].shape = shapes[name]  # type: ignore[attr-defined]
        return shapes

    def validate(self) -> Graph:
        """Structure, cycles, fields and shapes; returns ``self`` (raises ``ValueError``)."""
        self.infer_shapes()
        return self

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "dt": self.dt, "metadata": self.metadata,
                "nodes": {n: node.to_dict() for n, node in self.nodes.items()},
                "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Graph:
        if d.get("format_version") != FORMAT_VERSION:
            raise GraphError(f"unsupported graph format_version {d.get('format_version')!r} "
                             f"(this neuro reads {FORMAT_VERSION})")
        nodes = {}
        for name, nd in d.get("nodes", {}).items():
            try:
                nodes[name] = node_from_dict(nd)
            except (NodeError, TypeError) as exc:
                raise GraphError(f"node {name!r}: {exc}") from None
        return cls(nodes, [tuple(e) for e in d.get("edges", [])], d.get("dt", 1e-3),
                   d.get("metadata", {}))

    def _split(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able structure with arrays replaced by ``{"$array": key}``, and the arrays."""
        arrays: dict[str, np.ndarray] = {}
        d = self.to_dict()
        for name, nd in d["nodes"].items():
            for k, v in list(nd.items()):
                if isinstance(v, np.ndarray):
                    key = f"{name}/{k}"
                    arrays[key] = v
                    nd[k] = {"$array": key}
        return d, arrays

    def save(self, path: str | Path) -> Path:
        """Write ``path/graph.json`` and ``path/arrays.npz`` atomically."""
        self.validate()
        path = Path(path)
        struct, arrays = self._split()
        with atomic_dir(path) as tmp:
            (tmp / "graph.json").write_text(json.dumps(struct, indent=1))
            np.savez(tmp / "arrays.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
        return path

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Read ``graph.json`` + ``arrays.npz`` (through :mod:`neuro.safeio`: size and depth
        limits, corrupt containers refused) and validate; ``GraphError`` names the file."""
        from ..safeio import read_json, read_npz
        from ..validate import check_json

        path = Path(path)
        try:
            struct = check_json(read_json(path / "graph.json"), GRAPH_SCHEMA,
                                str(path / "graph.json"))
            arrays = read_npz(path / "arrays.npz")
        except ValueError as exc:
            raise GraphError(str(exc)) from None
        for name, nd in struct.get("nodes", {}).items():
            for k, v in list(nd.items()):
                if isinstance(v, dict) and "$array" in v:
                    if not isinstance(v["$array"], str) or v["$array"] not in arrays:
                        raise GraphError(f"{path}: node {name!r} field {k!r}: array {v['$array']!r} missing")
                    nd[k] = arrays[v["$array"]]
        try:
            return cls.from_dict(struct).validate()
        except GraphError as exc:
            raise GraphError(f"{path}: {exc}") from None

    def digest(self) -> str:
        """SHA-256 of the structure and every array (stable across save/load)."""
        struct, arrays = self._split()
        h = hashlib.sha256(json.dumps(struct, sort_keys=True).encode())
        for k in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, arrays[k], allow_pickle=False)
            h.update(k.encode())
            h.update(buf.getvalue())
        return h.hexdigest()

    def renamed(self, names: dict[str, str]) -> Graph:
        """A copy with the nodes of ``names`` (old -> new) renamed, edges and order kept (e.g.
        readable layer names for a report, ``FamilyModel.layer_names``). ``ValueError`` naming
        the node when an old name is not in the graph or a new one is taken twice."""
        import copy

        missing = [o for o in names if o not in self.nodes]
        if missing:
            raise ValueError(f"renamed: node {missing[0]!r} is not in the graph")
        new = [names.get(n, n) for n in self.nodes]
        dup = sorted({n for n in new if new.count(n) > 1})
        if dup:
            raise ValueError(f"renamed: node name {dup[0]!r} would be used twice")
        g = copy.deepcopy(self)
        g.nodes = {names.get(n, n): node for n, node in g.nodes.items()}
        g.edges = [(names.get(a, a), names.get(b, b)) for a, b in g.edges]
        return g

    def equals(self, other: Graph) -> bool:
        return (self.dt == other.dt and list(self.edges) == list(other.edges)
                and self.nodes.keys() == other.nodes.keys()
                and all(self.nodes[n].equals(other.nodes[n]) for n in self.nodes))


def _check_finite(name: str, node: Node) -> None:
    """Every real-valued field of ``node`` is finite (NaN/inf would poison every executor)."""
    import dataclasses

    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, np.ndarray) and v.dtype.kind in "fc":
            ok = bool(np.isfinite(v).all())
        elif isinstance(v, float):
            ok = bool(np.isfinite(v))
        else:
            continue
        if not ok:
            raise GraphError(f"node {name!r} ({node.kind}): field {f.name!r} holds NaN or "
                             "infinite values")


def _tarjan(names: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components (iterative Tarjan), in reverse topological order."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for s, d in edges:
        succ[s].append(d)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in names:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(succ[v])):
                w = succ[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp, key=names.index))
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
    return out


def _toposort(names: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    """Kahn's algorithm, stable in ``names`` order; None when ``edges`` have a cycle."""
    indeg = {n: 0 for n in names}
    for _, d in edges:
        indeg[d] += 1
    ready = [n for n in names if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in edges:
            if s == n:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
        ready.sort(key=names.index)
    return order if len(order) == len(names) else None
