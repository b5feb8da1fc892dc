"""Target fpga: step.onnx run by onnxruntime equals the integer reference executor bit for bit.

Oracles: ``neuro.graph.intsim.simulate_int`` (through ``neuro.hardware.base.reference``) and
``onnx.checker``. The shared networks cover feed-forward, delay and recurrent (reservoir) graphs in
every FPGA format; the hand-made integer graphs pin the arithmetic's edge cases (saturation, wrap,
exact threshold, rounding of negative membranes, subtract reset, current-based neurons, delay
lines, per-neuron parameters) and each asserts that the reference actually reaches the case.
"""
import json

import numpy as np
import onnx
import pytest

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.formats import INT8, NumberFormat, fpga
from neuro.graph.quantize import quantize
from neuro.hardware import get_backend
from neuro.hardware.base import (
    ArtifactError,
    UnsupportedGraph,
    as_int_spikes,
    compare,
    load_artifact_graph,
    read_manifest,
    reference,
)

backend = get_backend("fpga")


def _check(art, x):
    q = load_artifact_graph(art)
    ref = reference(q, as_int_spikes(q, x))
    res = backend.run(art, x)
    comp = compare("fpga", q, res, ref)
    assert comp.identical, comp.table()
    assert set(res.spikes) == {n for n, nd in q.nodes.items() if isinstance(nd, (N.LIF, N.LI))}
    return q, ref, res


@pytest.mark.parametrize("fmt", backend.formats)
@pytest.mark.parametrize("net", ["feedforward", "delay", "reservoir", "lsm"])
def test_networks_bit_exact(networks, tmp_path, net, fmt):
    g, x = networks[net](T=80, B=3)
    art = backend.compile(g, tmp_path / "art", fmt=fmt, calibration_inputs=x)
    q, ref, res = _check(art, x)
    spiking = [n for n, nd in q.nodes.items() if isinstance(nd, N.LIF)]
    assert all(ref[n].sum() > 0 for n in spiking), "every population must fire for the test to bite"
    model = onnx.load(art / "step.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    ops = {n.op_type for n in model.graph.node}
    assert "BitShift" not in ops and ops <= {
        "MatMulInteger", "MatMul", "Add", "Sub", "Mul", "Div", "Mod", "Clip", "Greater",
        "GreaterOrEqual", "Where", "Cast", "Identity", "Concat", "Slice", "Gather", "Reshape",
        "Unsqueeze"}
    if fmt.startswith("int8"):
        assert "MatMulInteger" in ops
    if net == "delay":
        assert any(i.name.endswith("/history") for i in model.graph.input)
    if net == "reservoir":
        assert any(i.name.endswith("/previous_output") for i in model.graph.input)


# ------------------------------------------------------------------------------ hand-made edges
def _int_graph(fmt: NumberFormat, nodes: dict, edges: list) -> Graph:
    return Graph(nodes, edges, metadata={"format": fmt.to_dict(), "scales": {}}).validate()


def _q(fmt, **kw):
    key = "m" if fmt.decay == "mantissa" else "shift"
    q = {"scale": 1.0}
    for k, v in kw.items():
        q[k.replace("LEAK", key)] = v
    return q


def _spikes(T, n, rate, seed, B=2):
    return (np.random.default_rng(seed).random((T, B, n)) < rate).astype(np.float32)


def _drive(fmt, w, *, vth=10**6, reset="zero", leak=1, li=True, bias=None):
    """input(n) -> Linear/Affine(w) -> LIF or LI -> output, integer parameters given."""
    w = np.asarray(w, np.int32)
    syn = (N.Affine(weight=w, bias=np.asarray(bias, np.int64)) if bias is not None
           else N.Linear(weight=w))
    neuron = (N.LI(q=_q(fmt, beta_LEAK=leak)) if li else
              N.LIF(reset=reset, q=_q(fmt, beta_LEAK=leak, vth=vth)))
    return _int_graph(fmt, {"in": N.Input(shape=(w.shape[1],)), "syn": syn, "n": neuron,
                            "out": N.Output()},
                      [("in", "syn"), ("syn", "n"), ("n", "out")])


def test_saturation_both_ends(tmp_path):
    g = _drive(INT8, [[127, 127, 127], [-128, -128, -128]], leak=0)  # k=0: no leak
    x = np.ones((400, 1, 3), np.float32)
    q, ref, _ = _check(backend.compile(g, tmp_path / "a"), x)
    assert ref["n"][-1, 0].tolist() == [32767, -32768]  # clipped at the 16-bit limits


def test_wrap(tmp_path):
    f = fpga(8, overflow="wrap")
    g = _drive(f, [[127, 127, 127], [-128, -128, -128]], leak=0)
    x = np.ones((100, 1, 3), np.float32)
    q, ref, _ = _check(backend.compile(g, tmp_path / "a"), x)
    v = ref["n"][:, 0, 0]
    assert (np.diff(v) < 0).any() and (ref["n"][:, 0, 1] > 0).any()  # wrapped around


@pytest.mark.parametrize("rule", ["ge", "gt"])
def test_exact_threshold(tmp_path, rule):
    f = NumberFormat.from_dict({**INT8.to_dict(), "spike_rule": rule})
    g = _drive(f, [[50, 50, 30]], vth=100, li=False, leak=0)
    x = np.zeros((6, 1, 3), np.float32)
    x[1, 0, :2] = 1  # v = 100 exactly: fires on "ge" only
    x[3, 0, :] = 1
    q, ref, _ = _check(backend.compile(g, tmp_path / "a"), x)
    assert ref["n"][1, 0, 0] == (1 if rule == "ge" else 0)


@pytest.mark.parametrize("rounding", ["toward_zero", "floor"])
@pytest.mark.parametrize("leak", ["shift", "mantissa"])
def test_negative_membrane_rounding(tmp_path, rounding, leak):
    f = fpga(8, leak=leak, rounding=rounding)
    code = 4 if leak == "shift" else 3001
    g = _drive(f, [[-33, 17, -5], [33, -17, 5]], leak=code)
    x = _spikes(60, 3, 0.4, 0)
    q, ref, _ = _check(backend.compile(g, tmp_path / "a"), x)
    other = fpga(8, leak=leak, rounding="floor" if rounding == "toward_zero" else "toward_zero")
    ref2 = reference(_drive(other, [[-33, 17, -5], [33, -17, 5]], leak=code), as_int_spikes(q, x))
    assert (ref["n"] < 0).any() and not np.array_equal(ref["n"], ref2["n"])  # the rule matters


@pytest.mark.parametrize("fmt", [fpga(16), fpga(8, rounding="floor", overflow="wrap", state_bits=12),
                                 fpga(8, leak="mantissa")])
def test_mixed_graph(tmp_path, fpga_graphs, fmt):
    """Subtract reset, CubaLIF, per-neuron leaks (no leak included) and thresholds, biases, a
    Delay node and Flatten, two synapses into one population, a recurrent edge, an input read
    out directly."""
    g, x = fpga_graphs.mixed_graph(fmt)
    q, ref, res = _check(backend.compile(g, tmp_path / "a"), x)
    assert ref["p"].sum() > 0 and ref["c"].sum() > 0
    assert res.outputs["raw"].shape == (120, 2, 2, 3)
    if fmt.overflow == "wrap":  # the same graph saturating behaves differently: wrap happened
        sat, _ = fpga_graphs.mixed_graph(NumberFormat.from_dict({**fmt.to_dict(), "overflow": "saturate"}))
        assert not np.array_equal(reference(sat, as_int_spikes(sat, x))["c"], ref["c"])


# ------------------------------------------------------------------------------ bad input
def test_weight_too_wide_names_layer_and_bits(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    q.nodes["2"].weight = q.nodes["2"].weight.copy()
    q.nodes["2"].weight[0, 0] = 300
    problems = backend.supports(q)
    assert problems == ["node '2' (Linear): field 'weight' needs 10 bits (values "
                        f"{int(q.nodes['2'].weight.min())}..300), format int8 has weight_bits=8 and "
                        "saturation is not allowed"]
    with pytest.raises(UnsupportedGraph, match="node '2'.*needs 10 bits"):
        backend.compile(q, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    art = backend.compile(q, tmp_path / "b", saturate_weights=True)
    assert read_manifest(art)["target_info"]["saturated_weights"] == {"2": 1}
    assert load_artifact_graph(art).nodes["2"].weight[0, 0] == 127
    _check(art, x)
    q16 = quantize(g, "int16", calibration_inputs=x)
    found = backend.supports(q16, "int8")
    assert found[0].startswith("the graph is quantized to 'int16', not 'int8'")
    assert any("node '0' (Linear): field 'weight' needs 16 bits" in p for p in found)


def test_nodes_without_integer_form():
    g = Graph({"in": N.Input(shape=(1, 8)), "conv": N.Conv1d.example(), "f": N.Flatten(),
               "lin": N.Linear(weight=np.ones((3, 16), np.float32)),
               "n": N.LIF(beta=0.9, refractory=2, reset="zero"), "out": N.Output()},
              [("in", "conv"), ("conv", "f"), ("f", "lin"), ("lin", "n"), ("n", "out")]).validate()
    problems = backend.supports(g)
    assert any(p.startswith("node 'conv' (Conv1d) has no integer form on target fpga") for p in problems)
    assert any("node 'n' (LIF): field 'refractory'" in p for p in problems)
    assert backend.supports(g, "int4") == ["number format 'int4' is not one of "
                                           "['int8', 'int16', 'int8-m12', 'int16-m12', 'int8-s32']"]


class MyLIF(N.LIF):
    """A new neuron kind: LIF's fields and roles, dynamics no backend has been taught."""

    kind = "MyLIF"


def test_a_subclass_of_a_known_neuron_is_refused_by_its_kind(tmp_path):
    g = Graph({"in": N.Input(shape=(4,)), "lin": N.Linear(weight=np.ones((3, 4), np.float32)),
               "n": MyLIF(beta=0.9, reset="zero"), "out": N.Output()},
              [("in", "lin"), ("lin", "n"), ("n", "out")]).validate()
    problems = backend.supports(g)
    assert any(p.startswith("node 'n' (MyLIF) has no integer form on target fpga") for p in problems)
    with pytest.raises(UnsupportedGraph, match="MyLIF"):
        backend.compile(g, tmp_path / "art")
    assert not (tmp_path / "art").exists()


def test_inputs_wider_than_declared(networks, tmp_path):
    g, x = networks["feedforward"](T=30)
    art = backend.compile(g, tmp_path / "a", calibration_inputs=x)
    counts = x * 3
    with pytest.raises(ValueError, match="values up to 3; this artifact takes 1-bit inputs"):
        backend.run(art, counts)
    art8 = backend.compile(g, tmp_path / "b", calibration_inputs=x, input_bits=8)
    _check(art8, counts)


# ------------------------------------------------------------------------------ artifact
def test_artifact_files_and_resources(networks, tmp_path):
    g, x = networks["delay"](T=40)
    art = backend.compile(g, tmp_path / "a", fmt="int8", calibration_inputs=x)
    m = read_manifest(art, "fpga")
    assert {"graph.json", "weights.npz", "step.onnx", "weights.qonnx.onnx",
            "resources.json"} <= set(m["files"])
    desc = json.loads((art / "graph.json").read_text())
    q = load_artifact_graph(art)
    assert [layer["name"] for layer in desc["layers"]] == [n for n in q.schedule().order if n != "input"]
    assert desc["arithmetic"]["rounding"] == "toward_zero" and desc["arithmetic"]["overflow"] == "saturate"
    w = np.load(art / "weights.npz")
    layer0 = desc["layers"][0]
    assert layer0["op"] == "delayed_dense" and w[layer0["weight"]].dtype == np.int8
    np.testing.assert_array_equal(w[layer0["weight"]], q.nodes["0"].weight)
    np.testing.assert_array_equal(w[layer0["delay"]], q.nodes["0"].delay)
    est = json.loads((art / "resources.json").read_text())
    assert est["total"] == m["target_info"]["resources"]
    r0 = est["layers"][0]
    D = int(q.nodes["0"].delay.max())
    dbits = D.bit_length()
    assert r0["weight_memory_bits"] == 16 * 12 * (8 + dbits)
    assert r0["state_memory_bits"] == D * 12 * 1  # a 1-bit shift register per input channel
    assert r0["fully_parallel"] == {"adders": 16 * 11, "multipliers": 0, "comparators": 0}
    assert r0["time_multiplexed"]["cycles_per_step"] == 16 * 12
    lif = next(r for r in est["layers"] if r["layer"] == "2")
    assert lif["state_memory_bits"] == 16 * 16
    has_bias = next(la for la in desc["layers"] if la["name"] == "2")["bias"] is not None
    assert lif["fully_parallel"]["adders"] == 16 * (2 + has_bias)  # leak, input (, bias)
    assert lif["fully_parallel"]["comparators"] == 16 * 3  # saturation (2), threshold
    assert "fully parallel" in est["model"]
    assert backend.resource_estimate(art) == est
    assert backend.resource_estimate(g, "int8", x)["total"] == est["total"]


def test_qonnx_weights(networks, tmp_path):
    """QONNX Quant semantics (q = clip(round(W / scale)), out = q scale) recover the integers."""
    g, x = networks["feedforward"](T=20)
    art = backend.compile(g, tmp_path / "a", calibration_inputs=x)
    model = onnx.load(art / "weights.qonnx.onnx")
    onnx.checker.check_model(model)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    w = np.load(art / "weights.npz")
    quant = [n for n in model.graph.node if n.op_type == "Quant"]
    assert len(quant) == 3 and all(n.domain == "qonnx.custom_op.general" for n in quant)
    for n in quant:
        X, scale, zp, bits = (inits[i] for i in n.input)
        lo, hi = -(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1
        qv = np.clip(np.round(X / scale + zp), lo, hi)
        layer = n.output[0].split("/", 1)[1]
        np.testing.assert_array_equal(qv.astype(np.int64), w[f"{layer}/weight"])


def test_replaces_only_artifacts(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a neuro artifact"):
        backend.compile(g, tmp_path / "mine", calibration_inputs=x)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("content", [b"", b"garbage that is not a protobuf"])
def test_unloadable_onnx_is_an_artifact_error(tmp_path, content):
    """A step.onnx that onnxruntime cannot load (a re-signed artifact, or one written by
    another tool) is one ArtifactError naming the file, not onnxruntime's own exception."""
    from neuro.hardware.fpga import _session

    bad = tmp_path / "step.onnx"
    bad.write_bytes(content)
    with pytest.raises(ArtifactError, match="step.onnx: not a loadable ONNX model"):
        _session(bad, 1)
