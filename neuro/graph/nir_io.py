"""NIR interchange: :func:`to_nir`, :func:`from_nir`, :func:`write_nir`, :func:`read_nir`.

Needs the ``nir`` package (``pip install 'neuro[nir]'``); neuro itself imports without it.

NIR (the Neuromorphic Intermediate Representation, ``nir`` 1.x) describes a network in continuous
time, with time constants in seconds; a neuro graph is discrete (one step = ``Graph.dt`` seconds,
decays and delays per step). The two meet at **forward Euler with step dt and unit input gain**,
snnTorch's convention (``snntorch.export_to_nir``/``import_from_nir``)::

    beta = 1 - dt / tau          tau = dt / (1 - beta)          (tau = inf for beta = 1)
    gain = r * dt / tau = 1      r = tau / dt                   (r = 1 with decay_input: gain 1 - beta)

so an Euler simulator running NIR's ``tau dv/dt = (v_leak - v) + R I`` with step ``dt`` performs
neuro's ``v = beta v + x`` step for step. ``dt`` is recorded as graph metadata ``"dt"``. On import
``dt`` is, in order: the ``dt=`` argument, the file's ``metadata["dt"]``, else a ``ValueError``
naming ``dt``: nothing is guessed (snnTorch and Norse write no step; snnTorch's is
:data:`SNNTORCH_DT` = 1e-4 s, hard-coded in its exporter and importer).

Mapping (neuro node -> NIR node; parameters broadcast to the population shape):

===============  =================================================================================
Input, Output    Input, Output (per-step shape, batch excluded)
Affine, Linear   Affine (``weight [out, in]``, ``bias``), Linear
Conv1d, Conv2d   Conv1d, Conv2d (``input_shape`` = spatial input size; no bias is written as zeros)
Flatten          Flatten (dims exclude batch; written non-negative)
SumPool2d        SumPool2d, AvgPool2d (``kernel_size``, ``stride``, ``padding``; zero padding)
AvgPool2d
Threshold        Threshold
LIF              LIF: ``tau``, ``r`` as above, ``v_leak``, ``v_threshold``, ``v_reset`` (node fields,
                 default 0)
CubaLIF          CubaLIF: ``tau_syn = dt / (1 - alpha)``, ``w_in = tau_syn / dt``; ``tau_mem``, ``r``
                 as LIF
IF               IF: ``r = 1`` (unit gain per step, as snnTorch's importer, Norse and Sinabs read
                 IF), ``v_threshold``, ``v_reset``
LI               LI: ``tau``, ``r`` as LIF, ``v_leak = 0``
Delay            Delay: ``delay = steps * dt`` seconds (read back as ``round(delay / dt)``)
DelayedAffine    one branch per distinct delay value ``d``: ``Linear(W * [D == d]) -> Delay(d dt)``,
                 every branch fed by the source and summed at the destination; the bias rides on
                 the ``d = 0`` branch (an Affine). Importing rebuilds the DelayedAffine exactly.
ChannelAffine    Affine with the diagonal weight ``diag(scale)`` and bias ``shift`` (an inference-mode
                 BatchNorm over a flat ``[N]`` input), marked ``{"kind": "ChannelAffine"}`` in its
                 metadata: exact (``x * s_i + 0 * x_j + shift``), read back by neuro as the
                 ChannelAffine, by other importers as a Linear layer. Not folded into the synapse
                 before it (``quantize`` does that), so the float weights travel unchanged.
EGRU, other      ``ValueError: node 'x' (EGRU) cannot be expressed in NIR``
===============  =================================================================================

Recurrent populations are graph cycles (``LIF -> Linear -> LIF``), which is also how snnTorch
writes ``RLeaky``/``RSynaptic``. Nested ``NIRGraph`` nodes are flattened on import. Every
DelayedAffine branch keeps its Delay node, also for ``d = 0``, so the branches map one to one.

Import of a NIR neuron without neuro metadata: NIR neurons fire on ``v > v_threshold`` (neuro:
``>=``; only exact ties differ) and reset to ``v_reset`` at once (neuro ``reset="zero"``,
``reset_timing="immediate"``; ``v_leak`` and ``v_reset`` become the node's fields, an offset in
the update, see ``neuro.neurons.lif``; an LI's ``v_leak`` must be 0). An input gain other than 1 is
read as ``decay_input=True`` when it equals ``1 - beta``, else folded into the threshold
(``threshold / gain``, and ``v_leak / gain``, ``v_reset / gain``: ``v' = v / gain`` gives the same
spikes, as snnTorch's importer does). snnTorch's
exporter writes neither ``reset_mechanism`` nor ``reset_delay``: pass ``reset="subtract",
reset_timing="deferred"`` to :func:`from_nir` for a snnTorch model with its default subtractive,
delayed reset.

Lossless round trip: what NIR cannot say (subtractive reset, deferred reset timing, refractory
steps, ``decay_input`` where ambiguous, the exact float32 ``beta``, scalar vs per-neuron
parameters, a missing conv bias, ...) travels in node metadata ``{"neuro": JSON}``, holding only
the fields that the NIR parameters do not give back exactly. An importer other than neuro ignores it
and reads the NIR parameters, which are always set. On import a carried array is used only while
it agrees with the NIR parameters (so a file edited by another tool is read by its parameters).
Graph metadata holds ``{"dt", "neuro_format", "neuro": JSON(node order, Graph.metadata)}``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import nodes as N
from .graph import Graph

#: the step (seconds) snnTorch assumes when it writes and reads NIR; used for files without dt
SNNTORCH_DT = 1e-4
#: version of neuro's NIR metadata
NEURO_FORMAT = 1
#: neuro node kinds NIR can express
EXPRESSIBLE = frozenset({"Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten",
                         "Threshold", "LIF", "CubaLIF", "IF", "LI", "Delay", "DelayedAffine",
                         "SumPool2d", "AvgPool2d", "ChannelAffine"})
_KEY = "neuro"
_RTOL, _ATOL = 1e-5, 1e-7


def require_nir() -> Any:
    """The ``nir`` module, or an ``ImportError`` with the install hint."""
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("NIR support needs the 'nir' package: pip install 'neuro[nir]'") from exc
    return nir


# ---------------------------------------------------------------------------------- helpers
def _dumps(value: Any) -> str:
    """JSON with exact numpy arrays (dtype and shape kept) and tuples."""

    def enc(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return {"__array__": v.tolist(), "dtype": str(v.dtype), "shape": list(v.shape)}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x) for x in v]}
        if isinstance(v, dict):
            return {str(k): enc(x) for k, x in v.items()}
        if isinstance(v, list):
            return [enc(x) for x in v]
        return v

    return json.dumps(enc(value))


def _loads(text: Any) -> Any:
    def hook(d: dict[str, Any]) -> Any:
        if "__array__" in d:
            if not {"dtype", "shape"} <= d.keys():
                raise ValueError(f"NIR metadata: an encoded array lacks {sorted({'dtype', 'shape'} - d.keys())}")
            try:
                return np.array(d["__array__"], dtype=d["dtype"]).reshape(d["shape"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"NIR metadata: an encoded array is malformed ({exc})") from None
        if "__tuple__" in d:
            return tuple(d["__tuple__"])
        return d

    if isinstance(text, bytes):
        text = text.decode("utf8")
    return json.loads(str(text), object_hook=hook)


def _fields(node: N.Node) -> dict[str, Any]:
    return {k: v for k, v in node.to_dict().items() if k != "type"}


def _err(name: str, kind: str, field: str, msg: str) -> ValueError:
    return ValueError(f"node {name!r} (NIR {kind}): field {field!r} {msg}")


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _decay(name: str, kind: str, field: str, tau: Any, dt: float) -> np.ndarray:
    """Per-step decay ``1 - dt / tau`` (Euler), float32; ``tau = inf`` gives 1."""
    tau = _f64(tau)
    if not bool((tau > 0).all()):
        raise _err(name, kind, field, f"must be > 0 seconds, got {tau.min()}")
    beta = np.where(np.isinf(tau), 1.0, 1.0 - dt / np.where(np.isinf(tau), 1.0, tau))
    if bool((beta < -1e-9).any()):
        raise _err(name, kind, field, f"({tau.min():g} s) is shorter than one step dt={dt:g} s: "
                   "forward Euler needs tau >= dt")
    return np.clip(beta, 0.0, 1.0).astype(np.float32)


def _gain(r: Any, tau: Any, dt: float) -> np.ndarray:
    """Input gain per step ``r dt / tau`` (1 where both are infinite)."""
    r, tau = _f64(r), _f64(tau)
    both = np.isinf(r) & np.isinf(tau)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both, 1.0, r * dt / tau)


def _is(a: np.ndarray, b: Any) -> bool:
    return bool(np.allclose(a, b, rtol=_RTOL, atol=_ATOL))


def _tau(decay: Any, shape: tuple[int, ...], dt: float) -> np.ndarray:
    b = np.broadcast_to(_f64(decay), shape)
    with np.errstate(divide="ignore"):
        return np.where(b >= 1, np.inf, dt / (1.0 - np.minimum(b, 1.0)))


def _bcast(a: Any, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=dtype), shape).copy()


def _shape_of(x: Any) -> tuple[int, ...] | None:
    if x is None:
        return None
    a = np.asarray(x).reshape(-1)
    return tuple(int(v) for v in a)


def _int(x: Any) -> int:
    return int(np.asarray(x).reshape(-1)[0])


def _pair(x: Any) -> tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


# ----------------------------------------------------------------------------- neuro -> NIR
def _export_node(nir: Any, name: str, node: N.Node, in_shape: tuple[int, ...] | None,
                 out_shape: tuple[int, ...], dt: float) -> Any:
    """The NIR node for one neuro node (no metadata yet)."""
    if isinstance(node, N.Input):
        return nir.Input(input_type={"input": np.array(out_shape)})
    if isinstance(node, N.Output):
        return nir.Output(output_type={"output": np.array(out_shape)})
    if isinstance(node, N.Affine):
        return nir.Affine(weight=np.array(node.weight), bias=np.array(node.bias))
    if isinstance(node, N.Linear):
        return nir.Linear(weight=np.array(node.weight))
    if isinstance(node, (N.Conv1d, N.Conv2d)):
        assert in_shape is not None  # a convolution always has an input (validated graph)
        bias = (np.zeros(node.weight.shape[0], node.weight.dtype) if node.bias is None
                else np.array(node.bias))
        if isinstance(node, N.Conv1d):
            return nir.Conv1d(input_shape=int(in_shape[1]), weight=np.array(node.weight),
                              stride=int(node.stride), padding=int(node.padding),
                              dilation=int(node.dilation), groups=int(node.groups), bias=bias)
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=np.array(node.weight),
                          stride=tuple(node.stride), padding=tuple(node.padding),
                          dilation=tuple(node.dilation), groups=int(node.groups), bias=bias)
    if isinstance(node, (N.SumPool2d, N.AvgPool2d)):
        cls = nir.SumPool2d if type(node) is N.SumPool2d else nir.AvgPool2d
        out = cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                  padding=np.array(node.padding))
        out.input_type = {"input": np.array(in_shape)}  # NIR leaves pooling types to inference
        out.output_type = {"output": np.array(out_shape)}
        return out
    if isinstance(node, N.Flatten):
        assert in_shape is not None  # a Flatten always has an input (validated graph)
        n = len(in_shape)
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim % n,
                           end_dim=node.end_dim % n)
    if isinstance(node, N.ChannelAffine):
        scale, shift = np.broadcast_to(node.scale, out_shape), np.broadcast_to(node.shift, out_shape)
        if len(out_shape) != 1:
            raise ValueError(f"node {name!r} (ChannelAffine) cannot be expressed in NIR over shape "
                             f"{list(out_shape)}: only over a flat [N] input (after a Linear)")
        return nir.Affine(weight=np.diag(scale).astype(np.float32), bias=shift.astype(np.float32))
    if isinstance(node, N.Threshold):
        return nir.Threshold(threshold=_bcast(node.threshold, out_shape))
    if isinstance(node, N.Delay):
        return nir.Delay(delay=node.delay.astype(np.float64) * dt)
    if isinstance(node, N.LI):
        tau = _tau(node.beta, out_shape, dt)
        r = np.ones(out_shape) if node.decay_input else np.where(np.isinf(tau), np.inf, tau / dt)
        return nir.LI(tau=tau, r=r, v_leak=np.zeros(out_shape))
    if isinstance(node, N.IF):
        return nir.IF(r=np.ones(out_shape), v_threshold=_bcast(node.threshold, out_shape),
                      v_reset=_bcast(node.v_reset, out_shape))
    if isinstance(node, N.LIF):  # LIF, CubaLIF
        tau = _tau(node.beta, out_shape, dt)
        r = np.ones(out_shape) if node.decay_input else np.where(np.isinf(tau), np.inf, tau / dt)
        common = dict(r=r, v_leak=_bcast(node.v_leak, out_shape, np.float64),
                      v_threshold=_bcast(node.threshold, out_shape), v_reset=_bcast(node.v_reset, out_shape))
        if isinstance(node, N.CubaLIF):
            tau_syn = _tau(node.alpha, out_shape, dt)
            w_in = np.where(np.isinf(tau_syn), np.inf, tau_syn / dt)
            return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, w_in=w_in, **common)
        return nir.LIF(tau=tau, **common)
    raise ValueError(f"node {name!r} ({node.kind}) cannot be expressed in NIR")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return (a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f")))
    return _dumps(a) == _dumps(b)


def _overrides(std: N.Node, orig: N.Node) -> dict[str, Any]:
    """Fields of ``orig`` that the import of its NIR parameters (``std``) does not give back."""
    a, b = _fields(orig), _fields(std)
    return {k: v for k, v in a.items() if not _same(v, b.get(k))}


def _unique(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def to_nir(graph: Graph) -> Any:
    """Convert ``graph`` to a ``nir.NIRGraph`` (see the module docstring for the mapping).

    Raises ``ValueError`` naming the node for a node NIR cannot express (EGRU).
    """
    nir = require_nir()
    shapes = graph.infer_shapes()  # validates
    for name, node in graph.nodes.items():
        if node.kind not in EXPRESSIBLE:
            raise ValueError(f"node {name!r} ({node.kind}) cannot be expressed in NIR")
    dt = float(graph.dt)
    taken = set(graph.nodes)
    out_nodes: dict[str, Any] = {}
    entries: dict[str, list[str]] = {}  # DelayedAffine -> its branches' first / last nodes
    exits: dict[str, list[str]] = {}
    internal: list[tuple[str, str]] = []
    for name, node in graph.nodes.items():
        preds = graph.predecessors(name)
        in_shape = shapes[preds[0]] if preds else None
        if isinstance(node, N.DelayedAffine):
            branches = _export_delayed_affine(nir, name, node, dt, taken)
            entries[name] = [w for w, _, _ in branches]
            exits[name] = [d for _, d, _ in branches]
            for w, d, (wn, dn) in branches:
                out_nodes[w], out_nodes[d] = wn, dn
                internal.append((w, d))
            continue
        nn = _export_node(nir, name, node, in_shape, shapes[name], dt)
        if isinstance(node, N.ChannelAffine):
            nn.metadata = {_KEY: _dumps({"kind": node.kind})}
        elif not isinstance(node, (N.Input, N.Output)):
            std = _import_node(nir, name, nn, dt, None, None)
            extra = _overrides(std, node)
            if extra:
                nn.metadata = {_KEY: _dumps({"kind": node.kind, "fields": extra})}
        out_nodes[name] = nn
    edges: list[tuple[str, str]] = []
    for s, d in graph.edges:
        for a in exits.get(s, [s]):
            for b in entries.get(d, [d]):
                edges.append((a, b))
    edges += internal
    meta: dict[str, Any] = {"dt": dt, "neuro_format": NEURO_FORMAT}
    extra_meta: dict[str, Any] = {"node_order": list(graph.nodes)}
    try:
        json.dumps(graph.metadata)
        extra_meta["metadata"] = graph.metadata
    except (TypeError, ValueError):
        pass
    meta[_KEY] = _dumps(extra_meta)
    out = nir.NIRGraph(nodes=out_nodes, edges=edges, metadata=meta, type_check=False)
    out.check_types()
    return out


def _export_delayed_affine(nir: Any, name: str, node: N.DelayedAffine, dt: float,
                           taken: set[str]) -> list[tuple[str, str, tuple[Any, Any]]]:
    """Branches ``(weight node name, delay node name, (nir weight node, nir Delay node))``."""
    w, delay, bias = node.weight, node.delay, node.bias
    has_bias = bool(np.any(bias != 0))
    # one branch per delay value that carries a weight (the bias rides on d = 0); zero weights
    # keep their delay through the metadata
    values = sorted({int(v) for v in np.unique(delay[w != 0])} | ({0} if has_bias else set()))
    values = values or [int(delay.min())]
    zero = np.zeros((), w.dtype)
    out = []
    for i, d in enumerate(values):
        wd = np.where(delay == d, w, zero).astype(w.dtype)
        wname = _unique(f"{name}.d{d}.weight", taken)
        dname = _unique(f"{name}.d{d}.delay", taken)
        wn = (nir.Affine(weight=wd, bias=np.array(bias)) if d == 0 and has_bias
              else nir.Linear(weight=wd))
        dn = nir.Delay(delay=np.full(w.shape[0], d * dt, np.float64))
        info: dict[str, Any] = {"kind": "DelayedAffine", "group": name, "steps": d}
        if i == 0:
            rebuilt = _rebuild_delayed_affine([(d2, np.where(delay == d2, w, zero).astype(w.dtype),
                                                bias if (d2 == 0 and has_bias) else None)
                                               for d2 in values])
            assert rebuilt is not None  # the branches split one matrix: they never overlap
            extra = _overrides(rebuilt, node)
            if extra:
                info["fields"] = extra
        wn.metadata = {_KEY: _dumps({**info, "role": "weight"})}
        dn.metadata = {_KEY: _dumps({**info, "role": "delay"})}
        out.append((wname, dname, (wn, dn)))
    return out


def _rebuild_delayed_affine(branches: list[tuple[int, np.ndarray, np.ndarray | None]]
                            ) -> N.DelayedAffine | None:
    """A DelayedAffine from ``(steps, weight, bias or None)`` branches; None if they overlap."""
    w0 = branches[0][1]
    weight = np.zeros(w0.shape, w0.dtype)
    delay = np.zeros(w0.shape, np.int64)
    bias = np.zeros(w0.shape[0], np.float32)
    used = np.zeros(w0.shape, bool)
    for d, wd, b in branches:
        if wd.shape != w0.shape:
            return None
        mask = wd != 0
        if bool((mask & used).any()):
            return None
        used |= mask
        weight[mask] = wd[mask]
        delay[mask] = d
        if b is not None:
            bias = np.array(b)
    return N.DelayedAffine(weight=weight, delay=delay, bias=bias)


# ----------------------------------------------------------------------------- NIR -> neuro
def _import_node(nir: Any, name: str, n: Any, dt: float, reset: str | None,
                 timing: str | None) -> N.Node:
    """The neuro node for one NIR node, from its NIR parameters alone."""
    kind = type(n).__name__
    if isinstance(n, nir.Input):
        shape = _shape_of(n.input_type.get("input"))
        if not shape:
            raise _err(name, kind, "shape", "is missing")
        return N.Input(shape=shape)
    if isinstance(n, nir.Output):
        return N.Output(shape=_shape_of(n.output_type.get("output")))
    if isinstance(n, nir.Affine):
        return N.Affine(weight=np.array(n.weight), bias=np.array(n.bias))
    if isinstance(n, nir.Linear):
        return N.Linear(weight=np.array(n.weight))
    if isinstance(n, (nir.Conv1d, nir.Conv2d)):
        weight = np.array(n.weight)
        bias = None if n.bias is None else np.array(n.bias)
        one = isinstance(n, nir.Conv1d)
        stride = _int(n.stride) if one else _pair(n.stride)
        dilation = _int(n.dilation) if one else _pair(n.dilation)
        padding: Any = n.padding
        if isinstance(padding, (str, bytes)):
            padding = padding.decode() if isinstance(padding, bytes) else padding
            if padding == "valid":
                padding = 0
            elif padding == "same" and np.all(np.asarray(stride) == 1):
                span = np.asarray(dilation) * (np.array(weight.shape[2:]) - 1)
                if np.any(span % 2):
                    raise _err(name, kind, "padding", "'same' needs symmetric padding, which this "
                               "kernel size and dilation do not give")
                padding = span // 2
            else:
                raise _err(name, kind, "padding", f"{padding!r} is not supported with stride {stride}")
        padding = _int(padding) if one else _pair(padding)
        cls: Any = N.Conv1d if one else N.Conv2d
        return cls(weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation,
                   groups=_int(n.groups))
    if isinstance(n, nir.Flatten):
        return N.Flatten(start_dim=_int(n.start_dim), end_dim=_int(n.end_dim))
    if isinstance(n, (nir.SumPool2d, nir.AvgPool2d)):
        cls = N.SumPool2d if isinstance(n, nir.SumPool2d) else N.AvgPool2d
        return cls(kernel_size=_pair(n.kernel_size), stride=_pair(n.stride), padding=_pair(n.padding))
    if isinstance(n, nir.Threshold):
        return N.Threshold(threshold=np.asarray(n.threshold, np.float32))
    if isinstance(n, nir.Delay):
        steps = _f64(n.delay) / dt
        whole = np.rint(steps)
        if not bool(np.allclose(steps, whole, rtol=0, atol=1e-6)) or bool((whole < 0).any()):
            raise _err(name, kind, "delay", f"must be whole non-negative multiples of dt={dt:g} s, "
                       f"got {_f64(n.delay).reshape(-1)[:4].tolist()} s")
        return N.Delay(delay=whole.astype(np.int64))
    if isinstance(n, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI)):
        return _import_neuron(nir, name, n, dt, reset, timing)
    raise ValueError(f"node {name!r}: NIR node type {kind!r} has no neuro equivalent "
                     f"(neuro reads {', '.join(sorted(_IMPORTABLE))}, NIRGraph)")


_IMPORTABLE = ("Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "Threshold",
               "Delay", "LIF", "CubaLIF", "IF", "LI", "SumPool2d", "AvgPool2d")


def _import_neuron(nir: Any, name: str, n: Any, dt: float, reset: str | None,
                   timing: str | None) -> N.Node:
    kind = type(n).__name__
    if isinstance(n, nir.LI) and not _is(_f64(n.v_leak), 0.0):
        raise _err(name, kind, "v_leak", "must be 0: neuro's LI has no resting offset")
    spiking = not isinstance(n, nir.LI)
    offsets = {}
    for field in ("v_leak", "v_reset"):
        v = getattr(n, field, None)
        if spiking and v is not None and not _is(_f64(v), 0.0):
            offsets[field] = _f64(v)
    thr = _f64(n.v_threshold) if spiking else None
    beta: Any  # np.float32 (IF) or an array; the node converts it
    if isinstance(n, nir.IF):
        gain, beta, tau_field = _f64(n.r), np.float32(1.0), None
    else:
        tau_field = "tau_mem" if isinstance(n, nir.CubaLIF) else "tau"
        tau = getattr(n, tau_field)
        beta = _decay(name, kind, tau_field, tau, dt)
        gain = _gain(n.r, tau, dt)
    decay_input = False
    if _is(gain, 1.0):
        gain = np.ones_like(gain)
    elif tau_field is not None and _is(gain, 1.0 - beta.astype(np.float64)):
        decay_input, gain = True, np.ones_like(gain)
    alpha: Any = None
    if isinstance(n, nir.CubaLIF):
        alpha = _decay(name, kind, "tau_syn", n.tau_syn, dt)
        g_syn = _gain(n.w_in, n.tau_syn, dt)
        if not _is(g_syn, 1.0):
            gain = gain * g_syn
    if not _is(gain, 1.0):
        field = "w_in" if isinstance(n, nir.CubaLIF) and _is(_gain(n.r, n.tau_mem, dt), 1.0) else "r"
        if not spiking or not bool((gain > 0).all()) or not bool(np.isfinite(gain).all()):
            raise _err(name, kind, field, f"gives an input gain of {np.ravel(gain)[:4].tolist()} per "
                       f"step at dt={dt:g} s, which neuro's {'LI' if not spiking else kind} cannot "
                       "express (needs 1, or 1 - beta for decay_input)")
        thr = thr / gain  # v' = v / gain: the same spikes, offsets scaled alike
        offsets = {k: v / gain for k, v in offsets.items()}
    if "v_reset" in offsets and not bool((thr - offsets["v_reset"] > 0).all()):
        raise _err(name, kind, "v_reset", "must lie below v_threshold")
    arrays = [a for a in (beta, thr, alpha, *offsets.values()) if a is not None and np.ndim(a)]
    shape = tuple(np.broadcast_shapes(*[np.shape(a) for a in arrays])) if arrays else None
    if isinstance(n, nir.LI):
        return N.LI(shape=shape, beta=beta, decay_input=decay_input)
    common: dict[str, Any] = dict(
        shape=shape, threshold=np.asarray(thr, np.float32), reset=reset or "zero",
        reset_timing=timing or "immediate",
        **{k: np.asarray(v, np.float32) for k, v in offsets.items()})
    if isinstance(n, nir.IF):
        return N.IF(beta=beta, **common)
    if isinstance(n, nir.CubaLIF):
        return N.CubaLIF(alpha=alpha, beta=beta, decay_input=decay_input, **common)
    return N.LIF(beta=beta, decay_input=decay_input, **common)


def _channel_affine(nir: Any, n: Any) -> N.ChannelAffine | None:
    """The ChannelAffine an exported diagonal Affine stands for; None when the weight is no
    longer diagonal (a file edited by another tool is read by its NIR parameters)."""
    if not isinstance(n, nir.Affine):
        return None
    w = np.asarray(n.weight)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or bool(np.any(w - np.diag(np.diag(w)))):
        return None
    return N.ChannelAffine(scale=np.diag(w).astype(np.float32),
                           shift=np.asarray(n.bias, np.float32))


def recorded_dt(nir_graph: Any) -> float | None:
    """The step (seconds) the file records in its graph metadata ``dt`` (neuro writes it; snnTorch
    and Norse do not), or None."""
    meta = nir_graph.metadata if isinstance(nir_graph.metadata, dict) else {}
    return None if meta.get("dt") is None else _resolve_dt(nir_graph, None)


def unrecorded_resets(nir_graph: Any) -> list[str]:
    """Spiking neuron nodes whose reset the file does not record (no neuro metadata: NIR itself
    has no reset mechanism field, and snnTorch's exporter writes subtractive-reset neurons as
    plain LIF nodes); they import with NIR's reset to ``v_reset`` unless told otherwise."""
    nir = require_nir()
    nodes, _ = _flatten(nir, nir_graph)
    return [name for name, n in nodes.items()
            if isinstance(n, (nir.LIF, nir.CubaLIF, nir.IF)) and _info(n) is None]


def _info(n: Any) -> dict[str, Any] | None:
    meta = getattr(n, "metadata", None)
    if not isinstance(meta, dict) or _KEY not in meta:
        return None
    try:
        info = _loads(meta[_KEY])
    except (ValueError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def _agrees(field: str, carried: Any, std: Any, mask: np.ndarray | None = None) -> bool:
    """Whether a carried field says the same as the value read from NIR parameters."""
    if isinstance(std, np.ndarray):
        if carried is None:
            return not bool(np.any(std != 0))
        try:
            c = np.broadcast_to(np.asarray(carried), std.shape)
        except ValueError:
            return False
        if c.dtype.kind not in "biuf":  # a malformed carried value (a dict, a string): no match
            return False
        if mask is not None:
            c, std = c[mask], std[mask]
        if np.issubdtype(std.dtype, np.integer):
            return bool(np.array_equal(c, std))
        return bool(np.allclose(c.astype(np.float64), std.astype(np.float64), rtol=_RTOL, atol=_ATOL))
    return True


def _apply(std: N.Node, extra: dict[str, Any], mask: np.ndarray | None = None) -> N.Node:
    """``std`` with the carried fields put back (arrays only while they agree with ``std``)."""
    base = _fields(std)
    extra = {k: v for k, v in extra.items() if k in base}
    arrays_ok = all(_agrees(k, v, base[k], mask if k == "delay" else None)
                    for k, v in extra.items() if isinstance(base[k], np.ndarray))
    if not arrays_ok:
        extra = {k: v for k, v in extra.items()
                 if not isinstance(base[k], np.ndarray) and k != "shape" and v is not None}
    try:
        return type(std).from_dict({"type": std.kind, **base, **extra})
    except (TypeError, ValueError):
        return std


def _flatten(nir: Any, graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges of ``graph`` with nested NIRGraphs inlined (names ``sub.node``)."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    into: dict[str, list[str]] = {}
    out_of: dict[str, list[str]] = {}
    for name, n in graph.nodes.items():
        full = prefix + str(name)
        if not isinstance(n, nir.NIRGraph):
            nodes[full] = n
            continue
        sub_nodes, sub_edges = _flatten(nir, n, full + ".")
        ins = [k for k, v in n.nodes.items() if isinstance(v, nir.Input)]
        outs = [k for k, v in n.nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError(f"node {full!r} (NIR NIRGraph): a nested graph needs exactly one Input "
                             f"and one Output node, got {len(ins)} and {len(outs)}")
        i_name, o_name = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
        into[full] = [d for s, d in sub_edges if s == i_name]
        out_of[full] = [s for s, d in sub_edges if d == o_name]
        del sub_nodes[i_name], sub_nodes[o_name]
        nodes.update(sub_nodes)
        edges += [(s, d) for s, d in sub_edges if i_name not in (s, d) and o_name not in (s, d)]
    seen = set(edges)
    for s, d in graph.edges:
        s, d = prefix + str(s), prefix + str(d)
        for a in out_of.get(s, [s]):
            for b in into.get(d, [d]):
                if (a, b) not in seen:
                    seen.add((a, b))
                    edges.append((a, b))
    return nodes, edges


def _group_delayed_affines(nir: Any, nodes: dict[str, Any], edges: list[tuple[str, str]],
                           dt: float) -> dict[str, tuple[N.Node, list[str], list[tuple[str, str]]]]:
    """DelayedAffine branch groups that check out: name -> (node, members, internal edges)."""
    groups: dict[str, dict[int, dict[str, str]]] = {}
    for name, n in nodes.items():
        info = _info(n)
        if info and info.get("kind") == "DelayedAffine" and "group" in info:
            g = groups.setdefault(str(info["group"]), {})
            g.setdefault(int(info.get("steps", -1)), {})[str(info.get("role"))] = name
    out: dict[str, tuple[N.Node, list[str], list[tuple[str, str]]]] = {}
    for gname, branches in groups.items():
        if gname in nodes:
            continue
        parts = []
        ok = True
        preds_ref = succs_ref = None
        for _, roles in sorted(branches.items()):
            w, d = roles.get("weight"), roles.get("delay")
            if w is None or d is None or set(roles) != {"weight", "delay"}:
                ok = False
                break
            wn, dn = nodes[w], nodes[d]
            if not isinstance(wn, (nir.Linear, nir.Affine)) or not isinstance(dn, nir.Delay):
                ok = False
                break
            preds = [s for s, t in edges if t == w]
            succs = [t for s, t in edges if s == d]
            if ([t for s, t in edges if s == w] != [d] or [s for s, t in edges if t == d] != [w]
                    or (preds_ref is not None and (preds != preds_ref or succs != succs_ref))):
                ok = False
                break
            preds_ref, succs_ref = preds, succs
            steps = _f64(dn.delay) / dt
            step = int(np.rint(steps.reshape(-1)[0])) if steps.size else -1
            if (step < 0 or not bool(np.allclose(steps, step, rtol=0, atol=1e-6))
                    or steps.shape != (np.asarray(wn.weight).shape[0],)):
                ok = False
                break
            bias = np.array(wn.bias) if isinstance(wn, nir.Affine) else None
            if bias is not None and step != 0:
                ok = False
                break
            parts.append((step, np.array(wn.weight), bias, w, d))
        if not ok or not parts or len({p[0] for p in parts}) != len(parts):
            continue
        node = _rebuild_delayed_affine([(s, w, b) for s, w, b, _, _ in parts])
        if node is None:
            continue
        first = _info(nodes[parts[0][3]]) or {}
        if first.get("fields"):
            node = cast(N.DelayedAffine, _apply(node, first["fields"], mask=node.weight != 0))
        members = [m for *_, w, d in parts for m in (w, d)]
        out[gname] = (node, members, [(w, d) for *_, w, d in parts])
    return out


def _resolve_dt(nir_graph: Any, dt: float | None) -> float:
    if dt is None:
        meta = nir_graph.metadata if isinstance(nir_graph.metadata, dict) else {}
        if "dt" not in meta:
            raise ValueError("the NIR graph records no time step (metadata 'dt'; snnTorch and "
                             "Norse do not write one): pass dt=SECONDS, the step its exporter "
                             f"simulated (snnTorch's is {SNNTORCH_DT:g} s: "
                             "neuro.graph.nir_io.SNNTORCH_DT)")
        dt = meta["dt"]
    try:
        dt = float(np.asarray(dt).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"graph metadata field 'dt' must be a number of seconds, got {dt!r}") from None
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"graph metadata field 'dt' must be a positive number of seconds, got {dt!r}")
    return dt


def from_nir(nir_graph: Any, dt: float | None = None, *, reset: str | None = None,
             reset_timing: str | None = None) -> Graph:
    """Convert a ``nir.NIRGraph`` to a validated :class:`Graph`.

    ``dt`` (seconds per step): default the graph's ``metadata["dt"]``; a ``ValueError`` naming
    ``dt`` when neither gives one (pass :data:`SNNTORCH_DT` for a file snnTorch wrote).
    ``reset``/``reset_timing``: for spiking NIR neurons that carry no neuro metadata (NIR itself
    means ``"zero"``/``"immediate"``); e.g. ``reset="subtract", reset_timing="deferred"`` for a
    model exported by snnTorch with its default ``Leaky``/``Synaptic`` reset.
    Raises ``ValueError`` naming the node and field for anything neuro cannot represent.
    """
    nir = require_nir()
    if not isinstance(nir_graph, nir.NIRGraph):
        raise TypeError(f"from_nir needs a nir.NIRGraph, got {type(nir_graph).__name__}")
    for value, allowed, what in ((reset, N.RESETS, "reset"), (reset_timing, N.TIMINGS, "reset_timing")):
        if value is not None and value not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    dt = _resolve_dt(nir_graph, dt)
    nodes, edges = _flatten(nir, nir_graph)
    groups = _group_delayed_affines(nir, nodes, edges, dt)
    member_of = {m: g for g, (_, members, _) in groups.items() for m in members}
    internal = {e for _, _, inner in groups.values() for e in inner}

    out_nodes: dict[str, N.Node] = {}
    for name, n in nodes.items():
        if name in member_of:
            g = member_of[name]
            if g not in out_nodes:
                out_nodes[g] = groups[g][0]
            continue
        info = _info(n)
        carried = info is not None and info.get("kind") is not None and "fields" in info
        channel = _channel_affine(nir, n) if info and info.get("kind") == "ChannelAffine" else None
        node: N.Node
        if channel is not None:
            node = channel
        elif carried:
            assert info is not None  # carried implies info
            std = _import_node(nir, name, n, dt, None, None)
            node = _apply(std, info["fields"]) if info["kind"] == std.kind else std
        else:
            node = _import_node(nir, name, n, dt, reset, reset_timing)
        out_nodes[name] = node
    out_edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for s, d in edges:  # collapsing branches keeps the first occurrence, so the original order
        e = (member_of.get(s, s), member_of.get(d, d))
        if (s, d) not in internal and e not in seen:
            seen.add(e)
            out_edges.append(e)

    meta = nir_graph.metadata if isinstance(nir_graph.metadata, dict) else {}
    metadata: dict[str, Any] = {"source": "nir"}
    if _KEY in meta:
        try:
            extra = _loads(meta[_KEY])
        except (ValueError, TypeError):
            extra = {}
        order = extra.get("node_order") if isinstance(extra, dict) else None
        if isinstance(order, list) and set(order) == set(out_nodes):
            out_nodes = {k: out_nodes[k] for k in order}
        if isinstance(extra, dict) and isinstance(extra.get("metadata"), dict):
            metadata = extra["metadata"]
    return Graph(out_nodes, out_edges, dt=dt, metadata=metadata).validate()


# ------------------------------------------------------------------------------------- files
def _check_names(nir: Any, graph: Any, where: str = "") -> None:
    for name, n in graph.nodes.items():
        if "/" in str(name) or str(name) in (".", ""):
            raise ValueError(f"node {where + str(name)!r}: this name cannot be stored in a NIR file "
                             "(HDF5 reserves '/' and '.')")
        if isinstance(n, nir.NIRGraph):
            _check_names(nir, n, f"{where}{name}.")


def write_nir(graph: Graph | Any, path: str | Path) -> Path:
    """Write ``graph`` (a :class:`Graph`, or a ``nir.NIRGraph``) to the NIR file ``path``, atomically."""
    from ..atomic import atomic_write

    nir = require_nir()
    nir_graph = graph if isinstance(graph, nir.NIRGraph) else to_nir(graph)
    _check_names(nir, nir_graph)
    return atomic_write(path, lambda tmp: nir.write(tmp, nir_graph))


def _known_types(nir: Any) -> set[str]:
    return {k for k in nir.ir.__all__
            if isinstance(getattr(nir, k, None), type) and issubclass(getattr(nir, k), nir.NIRNode)}


def _graph_from_dict(nir: Any, d: dict[str, Any], where: str, prefix: str = "") -> Any:
    """A ``nir.NIRGraph`` from the dict ``nir.serialization.hdf2dict`` reads, with errors that
    name the node and field (``nir.read`` itself fails with bare assertions)."""
    from nir.ir.utils import ensure_str

    known = _known_types(nir)
    if not isinstance(d.get("nodes"), dict) or "edges" not in d:
        raise ValueError(f"{where}: graph {prefix.rstrip('.') or '<root>'!r} lacks field 'nodes' or 'edges'")
    nodes = {}
    for name, nd in d["nodes"].items():
        full = prefix + str(name)
        t = nd.get("type") if isinstance(nd, dict) else None
        if isinstance(t, bytes):
            t = t.decode("utf8", "replace")
        if t == "NIRGraph":
            nodes[name] = _graph_from_dict(nir, nd, where, full + ".")
            continue
        if t not in known:
            raise ValueError(f"{where}: node {full!r}: field 'type' is {t!r}, not a NIR node type "
                             f"(known: {', '.join(sorted(known))})")
        try:
            nodes[name] = nir.dict2NIRNode(dict(nd))
        except (AssertionError, TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{where}: node {full!r} ({t}): bad fields ({msg})") from None
    try:
        edge_list = [(ensure_str(a), ensure_str(b)) for a, b in np.asarray(d["edges"]).reshape(-1, 2)]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: field 'edges' is malformed ({exc})") from None
    meta = d.get("metadata", {})
    return nir.NIRGraph(nodes=nodes, edges=edge_list, metadata=meta if isinstance(meta, dict) else {},
                        type_check=False)


def _check_version(nir: Any, path: Path, version: str) -> None:
    """Refuse a version newer than the installed ``nir`` (older ones: ``nir.read`` converts them)."""
    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split(".")[:2]:
            digits = "".join(c for c in p if c.isdigit())
            out.append(int(digits) if digits else 0)
        return tuple(out)

    try:
        newer = parts(version) > parts(str(nir.version))
    except ValueError:
        newer = True
    if newer:
        raise ValueError(f"{path}: field 'version' is {version!r}, newer than the installed nir "
                         f"{nir.version}, which reads NIR files up to {nir.version}")


def _nir_read_check(nir: Any, path: Path) -> None:
    """Refuse what ``nir.read`` itself refuses (edges to missing nodes, mismatched types), in one
    line naming the edge or node."""
    try:
        nir.read(str(path))
    except Exception as exc:  # noqa: BLE001 - nir raises bare assertions and ValueErrors
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: nir.read refuses this file: {msg}") from None


def read_nir(path: str | Path, dt: float | None = None, *, reset: str | None = None,
             reset_timing: str | None = None) -> Graph:
    """Read a NIR file (``nir.write`` format) into a validated :class:`Graph` (see :func:`from_nir`).

    Raises ``ValueError`` naming the file, and the node and field where there is one, for a file
    that is not NIR, a NIR version this neuro does not read, a node type it cannot import, or
    values it refuses (NaN or infinite weights).
    """
    nir_graph = read_nir_graph(path)
    try:
        return from_nir(nir_graph, dt, reset=reset, reset_timing=reset_timing)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def read_nir_graph(path: str | Path) -> Any:
    """The ``nir.NIRGraph`` of a NIR file, checked as :func:`read_nir` checks it."""
    nir = require_nir()

    from ..safeio import hdf5_file, read_hdf5_tree

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such NIR file")
    try:
        with hdf5_file(path, kind="NIR file") as f:  # h5py's errors on a corrupt file: one ValueError
            version = f["version"][()] if "version" in f else None
            if "node" not in f:
                raise ValueError(f"{path}: not a NIR file (no 'node' group)")
            data = read_hdf5_tree(f["node"], str(path))  # depth and size limits
    except OSError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a NIR file ({msg})") from None
    if isinstance(version, bytes):
        version = version.decode("utf8", "replace")
    if not isinstance(version, str):
        raise ValueError(f"{path}: not a NIR file (field 'version' missing)")
    _check_version(nir, path, version)
    if data.get("type") != "NIRGraph":
        raise ValueError(f"{path}: field 'type' of the root node is {data.get('type')!r}, "
                         "expected 'NIRGraph'")
    nir_graph = _graph_from_dict(nir, data, str(path))  # names the node and field of a bad node
    _nir_read_check(nir, path)
    return nir_graph


__all__ = ["EXPRESSIBLE", "SNNTORCH_DT", "from_nir", "read_nir", "read_nir_graph", "recorded_dt",
           "require_nir", "to_nir", "unrecorded_resets", "write_nir"]
