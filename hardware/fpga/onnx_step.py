"""``step.onnx``: one time step of the integer graph in standard integer ONNX ops.

Inputs: ``x/<input>`` (uint8 ``[B, size]``: spikes or counts 0..255) and every state register
``state/<layer>/<register>``; outputs: ``y/<layer>`` for every neuron layer (uint8 spikes of LIF
layers, the integer membrane of LI layers), ``output/<name>`` for every graph output, and the new
state ``next/<layer>/<register>``. Running it ``T`` times, feeding ``next/...`` back as
``state/...`` (all zeros at ``t = 0``), gives the reference executor's values step for step (no
latency: everything of step ``t`` is computed inside one call).

Ops: ``MatMulInteger`` (uint8 spikes x int8 weights -> int32) where the source is unsigned 8-bit
and the weights fit 8 bits, else ``MatMul`` on the compute type; a ``conv2d`` layer is an im2col
``Pad`` + ``Gather`` (one row of ``Cin kh kw`` input cells per output pixel, padding cells read
an appended zero) followed by the same ``MatMulInteger``/``MatMul`` and a ``Transpose`` to
``[Cout, Ho, Wo]``; ``sumpool2d`` is ``Pad`` + ``Gather`` of the windows + ``ReduceSum``; ``Add``/``Sub``/``Mul``/``Div``/
``Mod``, ``Clip``, ``Greater``/``GreaterOrEqual``, ``Where``, ``Cast``, and ``Concat``/``Slice``/
``Gather``/``Reshape``/``Unsqueeze`` for the delay lines. Right shifts are integer ``Div`` by
``2^k``: ONNX Runtime's integer ``Div`` truncates toward zero (the ``toward_zero`` rule); the
``floor`` rule is ``Div(x - Mod(x, 2^k), 2^k)`` (``Mod`` with ``fmod=0`` takes the divisor's sign),
an exact division. ``BitShift`` is not used: ONNX defines it for unsigned types only.

The compute type is int32 when every intermediate provably fits (state of at most 16 bits and
bounded synaptic sums), else int64. State registers are stored in the smallest signed type that
holds ``state_bits`` (int16 for ``int8`` formats). Opset 17, IR version 8 (onnxruntime >= 1.13).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .intgraph import array, source_bounds

OPSET = 17
IR_VERSION = 8


def _require_onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("target fpga needs the 'onnx' package to write step.onnx "
                          "(pip install onnx==1.18.0)") from None
    return onnx, TensorProto, helper, numpy_helper


def compute_bits(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
    """32 or 64: the integer width every intermediate of the step provably fits in."""
    sb = desc["arithmetic"]["state_bits"]
    if sb > 16:
        return 64
    bound = source_bounds(desc)
    worst = 1 << (sb + desc["arithmetic"]["decay_bits"] + 1)
    for layer in desc["layers"]:
        a = sum(bound[s["node"]] for s in layer["sources"])
        if layer["op"] in ("dense", "delayed_dense", "conv2d"):
            w = array(arrays, layer["weight"])
            y = int(np.abs(w).reshape(w.shape[0], -1).sum(1).max(initial=0)) * a
            e = layer["weight_exp"]
            bound[layer["name"]] = y << e if e > 0 else y
            worst = max(worst, bound[layer["name"]])
        elif layer["op"] == "sumpool2d":
            bound[layer["name"]] = a * int(np.prod(layer["kernel_size"]))
            worst = max(worst, bound[layer["name"]])
        elif layer["op"] in ("lif", "li"):
            worst = max(worst, a + (3 << (sb - 1)))
            bound[layer["name"]] = 1 if layer["op"] == "lif" else 1 << (sb - 1)
        else:
            bound[layer["name"]] = a
    return 32 if worst < (1 << 31) else 64


class _Builder:
    def __init__(self, bits: int) -> None:
        onnx, TP, helper, nh = _require_onnx()
        self.onnx, self.TP, self.helper, self.nh = onnx, TP, helper, nh
        self.np = np.int32 if bits == 32 else np.int64
        self.T = TP.INT32 if bits == 32 else TP.INT64
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.consts: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}#{self.count}"

    def const(self, a: np.ndarray, hint: str = "c") -> str:
        a = np.ascontiguousarray(a)
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else None
        if key is not None and key in self.consts:
            return self.consts[key]
        name = self.fresh(hint)
        self.inits.append(self.nh.from_array(a, name))
        if key is not None:
            self.consts[key] = name
        return name

    def ic(self, value: Any, hint: str = "c") -> str:
        """A constant of the compute type."""
        return self.const(np.asarray(value, self.np), hint)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None,
           **attrs: Any) -> str:
        out = out or self.fresh(hint or op_type)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def cast(self, x: str, to: int, out: str | None = None) -> str:
        return self.op("Cast", [x], "cast", out, to=to)

    # -- integer helpers -------------------------------------------------------------------------
    def shr(self, x: str, div: str, rounding: str) -> str:
        """``x >> k`` as a division by ``div = 2^k`` with the format's rounding."""
        if rounding == "toward_zero":
            return self.op("Div", [x, div], "shr")
        exact = self.op("Sub", [x, self.op("Mod", [x, div], "mod", fmod=0)], "sub")
        return self.op("Div", [exact, div], "shr")

    def overflow(self, x: str, arith: dict[str, Any]) -> str:
        sb = arith["state_bits"]
        if arith["overflow"] == "saturate":
            return self.op("Clip", [x, self.ic(-(1 << (sb - 1))), self.ic((1 << (sb - 1)) - 1)], "sat")
        half = self.ic(1 << (sb - 1))
        m = self.op("Mod", [self.op("Add", [x, half]), self.ic(1 << sb)], "wrap", fmod=0)
        return self.op("Sub", [m, half], "wrap")

    def decay(self, v: str, leak: dict[str, Any], arrays: dict[str, np.ndarray],
              arith: dict[str, Any]) -> str:
        if leak["kind"] == "mantissa":
            m = array(arrays, leak["m"])
            p = self.op("Mul", [v, self.ic(m[0] if (m == m[0]).all() else m, "m")], "vm")
            return self.shr(p, self.ic(1 << leak["bits"]), arith["rounding"])
        k = array(arrays, leak["k"])
        if not k.any():
            return v
        uniform = bool((k == k[0]).all())
        div = self.ic(1 << int(k[0]) if uniform else (1 << np.maximum(k, 1)), "pow2")
        shr = self.shr(v, div, arith["rounding"])
        if not (k > 0).all():
            shr = self.op("Mul", [shr, self.ic((k > 0).astype(np.int64), "leak_on")])
        return self.op("Sub", [v, shr], "decay")


def im2col_index(in_shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int] = (1, 1),
                 channels: bool = True) -> np.ndarray:
    """Gather indices of the windows of a ``[C, H, W]`` value flattened to ``n = C H W``:
    ``[Ho Wo, C kh kw]`` (``channels``: one row per output pixel over every channel, the im2col
    of a convolution) or ``[C Ho Wo, kh kw]`` (a pooling window per channel and pixel); a cell
    outside the input (zero padding) reads index ``n``, a zero appended to the value."""
    C, H, W = in_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho, Wo = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    c, i, j, a, b = np.meshgrid(np.arange(C), np.arange(Ho), np.arange(Wo), np.arange(kh),
                                np.arange(kw), indexing="ij")
    y, x = i * sh + a * dh - ph, j * sw + b * dw - pw
    idx = np.where((y >= 0) & (y < H) & (x >= 0) & (x < W), (c * H + y) * W + x, C * H * W)
    if channels:  # [C, Ho, Wo, kh, kw] -> [Ho Wo, C kh kw]
        return np.ascontiguousarray(idx.transpose(1, 2, 0, 3, 4).reshape(Ho * Wo, C * kh * kw))
    return np.ascontiguousarray(idx.reshape(C * Ho * Wo, kh * kw))


def conv_fan_out(layer: dict[str, Any], w: np.ndarray) -> np.ndarray:
    """Per input cell of a ``conv2d`` layer, the synapses it reaches: the kernel taps (zero
    weights included, as a dense layer's row) whose output pixel reads it, times the output
    channels of its group; zero padding excluded. ``[Cin H W]`` int64."""
    co, _, kh, kw = w.shape
    idx = im2col_index(layer["in_shape"], [kh, kw], layer["stride"], layer["padding"],
                       layer["dilation"])  # [P, Cin kh kw]
    n_in = int(np.prod(layer["in_shape"]))
    per = np.full(idx.shape, co // layer["groups"], np.int64)
    return np.bincount(idx.ravel(), weights=per.ravel(), minlength=n_in + 1)[:n_in].astype(np.int64)


def build_step_model(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """The ``onnx.ModelProto`` of one step (checked with ``onnx.checker.check_model``)."""
    b = _Builder(compute_bits(desc, arrays))
    TP, helper = b.TP, b.helper
    arith = desc["arithmetic"]
    sb = arith["state_bits"]
    st_np = np.dtype(f"int{next(w for w in (8, 16, 32, 64) if sb <= w)}")
    st_T = {8: TP.INT8, 16: TP.INT16, 32: TP.INT32, 64: TP.INT64}[st_np.itemsize * 8]
    graph_in, graph_out = [], []
    val: dict[str, tuple[str, str]] = {}  # node -> (tensor, "u8" | "int")
    x: Any  # a (tensor, kind) pair in the synapse branches, a tensor name in the neuron branches
    s: Any  # a source pair, then a spike tensor name

    def tensor_type(kind: str) -> int:
        return TP.UINT8 if kind == "u8" else b.T

    for inp in desc["inputs"]:
        name = f"x/{inp['name']}"
        graph_in.append(helper.make_tensor_value_info(name, TP.UINT8, ["B", inp["size"]]))
        val[inp["name"]] = (name, "u8")

    def state(layer: dict[str, Any], reg: dict[str, Any], kind: str) -> tuple[str, str]:
        if reg["name"] in ("v", "i"):
            T = st_T
        else:
            T = tensor_type(kind)
        src = f"state/{layer['name']}/{reg['name']}"
        dst = f"next/{layer['name']}/{reg['name']}"
        graph_in.append(helper.make_tensor_value_info(src, T, ["B", *reg["shape"]]))
        graph_out.append(helper.make_tensor_value_info(dst, T, ["B", *reg["shape"]]))
        return src, dst

    def as_int(v: tuple[str, str]) -> str:
        return b.cast(v[0], b.T) if v[1] == "u8" else v[0]

    prev_state: dict[str, tuple[str, str]] = {}
    regs: dict[str, dict[str, tuple[str, str]]] = {}
    for layer in desc["layers"]:
        regs[layer["name"]] = {}
        for reg in layer["state"]:
            kind = layer["value"]["kind"] if reg["name"] == "previous_output" else (
                layer.get("input", layer["value"])["kind"] if reg["name"] == "history" else "int")
            regs[layer["name"]][reg["name"]] = state(layer, reg, kind)
            if reg["name"] == "previous_output":
                prev_state[layer["name"]] = (regs[layer["name"]][reg["name"]][0], kind)

    for layer in desc["layers"]:
        name, op = layer["name"], layer["op"]
        srcs = [prev_state[s["node"]] if s["previous_step"] else val[s["node"]]
                for s in layer["sources"]]
        if len(srcs) == 1:
            a = srcs[0]
        else:
            acc = as_int(srcs[0])
            for s in srcs[1:]:
                acc = b.op("Add", [acc, as_int(s)], f"{name}/sum")
            a = (acc, "int")
        r = regs[name]
        if op in ("dense", "delayed_dense"):
            w = array(arrays, layer["weight"])  # [out, in]
            x = a
            if op == "delayed_dense" and layer["max_delay"] > 0:
                D = layer["max_delay"]
                delay = array(arrays, layer["delay"])
                h_in, h_out = r["history"]
                x1 = b.op("Unsqueeze", [a[0], b.const(np.array([1], np.int64))], f"{name}/x1")
                cat = b.op("Concat", [x1, h_in], f"{name}/window", axis=1)  # [B, D+1, in]
                b.op("Slice", [cat, b.const(np.array([0], np.int64)), b.const(np.array([D], np.int64)),
                               b.const(np.array([1], np.int64))], out=h_out)
                ds = np.unique(delay)
                sel = cat if len(ds) == D + 1 else b.op(
                    "Gather", [cat, b.const(ds.astype(np.int64), f"{name}/delays")], axis=1)
                flat = b.op("Reshape", [sel, b.const(np.array([0, len(ds) * w.shape[1]], np.int64))],
                            f"{name}/taps")
                x = (flat, a[1])
                w = np.concatenate([w * (delay == d) for d in ds], axis=1)  # [out, nd * in]
            if x[1] == "u8" and np.abs(w).max(initial=0) <= 127 and w.min(initial=0) >= -128:
                y = b.op("MatMulInteger", [x[0], b.const(w.T.astype(np.int8), f"{name}/W")], f"{name}/mm")
                if b.T != TP.INT32:
                    y = b.cast(y, b.T)
            else:
                y = b.op("MatMul", [as_int(x), b.const(w.T.astype(b.np), f"{name}/W")], f"{name}/mm")
            e = layer["weight_exp"]
            if e > 0:
                y = b.op("Mul", [y, b.ic(1 << e)], f"{name}/exp")
            elif e < 0:
                y = b.shr(y, b.ic(1 << -e), "floor")
            val[name] = (y, "int")
        elif op == "conv2d":  # im2col: Gather of the padded input, then one integer MatMul
            w = array(arrays, layer["weight"])  # [Cout, Cin / groups, kh, kw]
            co, cg, kh, kw = w.shape
            cin, g = layer["in_shape"][0], layer["groups"]
            full = np.zeros((co, cin, kh, kw), np.int64)  # groups as a block-diagonal kernel
            for oc in range(co):
                gi = oc // (co // g)
                full[oc, gi * cg:(gi + 1) * cg] = w[oc]
            wk = full.reshape(co, -1).T  # [Cin kh kw, Cout]
            idx = im2col_index(layer["in_shape"], [kh, kw], layer["stride"], layer["padding"],
                               layer["dilation"])
            pad = b.op("Pad", [a[0], b.const(np.array([0, 0, 0, 1], np.int64))], f"{name}/pad")
            cols = b.op("Gather", [pad, b.const(idx.astype(np.int64), f"{name}/im2col")],
                        f"{name}/cols", axis=1)  # [B, Ho Wo, Cin kh kw]
            if a[1] == "u8" and np.abs(wk).max(initial=0) <= 127 and wk.min(initial=0) >= -128:
                y = b.op("MatMulInteger", [cols, b.const(wk.astype(np.int8), f"{name}/W")], f"{name}/mm")
                if b.T != TP.INT32:
                    y = b.cast(y, b.T)
            else:
                y = b.op("MatMul", [as_int((cols, a[1])), b.const(wk.astype(b.np), f"{name}/W")],
                         f"{name}/mm")
            y = b.op("Transpose", [y], f"{name}/chw", perm=[0, 2, 1])  # [B, Cout, Ho Wo]
            y = b.op("Reshape", [y, b.const(np.array([0, layer["size"]], np.int64))], f"{name}/flat")
            e = layer["weight_exp"]
            if e > 0:
                y = b.op("Mul", [y, b.ic(1 << e)], f"{name}/exp")
            elif e < 0:
                y = b.shr(y, b.ic(1 << -e), "floor")
            val[name] = (y, "int")
        elif op == "sumpool2d":
            idx = im2col_index(layer["in_shape"], layer["kernel_size"], layer["stride"],
                               layer["padding"], channels=False)
            pad = b.op("Pad", [a[0], b.const(np.array([0, 0, 0, 1], np.int64))], f"{name}/pad")
            win = b.op("Gather", [pad, b.const(idx.astype(np.int64), f"{name}/windows")],
                       f"{name}/win", axis=1)  # [B, C Ho Wo, kh kw]
            y = b.op("ReduceSum", [as_int((win, a[1])), b.const(np.array([2], np.int64))],
                     f"{name}/sum", keepdims=0)
            if layer["value"]["kind"] == "u8":
                val[name] = (b.cast(y, TP.UINT8), "u8")
            else:
                val[name] = (y, "int")
        elif op == "delay":
            D = layer["max_delay"]
            if D == 0:
                val[name] = a
                continue
            delay = array(arrays, layer["delay"])
            n = layer["size"]
            h_in, h_out = r["history"]
            x1 = b.op("Unsqueeze", [a[0], b.const(np.array([1], np.int64))], f"{name}/x1")
            cat = b.op("Concat", [x1, h_in], f"{name}/window", axis=1)
            b.op("Slice", [cat, b.const(np.array([0], np.int64)), b.const(np.array([D], np.int64)),
                           b.const(np.array([1], np.int64))], out=h_out)
            flat = b.op("Reshape", [cat, b.const(np.array([0, (D + 1) * n], np.int64))])
            idx = (delay * n + np.arange(n)).astype(np.int64)
            val[name] = (b.op("Gather", [flat, b.const(idx, f"{name}/taps")], f"{name}/y", axis=1), a[1])
        elif op in ("identity", "output"):
            val[name] = a
        elif op in ("lif", "li"):
            x = as_int(a)
            if layer["cuba"]:
                i_in, i_out = r["i"]
                i = b.overflow(b.op("Add", [b.decay(b.cast(i_in, b.T), layer["alpha"], arrays, arith), x]), arith)
                b.cast(i, st_T, out=i_out)
                x = i
            v_in, v_out = r["v"]
            v = b.op("Add", [b.decay(b.cast(v_in, b.T), layer["beta"], arrays, arith), x], f"{name}/v")
            bias = array(arrays, layer["bias"])
            if bias is not None:
                v = b.op("Add", [v, b.ic(bias, f"{name}/bias")])
            v = b.overflow(v, arith)
            if op == "lif":
                th = array(arrays, layer["threshold"])
                th_c = b.ic(th[0] if (th == th[0]).all() else th, f"{name}/vth")
                s = b.op("GreaterOrEqual" if layer["spike_rule"] == "ge" else "Greater", [v, th_c],
                         f"{name}/s")
                after = b.ic(0) if layer["reset"] == "zero" else b.op("Sub", [v, th_c])
                v = b.op("Where", [s, after, v], f"{name}/reset")
                y = b.cast(s, TP.UINT8, out=f"y/{name}")
                val[name] = (y, "u8")
                graph_out.append(helper.make_tensor_value_info(y, TP.UINT8, ["B", layer["size"]]))
            else:
                y = b.op("Identity", [v], out=f"y/{name}")
                val[name] = (y, "int")
                graph_out.append(helper.make_tensor_value_info(y, b.T, ["B", layer["size"]]))
            b.cast(v, st_T, out=v_out)
        else:
            raise ValueError(f"layer {name!r}: unknown op {op!r} in graph.json")
        if "previous_output" in r:
            b.op("Identity", [val[name][0]], out=r["previous_output"][1])
    for out in desc["outputs"]:
        t, kind = val[out["name"]]
        o = b.op("Identity", [t], out=f"output/{out['name']}")
        graph_out.append(helper.make_tensor_value_info(o, tensor_type(kind), ["B", out["size"]]))
    g = helper.make_graph(b.nodes, "neuro_fpga_step", graph_in, graph_out, b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="neuro", doc_string="one time step of a neuro FPGA integer graph")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"neuro.intgraph_digest": desc["graph_digest"],
                                   "neuro.number_format": desc["number_format"]["name"]})
    b.onnx.checker.check_model(model, full_check=True)
    return model


def qonnx_weights_model(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """A QONNX graph of the weights: per synapse layer ``Quant(W_float, scale, 0, bits)``
    (domain ``qonnx.custom_op.general``, signed, not narrow, ``ROUND``), output ``W/<layer>``:
    the integer weights times the layer's float scale, for FINN/hls4ml-style consumers."""
    onnx, TP, helper, nh = _require_onnx()
    nodes, inits, outs = [], [], []
    scale_of = {}
    for layer in desc["layers"]:
        if layer["op"] in ("lif", "li"):
            for s in layer["sources"]:
                scale_of[s["node"]] = layer["scale"]
    for layer in desc["layers"]:
        if layer["op"] not in ("dense", "delayed_dense"):
            continue
        name = layer["name"]
        w = array(arrays, layer["weight"]).astype(np.float64)
        s = 1.0 / scale_of.get(name, 1.0)  # float weight = integer / scale
        inits += [nh.from_array((w * s).astype(np.float32), f"{name}/W_float"),
                  nh.from_array(np.array(s, np.float32), f"{name}/scale"),
                  nh.from_array(np.array(0.0, np.float32), f"{name}/zeropt"),
                  nh.from_array(np.array(float(layer["weight_bits"]), np.float32), f"{name}/bitwidth")]
        nodes.append(helper.make_node("Quant", [f"{name}/W_float", f"{name}/scale", f"{name}/zeropt",
                                                f"{name}/bitwidth"], [f"W/{name}"],
                                      domain="qonnx.custom_op.general", signed=1, narrow=0,
                                      rounding_mode="ROUND"))
        outs.append(helper.make_tensor_value_info(f"W/{name}", TP.FLOAT, list(w.shape)))
    g = helper.make_graph(nodes, "neuro_fpga_qonnx_weights", [], outs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11),
                                                helper.make_opsetid("qonnx.custom_op.general", 1)],
                              producer_name="neuro")
    model.ir_version = IR_VERSION
    return model
