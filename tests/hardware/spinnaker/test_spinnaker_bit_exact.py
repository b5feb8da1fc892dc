"""Spikes of the SpiNNaker simulator equal the integer reference executor's, bit for bit, over
1000 ticks, on both engines (numpy and C++), on a machine where the networks span several chips."""
import numpy as np
import pytest

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.hardware.base import as_int_spikes, compare, reference

T = 1000


def _check(graph, x, art, engine, ref=None, batch=slice(None)):
    """Run on samples ``batch`` of ``x`` and compare with the reference (``ref``: computed for
    all of ``x``; samples are independent)."""
    ref = reference(graph, as_int_spikes(graph, x)) if ref is None else ref
    res = spinnaker.run(art, x[:, batch], engine=engine)
    comp = compare("spinnaker", graph, res, {k: v[:, batch] for k, v in ref.items()})
    assert comp.identical, comp.table()
    return res


def test_cpp_engine_builds():
    assert spinnaker.cpp_available(), spinnaker.engine.cpp_error()


@pytest.mark.parametrize("kind", ["feedforward", "delay", "reservoir", "lsm"])
def test_networks_equal_reference(networks, kind, small_machine, tmp_path):
    kw = {"max_delay": 41} if kind == "delay" else {}  # delays up to 40 need the delay extension
    g, x = networks[kind](T=T, B=1 if kind == "delay" else 2, **kw)  # the delay reference is slow
    q = quantize(g, "spinnaker", calibration_inputs=x[:200])
    art = spinnaker.compile(q, tmp_path / "art", machine=small_machine)
    ref = reference(q, as_int_spikes(q, x))
    st = _check(q, x, art, "cpp", ref).stats  # 1000 ticks
    one = slice(0, 1)  # the numpy engine (slow) on one sample
    a, b = _check(q, x, art, "numpy", ref, one), _check(q, x, art, "cpp", ref, one)
    assert a.stats == b.stats
    for name in a.spikes:
        assert np.array_equal(a.spikes[name], b.spikes[name])
    assert st["spikes"] > 0 and st["synaptic_events"] > 0 and st["router_hops"] > 0
    assert len(st["routing_entries_per_chip"]) > 1  # several chips in use
    if kind == "delay":
        assert st["delay_extension_packets"] > 0
        assert any(c["kind"] == "delay_extension" for c in st["per_core"])


def test_mixed_graph_equals_reference(small_machine, tmp_path):
    """CubaLIF, IF, LI, a Delay node, a skip connection (latency alignment), a recurrent IF,
    biases, negative weights, delays up to 45 steps, input counts > 1, subtract and zero reset."""
    rng = np.random.default_rng(3)
    n_in, n1, n2 = 8, 10, 6
    nodes = {
        "input": N.Input(shape=(n_in,)),
        "d1": N.DelayedAffine(weight=rng.normal(0, 0.6, (n1, n_in)).astype(np.float32),
                              delay=rng.integers(0, 46, (n1, n_in)), bias=np.zeros(n1, np.float32)),
        "c1": N.CubaLIF(shape=(n1,), alpha=0.7, beta=0.9, threshold=1.0, reset="subtract"),
        "dl": N.Delay(delay=rng.integers(0, 20, n1)),
        "l2": N.Linear(weight=rng.normal(0, 0.8, (n2, n1)).astype(np.float32)),
        "skip": N.Affine(weight=rng.normal(0.1, 0.5, (n2, n_in)).astype(np.float32),
                         bias=np.full(n2, 0.05, np.float32)),
        "f2": N.IF(shape=(n2,), beta=1.0, threshold=1.0, reset="zero"),
        "rec": N.Linear(weight=rng.normal(-0.1, 0.4, (n2, n2)).astype(np.float32)),
        "l3": N.Linear(weight=rng.normal(0, 1.0, (3, n2)).astype(np.float32)),
        "r3": N.LI(shape=(3,), beta=0.8),
        "output": N.Output(), "spikes1": N.Output(),
    }
    edges = [("input", "d1"), ("d1", "c1"), ("c1", "dl"), ("dl", "l2"), ("l2", "f2"),
             ("input", "skip"), ("skip", "f2"), ("f2", "rec"), ("rec", "f2"), ("f2", "l3"),
             ("l3", "r3"), ("r3", "output"), ("c1", "spikes1")]
    g = Graph(nodes, edges).validate()
    x = (rng.random((T, 2, n_in)) < 0.3).astype(np.float32) * rng.integers(1, 3, (T, 2, n_in))
    q = quantize(g, "spinnaker", calibration_inputs=x)
    art = spinnaker.compile(q, tmp_path / "art", machine=small_machine)
    ref = reference(q, as_int_spikes(q, x))
    _check(q, x, art, "cpp", ref)
    one = slice(1, 2)
    a, b = _check(q, x, art, "numpy", ref, one), _check(q, x, art, "cpp", ref, one)
    assert a.stats == b.stats
    assert a.stats["spikes"] > 100 and a.stats["delay_extension_packets"] > 0
    offsets = spinnaker.load_mapping(art).offsets  # the skip connection makes f2 wait >= 1 tick
    assert offsets["input"] == 0 and offsets["f2"] >= 1 and offsets["r3"] == offsets["f2"] + 1


def test_saturation_exact_threshold_and_floor_rounding(graphs, tmp_path):
    lif, int_graph = graphs["lif"], graphs["int_graph"]
    big = np.array([[32767, 32767, 32767], [-32768, -32768, -32768]])
    g = int_graph({
        "input": N.Input(shape=(3,)),
        "w_sat": N.Linear(weight=big, weight_exp=15),   # 3 x ~2^30 per tick: saturates
        "sat": lif(2, 0, kind="LI"),
        "w_eq": N.Linear(weight=np.array([[4096, 0, 0]]), weight_exp=2),  # 16384 per spike
        "eq": lif(1, 1 << 15, reset="subtract"),          # v == vth exactly -> spike
        "w_neg": N.Affine(weight=np.zeros((1, 3)), bias=np.array([-3])),
        "neg": lif(1, 0, beta_m=1 << 14, kind="LI"),      # floor(-v / 2) - 3
        "o1": N.Output(), "o2": N.Output(), "o3": N.Output(),
    }, [("input", "w_sat"), ("w_sat", "sat"), ("sat", "o1"), ("input", "w_eq"), ("w_eq", "eq"),
        ("eq", "o2"), ("input", "w_neg"), ("w_neg", "neg"), ("neg", "o3")])
    x = np.zeros((6, 3), np.int64)
    x[:3] = 1
    art = spinnaker.compile(g, tmp_path / "art")
    for engine in ("numpy", "cpp"):
        res = _check(g, x, art, engine)
        sat = res.outputs["o1"][:, 0]
        assert sat[0, 0] == 2**31 - 1 and sat[0, 1] == -(2**31)        # saturated both ways
        assert res.outputs["o2"][:, 0, 0].tolist() == [0, 1, 0, 0, 0, 0]  # 2 x 16384 = vth
        assert res.outputs["o3"][:4, 0, 0].tolist() == [-3, -5, -6, -6]   # floor, not toward 0


def test_delay_extension_boundaries(graphs, tmp_path):
    """Reference delays 0, 15, 16, 31, 32, 47 are machine delays 1, 16, 17, 32, 33, 48 (one tick of
    latency): the ring buffer's last slot and the first one or two extension stages."""
    lif, int_graph = graphs["lif"], graphs["int_graph"]
    d = np.array([0, 15, 16, 31, 32, 47])
    g = int_graph({"input": N.Input(shape=(6,)),
                   "syn": N.DelayedAffine(weight=np.eye(6) * 1024, delay=np.diag(d),
                                          bias=np.zeros(6)),
                   "out": lif(6, 1024), "output": N.Output()},
                  [("input", "syn"), ("syn", "out"), ("out", "output")])
    rng = np.random.default_rng(0)
    x = (rng.random((300, 2, 6)) < 0.2).astype(np.int64)
    art = spinnaker.compile(g, tmp_path / "art")
    for engine in ("numpy", "cpp"):
        res = _check(g, x, art, engine)
        for i, di in enumerate(d):  # each neuron repeats its input di steps later
            want = np.zeros((300, 2), np.int64)
            want[di:] = x[:300 - di, :, i]
            assert np.array_equal(res.spikes["out"][:, :, i], want)
        assert res.stats["delay_extension_packets"] > 0
