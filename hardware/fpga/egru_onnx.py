"""The FPGA target's EGRU: an ONNX graph of one time step of a quantized EGRU stack.

For a quantized graph ``Input -> EGRU -> ... -> EGRU -> Output`` in an FPGA format with EGRU
fraction bits (``int16``: ``F = 12``; ``neuro.graph.egru_int`` gives the equations), the step
graph takes ``x/<input>`` (int64 ``[B, in]``) and the state ``state/<egru>/c``,
``state/<egru>/y`` (int64 ``[B, H]``) and returns ``y/<egru>`` (the graded events) and
``next/<egru>/c``, ``next/<egru>/y``. Layers run in graph order within the step (a layer reads
its input layer's events of the same step, its own of the previous step), as the reference.

Integer ONNX only (opset 17, int64): ``MatMul`` for the exact sums ``x . Wq`` and ``y . Rq``, the
floor shift ``(v - Mod(v, 2^k)) / 2^k`` (``Mod`` with ``fmod=0`` takes the divisor's sign, so the
``Div`` is exact), ``Clip`` for saturation, ``Gather`` on the gate tables, ``Greater``/``Where`` for
the event and the reset. onnxruntime runs it bit-exact with the integer reference executor.

An EGRU language model (``neuro.graph.egru_lm_int``) adds the embedding, ``MatMul`` of the one-hot
token ``x/<input>`` with the integer table (the token's row, exactly), and the decoder: ``MatMul``
of the last layer's ``y`` with ``Wq^T``, the floor shift by ``kf``, the bias and ``Clip``, returned
as ``logits/<decoder>`` (int64 ``[B, V]``, ``F`` fraction bits).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.egru_int import table_shift
from neuro.graph.egru_lm_int import registers

from .onnx_step import IR_VERSION, OPSET, _Builder, _require_onnx

#: node kinds of an EGRU step graph (Embedding and Affine: an EGRU LM's, ``egru_lm_int``)
KINDS = (N.Input, N.Output, N.EGRU, LM.Embedding, N.Affine)


def _floor_shift(b: _Builder, x: str, k: int) -> str:
    if k == 0:
        return x
    if k < 0:
        return b.op("Mul", [x, b.ic(1 << -k)], "shl")
    return b.shr(x, b.ic(1 << k), "floor")


def _lut(b: _Builder, x: str, table: np.ndarray, r: int, F: int, tb: int) -> str:
    s = table_shift(r, F, tb)
    half = (1 << r) << F
    u = b.op("Clip", [b.op("Add", [x, b.ic(half)]), b.ic(0), b.ic(2 * half - 1)], "u")
    i = b.op("Div", [u, b.ic(1 << s)], "i")  # u >= 0: truncation is the floor
    f = b.op("Sub", [u, b.op("Mul", [i, b.ic(1 << s)])], "f")
    t = b.const(np.asarray(table, np.int64), "table")
    lo = b.op("Gather", [t, i], "lo")
    hi = b.op("Gather", [t, b.op("Add", [i, b.ic(1)])], "hi")
    step = b.op("Div", [b.op("Mul", [b.op("Sub", [hi, lo]), f]), b.ic(1 << s)], "interp")
    return b.op("Add", [lo, step], "gate")


def build_step_model(q: Any) -> Any:
    """The ONNX step model of quantized graph ``q`` (module docstring)."""
    onnx, TP, helper, nh = _require_onnx()
    b = _Builder(64)
    shapes = q.infer_shapes()
    ins, outs = [], []
    value: dict[str, str] = {}
    lm = registers(q)
    node: Any  # fields read by name
    for name in q.schedule().order:
        node = q.nodes[name]
        if node.role == "input":
            value[name] = f"x/{name}"
            ins.append(helper.make_tensor_value_info(value[name], TP.INT64, ["B", *shapes[name]]))
            continue
        if type(node) is LM.Embedding:  # one-hot token x table: the token's row, exact
            src = value[q.predecessors(name)[0]]
            value[name] = b.op("MatMul", [src, b.const(np.asarray(node.weight, np.int64), "E")],
                               "emb")
            continue
        if name in lm["readout"]:
            regs = lm["readout"][name]
            acc = b.op("MatMul", [value[q.predecessors(name)[0]],
                                  b.const(np.ascontiguousarray(np.asarray(node.weight, np.int64).T),
                                          "Wd")], "accd")
            sb = int(regs["state_bits"])
            logit = b.op("Add", [_floor_shift(b, acc, int(regs["kernel_frac"])),
                                 b.const(np.asarray(node.bias, np.int64), "bd")])
            b.op("Clip", [logit, b.ic(-(1 << (sb - 1))), b.ic((1 << (sb - 1)) - 1)],
                 out=f"logits/{name}")
            outs.append(helper.make_tensor_value_info(f"logits/{name}", TP.INT64,
                                                      ["B", *shapes[name]]))
            continue
        if type(node) is not N.EGRU:
            continue
        qq: dict[str, Any] = node.q or {}
        H, F = int(node.recurrent_kernel.shape[0]), int(qq["frac_bits"])
        lo, hi = -(1 << (int(qq["state_bits"]) - 1)), (1 << (int(qq["state_bits"]) - 1)) - 1

        def sat(v: str, lo: int = lo, hi: int = hi) -> str:
            return b.op("Clip", [v, b.ic(lo), b.ic(hi)], "sat")

        c_in, y_in = f"state/{name}/c", f"state/{name}/y"
        ins += [helper.make_tensor_value_info(v, TP.INT64, ["B", H]) for v in (c_in, y_in)]
        srcs = q.predecessors(name)
        x = value[srcs[0]]
        for s in srcs[1:]:
            x = b.op("Add", [x, value[s]])
        acc_x = b.op("MatMul", [x, b.const(np.asarray(node.kernel, np.int64), "W")], "accx")
        acc_h = b.op("MatMul", [y_in, b.const(np.asarray(node.recurrent_kernel, np.int64), "R")], "acch")
        shift_x = int(qq["kernel_frac"]) + int(qq["in_frac"]) - F
        ax = b.op("Add", [sat(_floor_shift(b, acc_x, shift_x)),
                          b.const(np.asarray(node.bias, np.int64), "bx")], "ax")
        bh = b.op("Add", [sat(_floor_shift(b, acc_h, int(qq["recurrent_frac"]))),
                          b.const(np.asarray(node.recurrent_bias, np.int64), "bh")], "bh")
        split = b.const(np.array([H, H, H], np.int64), "split")
        axz, axr, axn = (b.fresh(f"ax{g}") for g in "zrn")
        bhz, bhr, bhn = (b.fresh(f"bh{g}") for g in "zrn")
        b.nodes.append(helper.make_node("Split", [ax, split], [axz, axr, axn], axis=1))
        b.nodes.append(helper.make_node("Split", [bh, split], [bhz, bhr, bhn], axis=1))
        tb, rs, rt = int(qq["gate_table_bits"]), int(qq["sigmoid_range_log2"]), int(qq["tanh_range_log2"])
        sig, tanh = np.asarray(qq["sigmoid_table"]), np.asarray(qq["tanh_table"])
        z = _lut(b, sat(b.op("Add", [axz, bhz])), sig, rs, F, tb)
        r = _lut(b, sat(b.op("Add", [axr, bhr])), sig, rs, F, tb)
        rbn = _floor_shift(b, b.op("Mul", [r, bhn]), F)
        g = _lut(b, sat(b.op("Add", [axn, rbn])), tanh, rt, F, tb)
        mix = b.op("Add", [b.op("Mul", [z, c_in]), b.op("Mul", [b.op("Sub", [b.ic(1 << F), z]), g])])
        u = sat(_floor_shift(b, mix, F))
        vth = b.const(np.asarray(qq["vth"], np.int64), "vth")
        o = b.op("Greater", [u, vth], "o")
        y = b.op("Where", [o, u, b.ic(0)], out=f"y/{name}")
        b.op("Where", [o, b.op("Sub", [u, vth]), u], out=f"next/{name}/c")
        b.op("Identity", [y], out=f"next/{name}/y")
        value[name] = y
        outs += [helper.make_tensor_value_info(v, TP.INT64, ["B", H])
                 for v in (f"y/{name}", f"next/{name}/c", f"next/{name}/y")]
    g = helper.make_graph(b.nodes, "neuro_egru_step", ins, outs, b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="neuro")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def resources(q: Any) -> dict[str, Any]:
    """Storage and arithmetic of the EGRU step (an estimate of what an FPGA design holds)."""
    out: dict[str, Any] = {"layers": {}}
    node: Any
    lm = registers(q)
    for name, node in q.nodes.items():
        if type(node) is LM.Embedding:  # a ROM of the table, read one row per token
            out["layers"][name] = {"table_entries": int(np.size(node.weight)),
                                   "weight_memory_bits": int(np.size(node.weight)) * int(
                                       q.metadata["format"]["state_bits"]),
                                   "macs_per_step_dense": 0}
            continue
        if name in lm["readout"]:
            nnz = int(np.count_nonzero(node.weight))
            out["layers"][name] = {"outputs": int(node.weight.shape[0]), "weights_stored": nnz,
                                   "weight_memory_bits": nnz * int(q.metadata["format"]["weight_bits"]),
                                   "macs_per_step_dense": int(node.weight.size)}
            continue
        if type(node) is not N.EGRU:
            continue
        qq: dict[str, Any] = node.q or {}
        nnz = int(np.count_nonzero(node.kernel)) + int(np.count_nonzero(node.recurrent_kernel))
        H = int(node.recurrent_kernel.shape[0])
        out["layers"][name] = {
            "units": H, "weights_stored": nnz,
            "weight_memory_bits": nnz * 16,
            "gate_table_rom_bits": 2 * len(qq["sigmoid_table"]) * (int(qq["frac_bits"]) + 2),
            "state_register_bits": 2 * H * int(qq["state_bits"]),
            "macs_per_step_dense": int(node.kernel.size + node.recurrent_kernel.size),
        }
    return out


__all__ = ["KINDS", "build_step_model", "resources"]
