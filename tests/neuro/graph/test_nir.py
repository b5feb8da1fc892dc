"""NIR interchange: lossless round trips, snnTorch oracles both ways, DelayedAffine branches, CLI.

The oracles are snnTorch 1.0's own NIR exporter and importer (``snntorch.export_to_nir`` /
``import_from_nir``, with nirtorch 2.6), installed by ``make test``; they are imported directly, so
a missing package fails instead of skipping.

What snnTorch can and cannot agree on:

* snnTorch writes and reads NIR with a hard-coded ``dt = 1e-4`` s, ``tau = dt / (1 - beta)``,
  ``r = tau / dt``: a neuro model matches step for step when its ``dt`` is 1e-4 s.
* snnTorch's exporter drops ``reset_mechanism`` and ``reset_delay``; a NIR neuron means "reset to
  v_reset right away". Its default ``Leaky``/``Synaptic``/``RLeaky`` (subtract, delayed reset) is
  matched by importing with ``reset="subtract", reset_timing="deferred"``; ``reset_mechanism="zero"``
  matches the plain import for ``Leaky`` (zero reset gives the same spikes at either timing).
  ``Synaptic``/``RLeaky`` with zero reset and ``reset_delay=True`` zero the whole new membrane
  including that step's input, which no neuro neuron does.
* snnTorch's importer hard-codes ``reset_mechanism="zero"``: neuro models with subtractive reset
  cannot come out the same. Its recurrent path wires the population's input through ``W_rec``
  (``_create_rnn_subgraph``), so no recurrent network (not even snnTorch's own RLeaky) survives it.
"""
import warnings

import h5py
import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.graph import (
    NODE_TYPES,
    Graph,
    GraphModel,
    from_module,
    from_nir,
    nodes,
    read_nir,
    simulate,
    to_nir,
    write_nir,
)
from neuro.graph.nir_io import EXPRESSIBLE, SNNTORCH_DT
from neuro.layers import Linear, Recurrent, Sequential
from neuro.models import SpikingMLP, SpikingMLPConfig
from neuro.neurons import LIF, CubaLIF

T, B, NI, NH, NO = 60, 3, 10, 12, 5

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _same_run(g1, g2, seed=0):
    shape = g1.nodes[g1.inputs()[0]].shape
    x = torch.rand(12, 2, *shape, generator=torch.Generator().manual_seed(seed)) * 2
    a, b = simulate(g1, x), simulate(g2, x)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _node_classes():
    return sorted((c for c in NODE_TYPES.values() if c not in (nodes.Input, nodes.Output)),
                  key=lambda c: c.kind)


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("cls", _node_classes(), ids=lambda c: c.kind)
def test_every_node_roundtrips_or_names_itself(wrap_node, cls, tmp_path):
    g = wrap_node(cls.example())
    path = tmp_path / "m.nir"
    if cls.kind not in EXPRESSIBLE:
        msg = rf"node 'n' \({cls.kind}\) cannot be expressed in NIR"
        with pytest.raises(ValueError, match=msg):
            to_nir(g)
        with pytest.raises(ValueError, match=msg):
            write_nir(g, path)
        assert list(tmp_path.iterdir()) == []  # nothing partial
        return
    via_object = from_nir(to_nir(g))
    assert via_object.equals(g)
    via_file = read_nir(write_nir(g, path))
    assert via_file.equals(g)
    assert via_file.digest() == g.digest()
    assert _same_run(g, via_object) and _same_run(g, via_file)


def test_models_roundtrip_through_files(tmp_path):
    """A lowered MLP and a recurrent network (a graph cycle) with names like '0.recurrent'."""
    torch.manual_seed(1)
    mlp = from_module(SpikingMLP(SpikingMLPConfig(layers=[8, 6, 3])))
    rec = from_module(Sequential(
        Recurrent(NI, LIF(NH, beta=torch.linspace(0.6, 0.95, NH), reset="zero", refractory=2),
                  w_rec=torch.randn(NH, NH) * 0.5),
        Linear(NH, NO), CubaLIF(alpha=0.7, beta=0.8, reset_timing="deferred", decay_input=True)))
    for i, g in enumerate((mlp, rec)):
        g2 = read_nir(write_nir(g, tmp_path / f"{i}.nir"))
        assert g2.equals(g) and _same_run(g, g2)
        assert list(g2.nodes) == list(g.nodes) and g2.metadata == g.metadata
    f = nir.read(tmp_path / "1.nir")
    assert ("0.recurrent", "0.neuron") in f.edges and ("0.neuron", "0.recurrent") in f.edges


def test_nir_parameters_follow_the_snntorch_convention():
    """Other readers see sensible NIR: Euler tau = dt / (1 - beta), r = tau / dt, dt recorded."""
    dt = 1e-3
    g = from_module(Sequential(Linear(4, 3), LIF(3, beta=torch.tensor([0.5, 0.9, 1.0]), dt=dt),
                               Linear(3, 2), LIF(beta=0.8, decay_input=True, dt=dt),
                               Linear(2, 2), CubaLIF(alpha=0.75, beta=0.5, dt=dt)))
    n = to_nir(g)
    assert n.metadata["dt"] == dt
    lif = n.nodes["1"]
    assert isinstance(lif, nir.LIF)
    np.testing.assert_allclose(lif.tau, [dt / 0.5, dt / (1 - np.float32(0.9)), np.inf])
    np.testing.assert_allclose(lif.r[:2], lif.tau[:2] / dt)
    assert (lif.v_leak == 0).all() and (lif.v_reset == 0).all() and (lif.v_threshold == 1).all()
    assert np.allclose(n.nodes["3"].r, 1.0)  # decay_input: input gain 1 - beta = dt / tau
    cuba = n.nodes["5"]
    np.testing.assert_allclose(cuba.tau_syn, dt / 0.25)
    np.testing.assert_allclose(cuba.w_in, cuba.tau_syn / dt)
    np.testing.assert_allclose(cuba.tau_mem, dt / 0.5)
    # a reader that ignores neuro's metadata gets the same model (zero reset here is NIR's own)
    for node in n.nodes.values():
        node.metadata = {}
    plain = from_nir(n)
    assert plain.dt == dt
    assert isinstance(plain.nodes["3"], nodes.LIF) and plain.nodes["3"].decay_input
    x = (torch.rand(40, 2, 4) < 0.5).float() * 2
    torch.testing.assert_close(simulate(plain, x)["output"], simulate(g, x)["output"],
                               rtol=0, atol=0)


def test_import_of_foreign_nir_graphs():
    """No neuro metadata: no step is guessed (``ValueError`` naming ``dt``); with snnTorch's
    1e-4 s given, gains fold into the threshold."""
    n = 3
    tau = np.full(n, 1e-3)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(np.array([n])),
        "a": nir.LIF(tau=tau, r=2 * tau / SNNTORCH_DT, v_leak=np.zeros(n), v_threshold=np.ones(n)),
        "b": nir.LI(tau=tau, r=np.ones(n), v_leak=np.zeros(n)),
        "output": nir.Output(np.array([n]))},
        edges=[("input", "a"), ("a", "b"), ("b", "output")])
    with pytest.raises(ValueError, match=r"records no time step.*pass dt=SECONDS"):
        from_nir(graph)
    g = from_nir(graph, SNNTORCH_DT)
    assert g.dt == SNNTORCH_DT and g.metadata == {"source": "nir"}
    a, b = g.nodes["a"], g.nodes["b"]
    assert a.reset == "zero" and a.reset_timing == "immediate" and not a.decay_input
    np.testing.assert_array_equal(a.beta, np.float32(0.9))
    np.testing.assert_allclose(a.threshold, 0.5)  # input gain 2 -> threshold / 2
    assert b.decay_input  # r = 1: gain dt / tau = 1 - beta
    assert from_nir(graph, dt=5e-4).nodes["a"].beta[0] == np.float32(0.5)
    g2 = from_nir(graph, SNNTORCH_DT, reset="subtract", reset_timing="deferred")
    assert g2.nodes["a"].reset == "subtract" and g2.nodes["a"].reset_timing == "deferred"


@pytest.mark.parametrize("node,match", [
    (nir.LI(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.full(2, 0.3)),
     r"node 'x' \(NIR LI\): field 'v_leak'"),
    (nir.LIF(tau=np.full(2, 1e-5), r=np.full(2, 0.1), v_leak=np.zeros(2), v_threshold=np.ones(2)),
     r"node 'x' \(NIR LIF\): field 'tau'.*shorter than one step"),
    (nir.Delay(delay=np.full(2, 1.5e-4)), r"node 'x' \(NIR Delay\): field 'delay'"),
    (nir.Scale(scale=np.ones(2)), r"node 'x': NIR node type 'Scale' has no neuro equivalent"),
    (nir.I(r=np.ones(2)), r"node 'x': NIR node type 'I' has no neuro equivalent"),
])
def test_import_errors_name_node_and_field(node, match):
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "x": node,
                                "output": nir.Output(np.array([2]))},
                         edges=[("input", "x"), ("x", "output")], type_check=False)
    with pytest.raises(ValueError, match=match):
        from_nir(graph, SNNTORCH_DT)


# ------------------------------------------------------------------------------ DelayedAffine
def test_delayed_affine_exports_as_linear_delay_branches(tmp_path):
    w = np.array([[1.0, -0.5, 0.25, 0.0], [0.5, 0.5, 0.5, 2.0]], np.float32)
    d = np.array([[0, 2, 1, 5], [3, 0, 2, 2]])  # w[0, 3] = 0 with delay 5: kept exactly
    da = nodes.DelayedAffine(weight=w, delay=d, bias=np.array([0.0, 0.1], np.float32))
    g = Graph({"in": nodes.Input(shape=(4,)), "da": da,
               "lif": nodes.LIF(beta=np.float32(0.9), threshold=np.float32(0.5), reset="zero"),
               "out": nodes.Output()},
              [("in", "da"), ("da", "lif"), ("lif", "out")], dt=1e-3).validate()
    path = write_nir(g, tmp_path / "da.nir")
    f = nir.read(path)
    weights = {k: v for k, v in f.nodes.items() if isinstance(v, (nir.Linear, nir.Affine))}
    delays = {k: v for k, v in f.nodes.items() if isinstance(v, nir.Delay)}
    assert len(weights) == len(delays) == 4  # distinct delays 0, 1, 2, 3 (5 has no weight)
    for k, v in delays.items():
        steps = int(k.split(".d")[1].split(".")[0])
        np.testing.assert_allclose(v.delay, steps * 1e-3)
        wk = k.replace(".delay", ".weight")
        assert (wk, k) in f.edges and ("in", wk) in f.edges and (k, "lif") in f.edges
        np.testing.assert_array_equal(weights[wk].weight, np.where(d == steps, w, 0))
    assert isinstance(weights["da.d0.weight"], nir.Affine)  # the bias rides on the d = 0 branch
    assert np.array_equal(sum(v.weight for v in weights.values()), w)
    g2 = read_nir(path)
    assert g2.equals(g) and isinstance(g2.nodes["da"], nodes.DelayedAffine)
    np.testing.assert_array_equal(g2.nodes["da"].delay, d)
    assert _same_run(g, g2)
    # the branches alone (metadata dropped, as another reader sees them) compute the same thing
    for v in f.nodes.values():
        v.metadata = {}
    plain = from_nir(f, dt=1e-3)
    assert {n.kind for n in plain.nodes.values()} == {"Input", "Linear", "Affine", "Delay", "LIF",
                                                      "Output"}
    x = (torch.rand(30, 2, 4) < 0.5).float()
    torch.testing.assert_close(simulate(plain, x)["out"], simulate(g, x)["out"], rtol=0, atol=0)


def test_delayed_affine_in_a_cycle_roundtrips():
    rng = np.random.default_rng(0)
    g = Graph({"in": nodes.Input(shape=(4,)), "lif": nodes.LIF(beta=np.float32(0.8)),
               "rec": nodes.DelayedAffine(weight=rng.normal(size=(4, 4)), delay=rng.integers(0, 3, (4, 4)),
                                          bias=np.zeros(4)),
               "out": nodes.Output()},
              [("in", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]).validate()
    g2 = from_nir(to_nir(g))
    assert g2.equals(g) and _same_run(g, g2)


# ------------------------------------------------------------------------------ oracle A
def _vec(v, n):
    return torch.full((n,), float(v))


class _RNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(NI, NH)
        self.rlif = snn.RLeaky(beta=_vec(0.9, NH), threshold=_vec(1.0, NH), linear_features=NH,
                               init_hidden=True)
        self.fc2 = torch.nn.Linear(NH, NO)
        self.lif = snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True,
                             output=True)

    def forward(self, x):
        return self.lif(self.fc2(self.rlif(self.fc1(x))))


def _snn_leaky(reset):
    return torch.nn.Sequential(
        torch.nn.Linear(NI, NH),
        snn.Leaky(beta=_vec(0.9, NH), threshold=_vec(1.0, NH), init_hidden=True, reset_mechanism=reset),
        torch.nn.Linear(NH, NO),
        snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True,
                  reset_mechanism=reset))


def _snn_synaptic():
    return torch.nn.Sequential(
        torch.nn.Linear(NI, NH),
        snn.Synaptic(alpha=_vec(0.7, NH), beta=_vec(0.9, NH), threshold=_vec(1.0, NH), init_hidden=True),
        torch.nn.Linear(NH, NO),
        snn.Leaky(beta=_vec(0.8, NO), threshold=_vec(1.0, NO), init_hidden=True, output=True))


def _run_snntorch(net, x):
    """Step a snnTorch module (init_hidden=True) or a nirtorch GraphModule over ``x[T, B, N]``."""
    snn_utils.reset(net)
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            out = net(x[t]) if state is None else net(x[t], state)
            if isinstance(out, tuple) and isinstance(out[-1], dict):  # nirtorch: (output, state)
                out, state = out
            outs.append(out[0] if isinstance(out, tuple) else out)  # output=True: (spk, mem)
    return torch.stack(outs)


@pytest.mark.parametrize("make,kwargs", [
    (lambda: _snn_leaky("subtract"), {"reset": "subtract", "reset_timing": "deferred"}),
    (lambda: _snn_leaky("zero"), {}),
    (_snn_synaptic, {"reset": "subtract", "reset_timing": "deferred"}),
    (_RNet, {"reset": "subtract", "reset_timing": "deferred"}),
], ids=["Leaky-subtract", "Leaky-zero", "Synaptic-subtract", "RLeaky-subtract"])
def test_oracle_snntorch_export_imports_with_the_same_spikes(make, kwargs, tmp_path):
    """snnTorch model -> export_to_nir -> file -> neuro: the spikes of snnTorch's own run.

    snnTorch's default reset (subtract, reset_delay=True) is not in the NIR file; it is given to
    the importer as ``reset="subtract", reset_timing="deferred"``. Zero reset needs nothing."""
    torch.manual_seed(0)
    net = make()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
    x = (torch.rand(T, B, NI) < 0.3).float()
    ref = _run_snntorch(net, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_to_nir(net, torch.zeros(1, NI), ignore_dims=[0])
    nir.write(tmp_path / "snn.nir", exported)
    g = read_nir(tmp_path / "snn.nir", SNNTORCH_DT, **kwargs)
    assert g.dt == SNNTORCH_DT
    last = g.nodes[g.predecessors(g.outputs()[0])[0]]
    assert np.array_equal(last.beta, np.full(NO, 0.8, np.float32))  # beta back bit for bit
    rec = simulate(g, x, record=True)
    hidden = [k for k, n in g.nodes.items() if isinstance(n, nodes.LIF)][0]
    assert rec[hidden].sum() > 0 and ref.sum() > 0
    assert torch.equal(rec[g.outputs()[0]], ref)


# ------------------------------------------------------------------------------ oracle B
@pytest.mark.parametrize("timing", ["immediate", "deferred"])
@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF"])
def test_oracle_neuro_export_runs_the_same_in_snntorch(neuron, timing):
    """neuro -> to_nir -> snntorch.import_from_nir: the same spikes as neuro.

    Needs ``dt = 1e-4`` (snnTorch's hard-coded step) and ``reset="zero"`` (its importer always
    builds zero-reset neurons; zero reset gives the same spikes at either timing), one threshold
    per layer (its importer's requirement); per-neuron beta is fine."""
    torch.manual_seed(0)
    kw = dict(reset="zero", reset_timing=timing, dt=1e-4)

    def pop(n, beta):
        if neuron == "CubaLIF":
            return CubaLIF(n, alpha=torch.linspace(0.5, 0.8, n), beta=beta, **kw)
        return LIF(n, beta=beta, **kw)

    model = Sequential(Linear(NI, NH), pop(NH, torch.linspace(0.7, 0.95, NH)),
                       Linear(NH, NO, bias=False), pop(NO, 0.85))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.0)
    x = (torch.rand(T, B, NI) < 0.3).float()
    g = from_module(model)
    ours = simulate(g, x, record=True)
    assert ours["1"].sum() > 0 and ours["output"].sum() > 0
    net = import_from_nir(to_nir(g))
    assert torch.equal(_run_snntorch(net, x), ours["output"])


# ------------------------------------------------------------------------------ bad files
def _good_file(path):
    g = Graph({"in": nodes.Input(shape=(3,)), "n": nodes.LIF.example(), "out": nodes.Output()},
              [("in", "n"), ("n", "out")])
    return write_nir(g, path)


def test_read_rejects_bad_files(tmp_path):
    garbage = tmp_path / "garbage.nir"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a NIR file"):
        read_nir(garbage)
    with pytest.raises(ValueError, match="no such NIR file"):
        read_nir(tmp_path / "missing.nir")

    unknown = _good_file(tmp_path / "unknown.nir")
    with h5py.File(unknown, "r+") as f:
        del f["node/nodes/n/type"]
        f["node/nodes/n/type"] = "Quantum"
    with pytest.raises(ValueError, match=r"node 'n': field 'type' is 'Quantum', not a NIR node type"):
        read_nir(unknown)

    old = _good_file(tmp_path / "old.nir")
    with h5py.File(old, "r+") as f:
        del f["version"]
        f["version"] = "7.0.0"
    with pytest.raises(ValueError, match=r"field 'version' is '7.0.0'"):
        read_nir(old)

    pool = tmp_path / "pool.nir"
    nir.write(pool, nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1, 4, 4])),
               "p": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                  padding=np.array([0, 0])),
               "output": nir.Output(np.array([1, 2, 2]))},
        edges=[("input", "p"), ("p", "output")], type_check=False))
    assert type(read_nir(pool, SNNTORCH_DT).nodes["p"]).__name__ == "SumPool2d"
    scale = tmp_path / "scale.nir"
    nir.write(scale, nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "p": nir.Scale(scale=np.ones(2, np.float32)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "p"), ("p", "output")], type_check=False))
    with pytest.raises(ValueError, match=r"node 'p': NIR node type 'Scale' has no neuro"):
        read_nir(scale, SNNTORCH_DT)


# ------------------------------------------------------------------------------ CLI
def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("neuro: error: "), err
    for n in needles:
        assert n in err, err


def test_cli_export_import_run(tmp_path, capsys):
    torch.manual_seed(0)
    model = SpikingMLP(SpikingMLPConfig(layers=[20, 16, 4]))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name,
                           config=model.config_dict())
    np.savez(tmp_path / "in.npz", spikes=(np.random.rand(50, 3, 20) < 0.2).astype(np.uint8))
    out_dir = tmp_path / "exported"
    assert main(["export", str(ckpt), "--target", "nir", "--out", str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.nir"]
    assert main(["import", str(out_dir / "model.nir"), "--out", str(tmp_path / "x.safetensors")]) == 0
    assert main(["run", str(ckpt), "--input", str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "a.npz")]) == 0
    assert main(["run", str(tmp_path / "x.safetensors"), "--input", str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "b.npz")]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["spikes"].sum() > 0
    assert np.array_equal(a["spikes"], b["spikes"]) and np.array_equal(a["output"], b["output"])
    # exporting into an existing directory replaces model.nir atomically
    assert main(["export", str(ckpt), "--target", "nir", "--out", str(out_dir), "--format", "nir"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.nir"]


def test_cli_bad_inputs_exit_2_with_one_line(wrap_node, tmp_path, capsys):
    model = SpikingMLP(SpikingMLPConfig(layers=[6, 4, 2]))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name,
                           config=model.config_dict())
    out = tmp_path / "out"
    assert main(["export", str(ckpt), "--target", "nir", "--out", str(out), "--format", "x"]) == 2
    _one_line_error(capsys, "format")
    # a node NIR lacks: one line naming it, no output directory
    egru = wrap_node(nodes.EGRU.example())
    gm = GraphModel(egru)
    eckpt = save_checkpoint(tmp_path / "egru.safetensors", gm, name="graph", config=gm.config_dict())
    assert main(["export", str(eckpt), "--target", "nir", "--out", str(out)]) == 2
    _one_line_error(capsys, "node 'n' (EGRU) cannot be expressed in NIR")
    assert not out.exists()

    garbage = tmp_path / "garbage.nir"
    garbage.write_bytes(b"\x00" * 64)
    target = tmp_path / "x.safetensors"
    assert main(["import", str(garbage), "--out", str(target)]) == 2
    _one_line_error(capsys, "not a NIR file")
    unknown = _good_file(tmp_path / "unknown.nir")
    with h5py.File(unknown, "r+") as f:
        del f["node/nodes/n/type"]
        f["node/nodes/n/type"] = "Quantum"
    assert main(["import", str(unknown), "--out", str(target)]) == 2
    _one_line_error(capsys, "node 'n'", "'type'", "Quantum")
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.safetensors", "egru.safetensors", "garbage.nir", "unknown.nir"])


def test_nested_nir_graphs_are_inlined():
    n, tau = 4, np.full(4, 1e-3)
    rng = np.random.default_rng(0)
    w_in, w_rec = rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, n)).astype(np.float32)

    def lif():
        return nir.LIF(tau=tau, r=tau / SNNTORCH_DT, v_leak=np.zeros(n), v_threshold=np.ones(n))

    sub = nir.NIRGraph(nodes={"i": nir.Input(np.array([n])), "lif": lif(),
                              "w": nir.Linear(weight=w_rec), "o": nir.Output(np.array([n]))},
                       edges=[("i", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "o")])
    nested = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(weight=w_in),
                                 "rnn": sub, "output": nir.Output(np.array([n]))},
                          edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")])
    flat = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(weight=w_in),
                               "rnn.lif": lif(), "rnn.w": nir.Linear(weight=w_rec),
                               "output": nir.Output(np.array([n]))},
                        edges=[("input", "fc"), ("rnn.lif", "rnn.w"), ("rnn.w", "rnn.lif"),
                               ("fc", "rnn.lif"), ("rnn.lif", "output")])
    a, b = from_nir(nested, SNNTORCH_DT), from_nir(flat, SNNTORCH_DT)
    assert set(a.nodes) == set(b.nodes) and set(a.edges) == set(b.edges)
    assert _same_run(a, b)
