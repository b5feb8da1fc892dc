"""Convolutions and pooling on the integer targets, with the geometry the NIR paper's CNN does
not exercise: groups, dilation, asymmetric stride and padding, a padded pooling window, a
non-zero conv bias and an AvgPool2d folded into the next kernel."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neuro.graph import nodes as N
from neuro.hardware import get_backend
from neuro.hardware.base import UnsupportedGraph, check_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "neuro" / "graph"))
from test_conv_int import _net, _spikes  # noqa: E402


@pytest.mark.parametrize("target,fmt", [("fpga", "int8"), ("fpga", "int16-m12"), ("spinnaker", None)])
@pytest.mark.parametrize("pool", [N.SumPool2d, N.AvgPool2d])
def test_conv_net_runs_bit_exact(target, fmt, pool, tmp_path):
    g = _net(pool)
    x = _spikes(T=25, B=2, seed=4)
    backend = get_backend(target)
    assert backend.supports(g, fmt) == []
    check = check_target(backend, g, x, tmp_path / "art", fmt=fmt)
    assert check.comparison.identical
    rows = {r["node"]: r for r in check.comparison.rows}
    assert all(rows[n]["target"] > 0 for n in ("n0", "n1"))


def test_fpga_refuses_verilog_for_conv_layers_naming_them(tmp_path):
    from neuro.hardware import fpga

    g = _net()
    with pytest.raises(UnsupportedGraph, match=r"no conv2d/sumpool2d layers \(layers \['c0', 'p', 'c1'\]\)"):
        fpga.compile(g, tmp_path / "a", verilog=True)
    art = fpga.compile(g, tmp_path / "b", calibration_inputs=_spikes(T=10, B=1))
    assert not (art / "verilog").exists()
    with pytest.raises(ValueError, match="no Verilog for conv2d/sumpool2d layers"):
        fpga.run(art, _spikes(T=5, B=1), engine="verilog")
