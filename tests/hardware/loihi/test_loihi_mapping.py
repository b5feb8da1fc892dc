"""Loihi backend without running Lava: supports(), the process mapping and alignment, the netx
file, the process boundary."""
import ast
import json
import sys

import h5py
import numpy as np
import pytest
import torch
from loihi_graphs import edge_graph

from neuro.graph import Graph, from_module
from neuro.graph import nodes as N
from neuro.graph.quantize import quantize
from neuro.hardware import get_backend
from neuro.hardware.base import UnsupportedGraph, load_artifact_graph
from neuro.hardware.loihi import mapping, netx
from neuro.layers import Linear, Sequential
from neuro.neurons import LIF

loihi = get_backend("loihi")


def _chain(*layers, n_in=4):
    """Input -> (Linear -> neuron)* -> Output from (weight, neuron node) pairs."""
    nodes, edges, prev = {"in": N.Input(shape=(n_in,))}, [], "in"
    for i, (w, neuron) in enumerate(layers):
        nodes[f"w{i}"], nodes[f"n{i}"] = N.Linear(weight=np.asarray(w, np.float32)), neuron
        edges += [(prev, f"w{i}"), (f"w{i}", f"n{i}")]
        prev = f"n{i}"
    nodes["out"] = N.Output()
    edges.append((prev, "out"))
    return Graph(nodes, edges).validate()


def test_supports_lists_every_problem():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4))
    g = _chain((w, N.LIF(beta=0.9, reset="subtract", refractory=2)),
               (rng.normal(size=(3, 3)), N.LIF(beta=np.array([0.5, 0.6, 0.7], np.float32),
                                                 reset="zero")))
    problems = loihi.supports(g)
    assert any("'n0'" in p and "field 'reset' 'subtract'" in p for p in problems)
    assert any("'n0'" in p and "field 'refractory' (2 steps)" in p for p in problems)
    assert any("'n1'" in p and "per-neuron beta" in p for p in problems)
    assert loihi.supports(g, "int8")[0].startswith("number format 'int8'")
    # EGRU has no Lava process; the rest of the graph is still checked
    egru = N.EGRU.example()
    g2 = Graph({"in": N.Input(shape=(3,)), "e": egru, "w": N.Linear(weight=np.ones((2, 2), np.float32)),
                "n": N.LIF(reset="subtract"), "out": N.Output()},
               [("in", "e"), ("e", "w"), ("w", "n"), ("n", "out")]).validate()
    p2 = loihi.supports(g2)
    assert any("'e' (EGRU): no Lava process implements EGRU" in p for p in p2)
    assert any("'n'" in p and "field 'reset' 'subtract'" in p for p in p2)
    with pytest.raises(UnsupportedGraph, match="EGRU"):
        loihi.compile(g2, "/nonexistent/never-written")


class MyLIF(N.LIF):
    """A new neuron kind: LIF's fields and roles, dynamics no backend has been taught."""

    kind = "MyLIF"


def test_supports_refuses_a_subclass_of_a_known_neuron_by_its_kind():
    g = _chain((np.ones((3, 4)), MyLIF(reset="zero")))
    problems = loihi.supports(g)
    assert any("node 'n0' (MyLIF): no Lava process implements MyLIF" in p for p in problems)
    with pytest.raises(UnsupportedGraph, match="MyLIF"):
        loihi.compile(g, "/nonexistent/never-written")


def test_supports_delays_beyond_62_and_alignment_pads():
    w = np.ones((2, 3), np.float32)
    d = np.zeros((2, 3), np.int64)
    d[1, 2] = 63
    g = Graph({"in": N.Input(shape=(3,)), "s": N.DelayedAffine(weight=w, delay=d, bias=np.zeros(2)),
               "n": N.LIF(reset="zero"), "out": N.Output()},
              [("in", "s"), ("s", "n"), ("n", "out")]).validate()
    (p,) = loihi.supports(g)
    assert "'s'" in p and "delays up to 63 steps" in p and "allows 62" in p
    # 62 itself fits, but a skip connection into a deeper layer is padded by one step
    d[1, 2] = 62
    g.nodes["s"].delay = d
    assert loihi.supports(g) == []
    g2 = Graph({"in": N.Input(shape=(3,)), "a": N.Linear(weight=w), "na": N.LIF(reset="zero"),
                "b": N.Linear(weight=np.ones((2, 2), np.float32)),
                "skip": N.DelayedAffine(weight=w, delay=d, bias=np.zeros(2)),
                "nb": N.LIF(reset="zero"), "out": N.Output()},
               [("in", "a"), ("a", "na"), ("na", "b"), ("b", "nb"), ("in", "skip"),
                ("skip", "nb"), ("nb", "out")]).validate()
    (p,) = loihi.supports(g2)
    assert "'skip'" in p and "63 steps (incl. 1 steps to align" in p


def test_supports_chip_capacity():
    n = mapping.CHIP_CORES * mapping.NEURONS_PER_CORE + 1
    g = Graph({"in": N.Input(shape=(1,)), "w": N.Linear(weight=np.ones((n, 1), np.float32)),
               "n": N.LIF(reset="zero"), "out": N.Output()},
              [("in", "w"), ("w", "n"), ("n", "out")]).validate()
    (p,) = loihi.supports(g)
    assert f"needs {mapping.CHIP_CORES + 1} neuro-cores" in p and "8192 neurons" in p


def test_lags_and_pads_align_with_the_reference():
    g, _ = edge_graph(T=50)
    p = mapping.plan(g)
    assert p.problems == []
    # skip.a reads the input (lag 1), skip.b reads skip.a (lag 2), skip.c reads skip.b (lag 3)
    assert (p.lags["skip.a"], p.lags["skip.b"], p.lags["skip.c"]) == (1, 2, 3)
    pads = {s.name: s.pad for s in p.synapses}
    assert pads["skip.w3"] == 1 and pads["skip.w4"] == 2 and pads["skip.w5"] == 0
    rec = {s.name: s for s in p.synapses}["rec.wrec"]
    assert rec.recurrent and rec.pad == 0 and list(rec.extra_delay) == [2] * 10
    net, arrays = mapping.lava_network(g, p, None)
    kinds = {s["name"]: s["kind"] for s in net["synapses"]}
    assert kinds["skip.w4"] == "delay_dense" and kinds["wrap.w"] == "dense"
    assert (arrays["syn/skip.w4/delay"] == np.arange(6)[None, :] + 2).all()
    assert net["max_lag"] == 3
    li = {n["name"]: n for n in net["neurons"]}["li.n"]
    assert not li["spiking"] and li["fixed"]["vth"] == 1 << 17  # (vth << 6) > the v clip


def test_sparse_synapses_and_bias_split():
    b = np.array([0, 4095, -4096, 5000, -8000, 1 << 17, 4097])
    split = mapping.split_bias(b[:-1])
    assert split is not None
    mant, exp = split
    assert (mant << exp == b[:-1]).all() and exp.max() == 6
    assert mapping.split_bias(b) is None  # 4097 is odd and too large for 13 bits
    torch.manual_seed(0)
    lin = Linear(10, 40, bias=False)
    with torch.no_grad():
        lin.weight.mul_((torch.rand(40, 10) < 0.1).float())
    g = from_module(Sequential(lin, LIF(beta=0.9, reset="zero")))
    q = quantize(g, "loihi2")
    net, _ = mapping.lava_network(q, mapping.plan(q), g)
    assert [s["kind"] for s in net["synapses"]] == ["sparse"]


def test_quantized_registers_checked():
    g, _ = edge_graph(T=50)
    g.nodes["bias.w"].bias = np.array([4097, 0, 0, 0], np.int32)
    g.nodes["thr.exc"].weight = np.array([[300, 0, 0], [0, 10, 0]], np.int32)
    g.nodes["thr.n"].q["vth"] = 1 << 17
    problems = loihi.supports(g)
    assert any("'bias.n'" in p and "bias_mant << bias_exp" in p for p in problems)
    assert any("'thr.exc'" in p and "8-bit" in p for p in problems)
    assert any("'thr.n'" in p and "17-bit" in p for p in problems)


def _feedforward_artifact(networks, tmp_path):
    g, x = networks["feedforward"](T=50, B=2)
    return loihi.compile(g, tmp_path / "art", calibration_inputs=x), g, x


def test_artifact_files_and_netx_layout(networks, tmp_path):
    art, g, x = _feedforward_artifact(networks, tmp_path)
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["target"] == "loihi" and manifest["number_format"] == "loihi2"
    assert set(manifest["files"]) >= {"lava/network.json", "lava/arrays.npz", "netx/network.net"}
    info = manifest["target_info"]
    assert info["max_lag"] == 3 and info["cores"] == 3 and info["netx"] == "netx/network.net"
    # hardware.md 1.5 layout, read back with h5py
    with h5py.File(art / "netx" / "network.net", "r") as f:
        assert sorted(f["layer"].keys()) == ["0", "1", "2", "3"]
        assert f["layer/0/type"][0] == b"input" and f["layer/1/type"][0] == b"dense"
        assert f["layer/1/weight"].shape == (32, 20) and f["layer/3/weight"].shape == (5, 16)
        assert f["layer/1/neuron/type"][0] == b"CUBA"
        assert {"iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"} <= set(f["layer/1/neuron"])
        assert "simulation" in f
    # the registers netx derives from the file (du = iDecay - 1, dv = vDecay, vth = vThMant,
    # bias_mant << 6) are those of the Lava process graph that runs bit-exact
    net = json.loads((art / "lava" / "network.json").read_text())
    with np.load(art / "lava" / "arrays.npz") as a:
        arrays = {k: a[k] for k in a.files}
    layers = netx.read(art / "netx" / "network.net")
    assert layers[0] == {"input": 20}
    for layer, neuron, syn in zip(layers[1:], net["neurons"], net["synapses"]):
        assert (layer["du"], layer["dv"], layer["vth"]) == tuple(neuron["fixed"][k] for k in ("du", "dv", "vth"))
        assert np.array_equal(layer["weight"], arrays[f"syn/{syn['name']}/weight"])
        assert not layer["delay"].any()
        eff = arrays[f"neuron/{neuron['name']}/bias_mant"] << arrays[f"neuron/{neuron['name']}/bias_exp"]
        assert np.array_equal(layer["bias_mant"] << layer["bias_exp"], eff)


def test_netx_delays_and_why_not(networks, tmp_path):
    g, x = networks["delay"](T=30)
    art = loihi.compile(g, tmp_path / "d", calibration_inputs=x)
    layers = netx.read(art / "netx" / "network.net")
    q = load_artifact_graph(art)
    assert np.array_equal(layers[1]["delay"], q.nodes["0"].delay)
    g, x = networks["reservoir"](T=30)
    art = loihi.compile(g, tmp_path / "r", calibration_inputs=x)
    info = json.loads((art / "manifest.json").read_text())["target_info"]
    assert not (art / "netx").exists() and info["netx"].startswith("not written: not a chain")


def test_worker_is_standalone_and_core_imports_no_lava():
    """The worker imports only the standard library, numpy and Lava (never torch or neuro), and
    importing the backend does not import Lava."""
    src = mapping.__file__.replace("mapping.py", "worker.py")
    tree = ast.parse(open(src).read())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__", "json", "os", "sys", "time", "traceback", "dataclasses",
                    "importlib", "numpy", "lava"}, mods
    assert not any(m == "lava" or m.startswith("lava.") for m in sys.modules)


def test_run_rejects_bad_input(networks, tmp_path):
    art, g, x = _feedforward_artifact(networks, tmp_path)
    with pytest.raises(ValueError, match="spikes must be 0 or 1"):
        loihi.run(art, x * 2)
    with pytest.raises(ValueError, match="mode must be one of"):
        loihi.run(art, x, mode="bit_accurate")
    with pytest.raises(ValueError, match=r"expected \[T, 20\]"):
        loihi.run(art, x[..., :5])


def test_supports_reports_what_quantize_cannot_express():
    g = _chain((np.ones((3, 4)), N.LIF(reset="zero")))
    g.nodes["w0"].weight[0, 0] = np.nan
    assert loihi.supports(g) == ["node 'w0' (Linear): field 'weight' holds NaN or infinite values"]
    # a threshold 10^6 times the weights: no 8-bit weight and 24-bit membrane scale holds both
    far = Graph({"in": N.Input(shape=(2,)),
                 "w": N.Affine(weight=np.ones((2, 2), np.float32), bias=np.ones(2, np.float32)),
                 "n": N.LIF(reset="zero", threshold=np.float32(1e6)), "out": N.Output()},
                [("in", "w"), ("w", "n"), ("n", "out")]).validate()
    (p,) = loihi.supports(far)
    assert p.startswith("quantize to loihi2: ") and "cannot hold its weights and membrane" in p
    # (a CubaLIF's synapse bias, once refused here, now runs: tests/hardware/test_snntorch_biases.py)
