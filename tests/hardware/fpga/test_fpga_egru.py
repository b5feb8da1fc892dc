"""EGRU on the FPGA target: the int16 ONNX step graph run by onnxruntime equals the integer
reference executor bit for bit; int8 and Verilog are refused by name."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from neuro.graph import from_module, simulate
from neuro.graph.quantize import quantize
from neuro.hardware import fpga
from neuro.hardware.base import check_target
from neuro.layers import Sequential
from neuro.neurons import EGRU


def stack():
    torch.manual_seed(0)
    return from_module(Sequential(EGRU(6, 16, thr_mean=0.15), EGRU(16, 12, thr_mean=0.15)))


def spikes(T, B):
    return (np.random.default_rng(1).random((T, B, 6)) < 0.3).astype(np.float32)


def test_int16_step_graph_is_bit_exact_over_500_steps(tmp_path):
    g, x = stack(), spikes(500, 2)
    chk = check_target(fpga, g, x, tmp_path / "a")
    assert chk.comparison.identical, chk.comparison.table()
    ev = chk.result.stats["events"]
    assert ev["0"] > 4000 and ev["1"] > 1000  # measured 4905, 1138
    model = onnx.load(str(tmp_path / "a" / "egru_step.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"MatMul", "Add", "Sub", "Mul", "Div", "Mod", "Clip", "Gather", "Split",
                   "Greater", "Where", "Identity"}
    assert all(t.data_type == onnx.TensorProto.INT64 for t in model.graph.initializer)
    res = chk.result.stats["resources"]["layers"]["0"]
    assert res["weights_stored"] == 6 * 48 + 16 * 48 and res["units"] == 16


def test_int16_egru_follows_the_float_model():
    g, x = stack(), spikes(200, 2)
    yf, yi = simulate(g, x, record=True), simulate(quantize(g, "int16"), x, record=True)
    for n in ("0", "1"):
        a, b = yf[n].numpy(), yi[n].numpy() / 2**12  # 12 fraction bits
        assert ((a != 0) == (b != 0)).mean() >= 0.995  # measured 0.9973, 0.9969 (500 steps: 0.998, 0.997)


def test_int8_and_verilog_are_refused_by_name(tmp_path):
    problems = fpga.supports(stack(), "int8")
    assert len(problems) == 2 and all("format int8 has no integer EGRU" in p for p in problems)
    art = fpga.compile(stack(), tmp_path / "a")
    with pytest.raises(ValueError, match="EGRU artifact runs on onnxruntime only"):
        fpga.run(art, spikes(5, 1), engine="verilog")
