"""Number formats: golden integer traces (hand-computed), quantization, float agreement."""
import numpy as np
import pytest
import torch

from neuro.graph import Graph, from_module, simulate
from neuro.graph import nodes as N
from neuro.graph.formats import FORMATS, INT8, LOIHI2, SPINNAKER, NumberFormat, get_format
from neuro.graph.quantize import quantize
from neuro.layers import Linear, Recurrent, Sequential
from neuro.models import SpikingMLP, SpikingMLPConfig
from neuro.neurons import LI, LIF


def _int_graph(fmt, weight, neuron, weight_exp=0):
    w = np.asarray(weight, np.int32)
    return Graph({"in": N.Input(shape=(w.shape[1],)), "w": N.Linear(weight=w, weight_exp=weight_exp),
                  "n": neuron, "out": N.Output()},
                 [("in", "w"), ("w", "n"), ("n", "out")], metadata={"format": fmt.to_dict()})


def _run(g, x):
    r = simulate(g, torch.as_tensor(x, dtype=torch.float32), record=True, record_membranes=True)
    return r["n"].flatten().tolist(), r["n.v"].flatten().tolist()


def _lif(q, reset="zero"):
    return N.LIF(beta=np.float32(0.5), threshold=np.float32(1.0), reset=reset, q=q)


# ------------------------------------------------------------------------------- loihi2
def test_loihi2_impulse_strict_threshold():
    # u = a << 6 = 6400 (du 4095: no current memory); v = v (4096 - 2048) >> 12 + u; vth << 6 = 12160
    g = _int_graph(LOIHI2, [[100]], _lif({"du": 4095, "dv": 2048, "vth": 190}))
    s, v = _run(g, np.ones((8, 1)))
    assert v == [6400, 9600, 11200, 12000, 0, 6400, 9600, 11200]
    assert s == [0, 0, 0, 0, 1, 0, 0, 0]
    # exactly at threshold does not fire (v > vth << 6): limit 12800 is never exceeded
    g = _int_graph(LOIHI2, [[100]], _lif({"du": 4095, "dv": 2048, "vth": 200}))
    assert sum(_run(g, np.ones((40, 1)))[0]) == 0


def test_loihi2_rounds_toward_zero_for_negative_membranes():
    g = _int_graph(LOIHI2, [[-101]], _lif({"du": 4095, "dv": 1000, "vth": 100}))
    _, v = _run(g, np.ones((3, 1)))
    # -6464 * 3096 / 4096 = -4885.875 -> -4885 (floor would give -4886)
    assert v == [-6464, -11349, -15042]


def test_loihi2_current_wraps_at_24_bits_and_voltage_clips():
    g = _int_graph(LOIHI2, [[254] * 600], _lif({"du": 4095, "dv": 0, "vth": 131071}))
    _, v = _run(g, np.ones((2, 600)))
    # a = 152400, a << 6 = 9753600 > 2^23 wraps to 9753600 - 2^24; v clips at -(2^23 - 1)
    assert v == [9753600 - 2**24, -(2**23 - 1)]


def test_loihi2_mixed_sign_weights_lose_the_lsb():
    g = _int_graph(LOIHI2, [[3, -3]], _lif({"du": 4095, "dv": 4095, "vth": 1000}))
    _, v = _run(g, np.array([[1, 0], [0, 1]]))
    # weights become 2 and -4 (arithmetic >> 1 << 1); u = a << 6
    assert v == [128, -256]


def test_loihi2_cuba_current_decays_with_hidden_offset():
    # du = 2047: u decays by (4096 - 2048) / 4096 = 1/2 (the +1 offset), dv 4095 keeps v ~ u
    g = _int_graph(LOIHI2, [[10]], N.CubaLIF(alpha=np.float32(0.5), beta=np.float32(0.0),
                                             threshold=np.float32(1.0), reset="zero",
                                             q={"du": 2047, "dv": 4095, "vth": 100000}))
    x = np.zeros((4, 1))
    x[0] = 1
    _, v = _run(g, x)
    # u: 640, 320, 160, 80; v = v >> 12 (~0) + u
    assert v == [640, 320, 160, 80]


# ------------------------------------------------------------------------------- spinnaker
def test_spinnaker_s1615_fire_subtract_and_floor():
    # w = 16384 << 1 = 32768 (1.0 in s16.15); beta 0.5 -> m = 16384; vth 1.5 = 49152, ge
    g = _int_graph(SPINNAKER, [[16384]], _lif({"beta_m": 16384, "vth": 49152}, "subtract"), weight_exp=1)
    s, v = _run(g, np.ones((3, 1)))
    assert v == [32768, 0, 32768] and s == [0, 1, 0]
    g = _int_graph(SPINNAKER, [[-3]], _lif({"beta_m": 16384, "vth": 49152}))
    _, v = _run(g, np.ones((2, 1)))
    assert v == [-3, -5]  # (-3 * 16384) >> 15 = -1.5 floors to -2


def test_spinnaker_saturates():
    g = _int_graph(SPINNAKER, [[32767]], N.LI(beta=np.float32(1.0), q={"beta_m": 32768}),
                   weight_exp=15)
    s, v = _run(g, np.ones((3, 1)))
    assert v == [1073709056, 2147418112, 2**31 - 1] and s == v  # LI outputs its membrane


# ------------------------------------------------------------------------------- int8
def test_int8_shift_leak_toward_zero():
    g = _int_graph(INT8, [[100]], _lif({"beta_shift": 2, "vth": 300}))
    s, v = _run(g, np.ones((5, 1)))
    assert v == [100, 175, 232, 274, 0] and s == [0, 0, 0, 0, 1]
    g = _int_graph(INT8, [[-100]], _lif({"beta_shift": 2, "vth": 300}))
    assert _run(g, np.ones((3, 1)))[1] == [-100, -175, -232]  # floor would give -231


# ------------------------------------------------------------------------------- quantize
def _mlp(reset="zero", seed=0):
    torch.manual_seed(seed)
    m = SpikingMLP(SpikingMLPConfig(layers=[30, 24, 5], reset=reset))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4)
    return m


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_quantized_graph_follows_float_and_roundtrips(fmt, tmp_path):
    g = from_module(_mlp())
    x = (torch.rand(80, 4, 30) < 0.1).float()
    q = quantize(g, fmt, calibration_inputs=x)
    assert q.metadata["format"]["name"] == fmt
    assert np.issubdtype(q.nodes["0"].weight.dtype, np.integer)
    rf, ri = simulate(g, x, record=True), simulate(q, x, record=True)
    assert ri["1"].dtype == torch.int64
    agreement = (rf["1"] == ri["1"].float()).float().mean().item()
    assert agreement >= 0.98, agreement
    q2 = Graph.load(q.save(tmp_path / "q"))
    assert q2.equals(q)
    assert torch.equal(simulate(q2, x)["output"], ri["output"])


def test_quantized_recurrent_reservoir():
    torch.manual_seed(2)
    net = Sequential(Recurrent(10, LIF(40, beta=0.9, reset="zero"), w_rec=torch.randn(40, 40) * 0.2),
                     Linear(40, 3), LI(beta=0.9))
    with torch.no_grad():
        net[0].input.weight.mul_(3)
    g = from_module(net)
    x = (torch.rand(100, 2, 10) < 0.2).float()
    for fmt in ("loihi2", "spinnaker", "int16"):
        q = quantize(g, fmt, calibration_inputs=x)
        rf, ri = simulate(g, x, record=True), simulate(q, x, record=True)
        assert rf["0.neuron"].sum() > 0
        # a recurrent network amplifies rounding differences; most spikes still agree
        assert (rf["0.neuron"] == ri["0.neuron"].float()).float().mean() > 0.9


def test_quantize_errors_name_node_and_field():
    with pytest.raises(ValueError, match=r"node '1' \(LIF\): field 'reset' 'subtract' is not available in format loihi2"):
        quantize(from_module(_mlp(reset="subtract")), "loihi2")
    g = Graph({"in": N.Input(shape=(1,)), "w": N.Linear(weight=np.array([[1e6]])),
               "n": N.LIF(), "out": N.Output()}, [("in", "w"), ("w", "n"), ("n", "out")])
    with pytest.raises(ValueError, match="node 'n'.*(shift|overflows)"):
        quantize(g, "spinnaker")
    with pytest.raises(ValueError, match="unknown number format 'int7'"):
        quantize(g, "int7")
    with pytest.raises(ValueError, match="already quantized"):
        quantize(quantize(from_module(_mlp()), "int16"), "int8")
    unq = _int_graph(LOIHI2, [[1]], N.LIF(reset="zero"))
    with pytest.raises(ValueError, match="field 'q'"):
        simulate(unq, torch.ones(2, 1))


def test_formats_are_data():
    for name, fmt in FORMATS.items():
        assert NumberFormat.from_dict(fmt.to_dict()) == fmt
        assert get_format(name) is fmt
    with pytest.raises(ValueError, match="rounding"):
        NumberFormat(**{**INT8.to_dict(), "rounding": "nearest", "weight_exp_range": (0, 0),
                        "resets": ("zero",), "update_order": ("synapse",)})


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_compiled_integer_kernel_equals_numpy_steps(fmt, reset):
    from neuro.graph.intsim import simulate_int
    from neuro.neurons import CubaLIF

    if reset not in get_format(fmt).resets:
        return
    torch.manual_seed(4)
    net = Sequential(Linear(20, 16), LIF(16, beta=torch.rand(16) * 0.5 + 0.45, reset=reset),
                     Linear(16, 12), CubaLIF(alpha=0.6, beta=0.8, reset=reset), Linear(12, 3, bias=False),
                     LI(beta=0.9))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(4)
        net[2].bias.zero_()
    x = (torch.rand(120, 3, 20) < 0.15).float()
    q = quantize(from_module(net), fmt, calibration_inputs=x)
    xi = {"input": x.long().numpy()}
    a = simulate_int(q, xi, record=True, record_membranes=True, compiled=True)
    b = simulate_int(q, xi, record=True, record_membranes=True, compiled=False)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert a["1"].sum() > 0


@pytest.mark.parametrize("fmt", ["loihi2", "spinnaker", "int16", "int8-m12"])
def test_compiled_recurrent_population_equals_numpy_steps(fmt):
    from neuro.graph.intsim import simulate_int

    torch.manual_seed(5)
    net = Sequential(Recurrent(10, LIF(30, beta=0.85, reset="zero"), w_rec=torch.randn(30, 30) * 0.3),
                     Linear(30, 4), LI(beta=0.9))
    with torch.no_grad():
        net[0].input.weight.mul_(3)
    x = (torch.rand(150, 3, 10) < 0.2).float()
    q = quantize(from_module(net), fmt, calibration_inputs=x)
    xi = {"input": x.long().numpy()}
    a = simulate_int(q, xi, record=True, record_membranes=True, compiled=True)
    b = simulate_int(q, xi, record=True, record_membranes=True, compiled=False)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert a["0.neuron"].sum() > 0


def test_loihi2_delay_limit_is_enforced():
    from neuro.layers import DelayedLinear

    layer = DelayedLinear(3, 2, 127)
    with torch.no_grad():
        layer.P.fill_(-63.0)  # delay 63 + 63 = 126 steps
    g = from_module(Sequential(layer, LIF(reset="zero")))
    with pytest.raises(ValueError, match="field 'delay' needs 126 steps, format loihi2 allows 62"):
        quantize(g, "loihi2")
    layer.delay_limit = 62
    layer.clamp_positions()
    assert int(from_module(Sequential(layer, LIF(reset="zero"))).nodes["0"].delay.max()) == 62
    quantize(from_module(Sequential(layer, LIF(reset="zero"))), "loihi2")


@pytest.mark.parametrize("density", [0.0, 0.02, 0.14, 0.5])
def test_integer_synapse_sum_is_exact_on_both_paths(density):
    from neuro.graph import intsim

    rng = np.random.default_rng(3)
    x = (rng.random((40, 3, 70)) < density) * rng.integers(1, 4, (40, 3, 70))  # spike counts
    w = rng.integers(-(2**15), 2**15, (9, 70))
    want = x.astype(np.int64) @ w.T.astype(np.int64)
    got = intsim._matmul_exact(x.astype(np.int64), w)
    assert got.dtype == np.int64 and np.array_equal(got, want)
