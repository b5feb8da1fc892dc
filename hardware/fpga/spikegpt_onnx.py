"""The FPGA target's SpikeGPT: an ONNX graph of one token of a quantized SpikeGPT graph.

For a graph quantized by ``neuro.graph.spikegpt_int.quantize_spikegpt`` the step graph takes
``x/<input>`` (int64 ``[B, V]``, one-hot tokens) and every state register ``state/<node>/<reg>``
(int64 ``[B, C]``: token-shift ``prev``, WKV ``a``, ``b``, ``p``, LIF ``v``) and returns
``y/<lif>`` (spikes 0/1), ``output/<name>`` (the logits, ``frac_bits`` fraction bits) and
``next/<node>/<reg>``. It is written by running ``spikegpt_int.step`` with :class:`OnnxOps`,
the same step description the integer reference runs with numpy, so the equations and register
formats are those of ``neuro.graph.spikegpt_int``.

Integer ONNX only (opset 17, int64): ``MatMul``, ``Add``/``Sub``/``Mul``, the floor division
``Div(x - Mod(x, d), d)`` (``Mod`` with ``fmod=0`` takes the divisor's sign; the divisors are
positive), the truncating ``Div`` for the toward-zero shifts, ``Max``, ``Clip``, ``Gather`` on the
tables, ``GreaterOrEqual``/``Where``/``Cast``, ``ReduceSum``. Tensors are ``[B, C]``; per-row
reductions keep a ``[B, 1]`` axis.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph import spikegpt_int as SI

from .onnx_step import IR_VERSION, OPSET, _Builder, _require_onnx


class OnnxOps:
    """:class:`neuro.graph.spikegpt_int.Ops` as ONNX nodes (values are tensor names)."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.TP = b.TP

    def c(self, v: Any) -> str:
        return self.b.const(np.asarray(v, np.int64), "c")

    def _v(self, x: Any) -> str:
        return x if isinstance(x, str) else self.c(x)

    def add(self, a, b):
        return self.b.op("Add", [self._v(a), self._v(b)])

    def sub(self, a, b):
        return self.b.op("Sub", [self._v(a), self._v(b)])

    def mul(self, a, b):
        return self.b.op("Mul", [self._v(a), self._v(b)])

    def maximum(self, a, b):
        return self.b.op("Max", [self._v(a), self._v(b)])

    def clip(self, x, lo, hi):
        return self.b.op("Clip", [self._v(x), self.c(lo), self.c(hi)])

    def floordiv(self, x, d):
        x, d = self._v(x), self._v(d)
        exact = self.b.op("Sub", [x, self.b.op("Mod", [x, d], "mod", fmod=0)])
        return self.b.op("Div", [exact, d], "floordiv")

    def truncdiv(self, x, d):
        return self.b.op("Div", [self._v(x), self._v(d)], "truncdiv")

    def matmul(self, x, w):
        return self.b.op("MatMul", [self._v(x), self.c(w)])

    def gather(self, table, i):
        return self.b.op("Gather", [self.c(table), self._v(i)], "lut")

    def ge(self, a, b):
        return self.b.op("GreaterOrEqual", [self._v(a), self._v(b)])

    def where(self, cond, a, b):
        return self.b.op("Where", [cond, self._v(a), self._v(b)])

    def rowsum(self, x):
        return self.b.op("ReduceSum", [self._v(x), self.c([-1])], keepdims=1)

    def count_ge(self, x, thresholds):
        ge = self.b.op("GreaterOrEqual", [self._v(x), self.c(thresholds)])  # [B, 1] vs [32]
        return self.b.op("ReduceSum", [self.to_int(ge), self.c([-1])], keepdims=1)

    def to_int(self, cond):
        return self.b.cast(cond, self.TP.INT64)


def build_step_model(q: Any) -> Any:
    """The ONNX step model of the quantized SpikeGPT graph ``q`` (module docstring)."""
    onnx, TP, helper, _ = _require_onnx()
    R = SI.Regs(q)
    b = _Builder(64)
    o = OnnxOps(b)
    ins, outs = [], []
    x = {}
    for n in q.inputs():
        x[n] = f"x/{n}"
        ins.append(helper.make_tensor_value_info(x[n], TP.INT64, ["B", *R.shapes[n]]))
    state = {}
    for n, r, C in R.state_names():
        state[f"{n}/{r}"] = f"state/{n}/{r}"
        ins.append(helper.make_tensor_value_info(f"state/{n}/{r}", TP.INT64, ["B", C]))
    val, nxt = SI.step(o, R, x, state)
    for n in R.order:
        if type(q.nodes[n]) is N.LIF:
            b.op("Identity", [val[n]], out=f"y/{n}")
            outs.append(helper.make_tensor_value_info(f"y/{n}", TP.INT64, ["B", *R.shapes[n]]))
    for n in q.outputs():
        b.op("Identity", [val[n]], out=f"output/{n}")
        outs.append(helper.make_tensor_value_info(f"output/{n}", TP.INT64, ["B", *R.shapes[n]]))
    for key, v in nxt.items():
        b.op("Identity", [v], out=f"next/{key}")
        C = next(c for n, r, c in R.state_names() if f"{n}/{r}" == key)
        outs.append(helper.make_tensor_value_info(f"next/{key}", TP.INT64, ["B", C]))
    g = helper.make_graph(b.nodes, "neuro_spikegpt_step", ins, outs, b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="neuro")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


#: how the estimate counts (written with the numbers)
RESOURCE_MODEL = (
    "Per block and for the embedding/head: weight memory = nonzero-or-not dense weights x "
    "weight_bits plus 15-bit per-channel multipliers; parameter memory = LayerNorm weight/bias, "
    "token-shift mixes (13 bits), WKV w/u and LIF thresholds in the 24-bit activation format; "
    "table ROM = the shared exp (1026 x 17 bits), sigmoid (257 x (F + 1)) and inverse square "
    "root (257 x 16) tables, counted once; state = token-shift prev (24 bits), WKV a, b (45 bits "
    "each) and p (41 bits), LIF v (24 bits) per channel; MACs per token = dense multiply-"
    "accumulates of the Linear layers (int8 x 24-bit); elementwise ops per token = the "
    "multiplies of LayerNorm, token shift, WKV (12 per channel), gates, squared ReLU and the LIF "
    "leak. Routing, control and DSP packing are not modelled.")


def resources(q: Any) -> dict[str, Any]:
    """Storage and arithmetic per block (``blocks.i``) and for ``emb``/``head`` (see
    :data:`RESOURCE_MODEL`)."""
    R = SI.Regs(q)
    wb = R.fmt.weight_bits
    blocks: dict[str, dict[str, int]] = {}
    node: Any
    for n in R.order:
        node = q.nodes[n]
        kind = type(node)
        key = ".".join(n.split(".")[:2]) if n.startswith("blocks.") else \
            ("head" if n in ("ln_out", "head") else "embedding" if kind is LM.Embedding else "io")
        row = blocks.setdefault(key, {"weight_memory_bits": 0, "parameter_memory_bits": 0,
                                      "state_register_bits": 0, "macs_per_token": 0,
                                      "elementwise_multiplies_per_token": 0})
        C = int(np.prod(R.shapes[n]))
        if kind is N.Linear:
            out_, in_ = node.weight.shape
            row["weight_memory_bits"] += out_ * in_ * wb + out_ * SI.MULT_BITS
            row["macs_per_token"] += out_ * in_
            row["elementwise_multiplies_per_token"] += out_
        elif kind is LM.Embedding:
            bits = 1 if node.binary else SI.ACT_BITS
            row["weight_memory_bits"] += int(node.weight.size) * bits
        elif kind is LM.LayerNorm:
            row["parameter_memory_bits"] += 2 * C * SI.ACT_BITS
            row["elementwise_multiplies_per_token"] += 3 * C + 1
        elif kind is LM.TokenShift:
            row["parameter_memory_bits"] += C * (SI.MIX_BITS + 1)
            row["state_register_bits"] += C * SI.ACT_BITS
            row["elementwise_multiplies_per_token"] += 2 * C
        elif kind is LM.WKV:
            row["parameter_memory_bits"] += 2 * C * SI.ACT_BITS
            row["state_register_bits"] += C * (45 + 45 + 41)
            row["elementwise_multiplies_per_token"] += 12 * C
        elif kind in (LM.Gate, LM.SquaredReLU):
            row["elementwise_multiplies_per_token"] += 2 * C if kind is LM.Gate else C
        elif kind is N.LIF:
            row["parameter_memory_bits"] += SI.ACT_BITS
            row["state_register_bits"] += C * SI.ACT_BITS
            row["elementwise_multiplies_per_token"] += C
    blocks.pop("io", None)
    F = R.F
    rom = {"exp_table_bits": len(R.exp) * (SI.EXP_FRAC + 1),
           "sigmoid_table_bits": len(R.sig) * (F + 1),
           "rsqrt_table_bits": len(R.rsqrt) * (SI.RSQRT_FRAC + 2)}
    total = {k: sum(r[k] for r in blocks.values()) for k in next(iter(blocks.values()))}
    total["table_rom_bits"] = sum(rom.values())
    total["memory_bits"] = (total["weight_memory_bits"] + total["parameter_memory_bits"]
                            + total["state_register_bits"] + total["table_rom_bits"])
    return {"number_format": R.fmt.name, "frac_bits": F, "blocks": blocks, "tables": rom,
            "total": total, "model": RESOURCE_MODEL}


__all__ = ["OnnxOps", "RESOURCE_MODEL", "build_step_model", "resources"]
