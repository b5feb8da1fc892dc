"""Part 5: the generated Verilog, simulated with Icarus Verilog, gives the reference executor's
values bit for bit (the set-up installs ``iverilog``; a missing simulator fails, it does not skip)."""
import pytest

from neuro.graph import nodes as N
from neuro.graph.formats import fpga
from neuro.hardware import get_backend
from neuro.hardware.base import as_int_spikes, compare, load_artifact_graph, reference

backend = get_backend("fpga")


def _check(art, x):
    q = load_artifact_graph(art)
    res = backend.run(art, x, engine="verilog")
    comp = compare("fpga-verilog", q, res, reference(q, as_int_spikes(q, x)))
    assert comp.identical, comp.table()
    assert {n for n, nd in q.nodes.items() if isinstance(nd, (N.LIF, N.LI))} == set(res.spikes)
    return res


@pytest.mark.parametrize("net,fmt", [("feedforward", "int8"), ("delay", "int8"),
                                     ("reservoir", "int16-m12")])
def test_verilog_bit_exact(networks, tmp_path, net, fmt):
    g, x = networks[net](T=40, B=2)
    art = backend.compile(g, tmp_path / "a", fmt=fmt, calibration_inputs=x, verilog=True)
    src = (art / "verilog" / "neuro_net.v").read_text()
    assert "module neuro_net" in src and "initial" not in src  # no simulation-only constructs
    res = _check(art, x)
    assert sum(res.stats["spikes"].values()) > 0


@pytest.mark.parametrize("fmt", [fpga(8, rounding="floor", overflow="wrap", state_bits=12),
                                 fpga(16, leak="mantissa")])
def test_verilog_edge_arithmetic(tmp_path, fpga_graphs, fmt):
    """Floor rounding, wrap overflow, subtract reset, CubaLIF, a Delay node, a recurrent edge."""
    g, x = fpga_graphs.mixed_graph(fmt)
    art = backend.compile(g, tmp_path / "a", verilog=True)
    _check(art, x)


def test_modified_verilog_is_refused(networks, tmp_path):
    g, x = networks["feedforward"](T=10)
    art = backend.compile(g, tmp_path / "a", calibration_inputs=x, verilog=True)
    p = art / "verilog" / "neuro_net.v"
    p.write_text(p.read_text().replace("32'sd", "32'sd1", 1))
    with pytest.raises(ValueError, match="neuro_net.v: does not match the manifest's digest"):
        backend.run(art, x, engine="verilog")
