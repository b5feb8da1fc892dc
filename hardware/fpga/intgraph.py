"""The self-describing integer graph of the FPGA target: ``graph.json`` + ``weights.npz``.

This is what an RTL engineer implements (the artifact's ``graph/`` holds the quantized graph IR it
was built from, in neuro's own format). It is built from a graph quantized to an FPGA format
(``int8``, ``int16``, ``int8-m12``, ``int16-m12``, or any ``neuro.graph.formats.fpga(...)``) and
is complete on its own: the ONNX step graph (:mod:`.onnx_step`) and the Verilog
(:mod:`.verilog`) are generated from it alone, so their bit-exact agreement with the reference
executor also checks that nothing is missing here.

Values are flattened per step: a node with per-step shape ``shape`` carries ``[B, size]``,
``size = prod(shape)`` (``Flatten`` is the identity). ``layers`` are listed in the **exact per-step
update order**: at step ``t`` every layer computes its value from its sources in this order; a
source marked ``previous_step`` (a recurrent edge leaving a neuron) gives the value that source
produced at step ``t - 1`` (0 at ``t = 0``), every other source the value of step ``t``. A layer's
input ``a`` is the sum of its sources. There is no latency between layers inside a step: the
output at step ``t`` belongs to input step ``t``, exactly as in ``neuro.graph.intsim``.

Layer ops (integers throughout; ``shr(x, k)`` rounds as ``arithmetic.rounding`` says:
``toward_zero``: ``sign(x) (|x| >> k)``, ``floor``: ``x >> k``; ``overflow(x)``: ``saturate``
clips to ``[-2^(state_bits-1), 2^(state_bits-1) - 1]``, ``wrap`` keeps the low ``state_bits`` bits
as two's complement)::

    dense          y[o] = (sum_i W[o, i] a[i]) << weight_exp          (>> floors for exp < 0)
    delayed_dense  y[o] = (sum_i W[o, i] a_{t - D[o, i]}[i]) << weight_exp;  a_{t-d} = 0 for t < d
    delay          y[i] = a_{t - D[i]}[i]
    conv2d         y[o, i, j] = (sum_{c, a, b} W[o, c, a, b] x[c, i s0 + a d0 - p0, j s1 + b d1 - p1])
                                << weight_exp     (x = a as [C, H, W] = in_shape, 0 outside it;
                                                   W [Cout, Cin / groups, kh, kw]; flat [Cout, Ho, Wo])
    sumpool2d      y[c, i, j] = sum_{a < kh, b < kw} x[c, i s0 + a - p0, j s1 + b - p1]   (0 outside)
    identity       y = a                                   (Flatten)
    lif / li       i = overflow(decay(i, alpha) + a)       (cuba only; else i = a)
                   v = overflow(decay(v, beta) + i + bias)
                   lif: s = v >= vth ("ge") or v > vth ("gt"); v = 0 ("zero") or v - vth
                        ("subtract") where s; y = s (0/1)
                   li:  y = v
    decay (shift)     decay(v) = v - shr(v, k)  (k = 0: no leak; beta ~ 1 - 2^-k)
    decay (mantissa)  decay(v) = shr(v m, decay_bits)   (beta ~ m / 2^decay_bits)
    output         y = a

``bias`` is the summed integer bias of the synapses feeding the neuron, in membrane units.
Graph inputs are unsigned ``input_bits``-bit integers per channel (1: spikes 0/1; at most 8).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, overload

import numpy as np

from neuro.graph import nodes as N
from neuro.graph.formats import NumberFormat
from neuro.graph.graph import Graph
from neuro.graph.populations import neuron_bias

INTGRAPH_FORMAT = "neuro-fpga-intgraph"
INTGRAPH_VERSION = 1
INPUT_BITS = 1  # default width of graph inputs: spikes 0/1 (8 allows counts 0..255)

#: node kinds with an FPGA integer form (exact classes: a subclass of one of them is refused)
KINDS: frozenset[type[N.Node]] = frozenset({N.Input, N.Output, N.Linear, N.Affine, N.DelayedAffine, N.Delay, N.Flatten,
                   N.LIF, N.CubaLIF, N.IF, N.LI, N.Conv2d, N.SumPool2d})


def int_dtype(bits: int, signed: bool = True) -> np.dtype:
    """The smallest numpy integer type holding ``bits`` bits."""
    for b in (8, 16, 32, 64):
        if bits <= b:
            return np.dtype(f"{'' if signed else 'u'}int{b}")
    raise ValueError(f"no integer type holds {bits} bits")


def signed_bits(values: np.ndarray) -> int:
    """Two's-complement bits needed for every value of ``values`` (at least 1)."""
    v = np.asarray(values, np.int64)
    if v.size == 0:
        return 1
    lo, hi = int(v.min()), int(v.max())
    return max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1


def fmt_of(graph: Graph) -> NumberFormat:
    return NumberFormat.from_dict(graph.metadata["format"])


def _full(value: Any, size: int, name: str, field: str) -> np.ndarray:
    a = np.asarray(value, np.int64)
    if a.ndim and a.size != size:
        raise ValueError(f"node {name!r}: field {field!r} has {a.size} values for {size} neurons")
    return np.ascontiguousarray(np.broadcast_to(a.reshape(-1) if a.ndim else a, (size,)))


def build(q: Graph, input_bits: int = INPUT_BITS) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(graph.json dict, weights.npz arrays)`` for the quantized graph ``q``; graph inputs are
    unsigned ``input_bits``-bit values per channel and step (1: spikes)."""
    if not 1 <= input_bits <= 8:
        raise ValueError(f"target fpga: input_bits must lie in 1..8, got {input_bits}")
    fmt = fmt_of(q)
    sched = q.schedule()
    shapes = q.infer_shapes()
    size = {n: int(np.prod(s)) for n, s in shapes.items()}
    arrays: dict[str, np.ndarray] = {}
    value: dict[str, dict[str, Any]] = {}  # per node: kind "u8" (0..255) or "int" (signed)
    layers: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    vbits = fmt.state_bits

    def put(key: str, a: np.ndarray, bits: int, signed: bool = True) -> str:
        arrays[key] = np.asarray(a).astype(int_dtype(bits, signed))
        return key

    for name in sched.order:
        node: Any = q.nodes[name]  # fields read by its exact class
        if type(node) not in KINDS:
            raise ValueError(f"node {name!r} ({node.kind}) has no integer form on target fpga")
        srcs: list[dict[str, Any]] = [{"node": s, "previous_step": (s, name) in sched.delayed} for s in q.predecessors(name)]
        if node.role == "input":
            inputs.append({"name": name, "shape": list(shapes[name]), "size": size[name],
                           "bits": input_bits, "signed": False})
            value[name] = {"kind": "u8", "bits": input_bits}
            continue
        in_kinds = [value[s["node"]] if s["node"] in value else _neuron_value(q.nodes[s["node"]], vbits)
                    for s in srcs]
        summed: dict[str, Any] = (in_kinds[0] if len(in_kinds) == 1 else {"kind": "int", "bits": vbits})
        layer: dict[str, Any] = {"name": name, "kind": node.kind, "sources": srcs,
                                 "size": size[name], "shape": list(shapes[name]), "state": []}
        if type(node) is N.Conv2d:
            w = np.asarray(node.weight, np.int64)
            in_shape = list(shapes[q.predecessors(name)[0]])
            layer.update(op="conv2d", in_shape=in_shape, n_in=int(np.prod(in_shape)),
                         n_out=size[name], stride=list(node.stride), padding=list(node.padding),
                         dilation=list(node.dilation), groups=int(node.groups),
                         weight=put(f"{name}/weight", w, max(fmt.weight_bits, signed_bits(w))),
                         weight_bits=fmt.weight_bits, weight_exp=int(node.weight_exp),
                         input=summed)
            value[name] = {"kind": "int", "bits": vbits}
        elif type(node) is N.SumPool2d:
            in_shape = list(shapes[q.predecessors(name)[0]])
            window = int(np.prod(node.kernel_size))
            layer.update(op="sumpool2d", in_shape=in_shape, kernel_size=list(node.kernel_size),
                         stride=list(node.stride), padding=list(node.padding), input=summed)
            bits = summed["bits"] + (window - 1).bit_length()
            value[name] = ({"kind": "u8", "bits": bits} if summed["kind"] == "u8" and bits <= 8
                           else {"kind": "int", "bits": max(vbits, bits)})
        elif node.role == "synapse":
            w = np.asarray(node.weight, np.int64)
            layer.update(op="delayed_dense" if type(node) is N.DelayedAffine else "dense",
                         n_in=int(w.shape[1]), n_out=int(w.shape[0]),
                         weight=put(f"{name}/weight", w, max(fmt.weight_bits, signed_bits(w))),
                         weight_bits=fmt.weight_bits, weight_exp=int(node.weight_exp),
                         input=summed)
            if type(node) is N.DelayedAffine:
                d = np.asarray(node.delay, np.int64)
                dmax = int(d.max(initial=0))
                layer.update(delay=put(f"{name}/delay", d, max(1, dmax.bit_length()), False),
                             max_delay=dmax, delay_bits=max(1, dmax.bit_length()))
                if dmax:
                    layer["state"].append({"name": "history", "shape": [dmax, layer["n_in"]],
                                           "bits": summed["bits"], "signed": summed["kind"] == "int",
                                           "meaning": "inputs of steps t-1 .. t-max_delay (row 0 = t-1)"})
            value[name] = {"kind": "int", "bits": vbits}
        elif type(node) is N.Delay:
            d = _full(node.delay, size[name], name, "delay")
            dmax = int(d.max(initial=0))
            layer.update(op="delay", delay=put(f"{name}/delay", d, max(1, dmax.bit_length()), False),
                         max_delay=dmax, delay_bits=max(1, dmax.bit_length()))
            if dmax:
                layer["state"].append({"name": "history", "shape": [dmax, size[name]],
                                       "bits": summed["bits"], "signed": summed["kind"] == "int",
                                       "meaning": "inputs of steps t-1 .. t-max_delay (row 0 = t-1)"})
            value[name] = summed
        elif type(node) is N.Flatten:
            layer["op"] = "identity"
            value[name] = summed
        elif node.role == "output":
            layer["op"] = "output"
            value[name] = summed
        else:  # LIF / CubaLIF / IF / LI
            qp = node.q
            if qp is None:
                raise ValueError(f"node {name!r} ({node.kind}) has no integer parameters: quantize first")
            spiking = node.spiking
            cuba = type(node) is N.CubaLIF
            n = size[name]
            layer.update(op="lif" if spiking else "li", cuba=cuba, scale=float(qp["scale"]))
            layer["beta"] = _leak(fmt, qp, "beta", n, name, put)
            if cuba:
                layer["alpha"] = _leak(fmt, qp, "alpha", n, name, put)
            bsum = neuron_bias(q, name, np.int64)  # a Conv2d's [Cout] bias as [Cout, 1, 1]
            if bsum is not None and np.asarray(bsum).ndim == 3:
                bsum = np.broadcast_to(bsum, shapes[name])
            layer["bias"] = (put(f"{name}/bias", _full(bsum, n, name, "bias"), fmt.state_bits)
                             if bsum is not None and np.any(bsum) else None)
            if spiking:
                layer.update(threshold=put(f"{name}/threshold", _full(qp["vth"], n, name, "vth"),
                                           fmt.state_bits),
                             reset=node.reset, spike_rule=fmt.spike_rule)
            layer["state"].append({"name": "v", "shape": [n], "bits": fmt.state_bits, "signed": True,
                                   "meaning": "membrane after reset"})
            if cuba:
                layer["state"].append({"name": "i", "shape": [n], "bits": fmt.state_bits,
                                       "signed": True, "meaning": "synaptic current"})
            value[name] = _neuron_value(node, vbits)
            layer["input"] = summed
        layer["value"] = value[name]
        layers.append(layer)
    # neurons whose value is read one step later need their previous output as state
    for layer in layers:
        if any((layer["name"], d) in sched.delayed for d in q.successors(layer["name"])):
            v = layer["value"]
            layer["state"].append({"name": "previous_output", "shape": [layer["size"]],
                                   "bits": v["bits"], "signed": v["kind"] == "int",
                                   "meaning": "this layer's value at step t-1 (recurrent edges)"})
    outputs = [{"name": n, "shape": list(shapes[n]), "size": size[n], "value": value[n]}
               for n in q.outputs()]
    desc = {
        "format": INTGRAPH_FORMAT, "version": INTGRAPH_VERSION,
        "number_format": fmt.to_dict(),
        "arithmetic": {
            "weight_bits": fmt.weight_bits, "state_bits": fmt.state_bits,
            "decay": fmt.decay, "decay_bits": fmt.decay_bits, "rounding": fmt.rounding,
            "overflow": fmt.overflow, "spike_rule": fmt.spike_rule, "input_bits": input_bits,
            "update_order": list(fmt.update_order),
            "equations": __doc__.split("Layer ops", 1)[1].strip(),
        },
        "dt": q.dt,
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "graph_digest": q.digest(),
    }
    return desc, arrays


def _neuron_value(node: N.Node, vbits: int) -> dict[str, Any]:
    """The value a neuron delivers (known before it is scheduled: recurrent edges)."""
    return {"kind": "u8", "bits": 1} if node.spiking else {"kind": "int", "bits": vbits}


def _leak(fmt: NumberFormat, qp: dict[str, Any], which: str, n: int, name: str, put) -> dict[str, Any]:
    if fmt.decay == "shift":
        k = _full(qp[f"{which}_shift"], n, name, f"{which}_shift")
        return {"kind": "shift", "k": put(f"{name}/{which}_shift", k, 8, False)}
    if fmt.decay == "mantissa":
        m = _full(qp[f"{which}_m"], n, name, f"{which}_m")
        return {"kind": "mantissa", "m": put(f"{name}/{which}_m", m, fmt.decay_bits + 2),
                "bits": fmt.decay_bits}
    raise ValueError(f"node {name!r}: decay {fmt.decay!r} has no FPGA form")


def save(desc: dict[str, Any], arrays: dict[str, np.ndarray], out_dir: Path) -> dict[str, str]:
    """Write ``graph.json`` and ``weights.npz`` into ``out_dir`` (a fresh temporary directory
    of the artifact writer); returns the manifest's file listing."""
    (out_dir / "graph.json").write_text(json.dumps(desc, indent=1))
    np.savez(out_dir / "weights.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
    return {"graph.json": "integer graph: layers in per-step update order, bit widths, arithmetic",
            "weights.npz": "integer weights, delays, thresholds, leaks, biases (keys in graph.json)"}


#: the shape of graph.json that :func:`load` checks before use
DESC_SCHEMA = {"layers": [{"name": str, "op": str, "?sources": [{"node": str}],
                           "?shape": [int], "?size": int, "?n_out": int,
                           "?value": {"kind": str, "bits": int}}],
               "inputs": [{"name": str, "bits": int}], "?graph_digest": str}


def load(artifact: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read ``graph.json`` + ``weights.npz`` of an artifact (checked: format, version, keys)."""
    from neuro.safeio import read_json, read_npz
    from neuro.validate import check_json

    path = Path(artifact)
    desc = read_json(path / "graph.json")
    arrays = read_npz(path / "weights.npz")
    if not isinstance(desc, dict) or desc.get("format") != INTGRAPH_FORMAT \
            or desc.get("version") != INTGRAPH_VERSION:
        raise ValueError(f"{path}/graph.json: not a {INTGRAPH_FORMAT} version {INTGRAPH_VERSION} file")
    check_json(desc, DESC_SCHEMA, str(path / "graph.json"))
    for layer in desc["layers"]:
        for key in ("weight", "delay", "bias", "threshold"):
            if layer.get(key) and layer[key] not in arrays:
                raise ValueError(f"{path}: layer {layer['name']!r}: array {layer[key]!r} missing "
                                 "from weights.npz")
    return desc, arrays


def value_bound(value: dict[str, Any]) -> int:
    """Largest magnitude of a value of kind ``u8`` (unsigned ``bits``) or ``int`` (signed)."""
    return (1 << value["bits"]) - 1 if value["kind"] == "u8" else 1 << (value["bits"] - 1)


def source_bounds(desc: dict[str, Any]) -> dict[str, int]:
    """Bounds of every input and layer value from its declared kind (neurons, recurrent
    sources); synapse sums are refined by the callers in update order."""
    out = {i["name"]: (1 << i["bits"]) - 1 for i in desc["inputs"]}
    out.update({layer["name"]: value_bound(layer["value"]) for layer in desc["layers"]})
    return out


@overload
def array(arrays: dict[str, np.ndarray], key: str) -> np.ndarray: ...
@overload
def array(arrays: dict[str, np.ndarray], key: None) -> None: ...
@overload
def array(arrays: dict[str, np.ndarray], key: str | None) -> np.ndarray | None: ...
def array(arrays: dict[str, np.ndarray], key: str | None) -> np.ndarray | None:
    return None if key is None else np.asarray(arrays[key], np.int64)
