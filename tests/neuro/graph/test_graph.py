"""Graph IR: introspective round-trips, validation errors, lowering and the float executor."""
import json

import numpy as np
import pytest
import torch

from neuro.graph import NODE_TYPES, Graph, from_module, lm_nodes, node_from_dict, nodes, simulate
from neuro.layers import Linear, Recurrent, Sequential
from neuro.models import SpikingMLP, SpikingMLPConfig
from neuro.neurons import EGRU, LI, LIF, CubaLIF


def _all_node_classes():
    found = {c for module in (nodes, lm_nodes) for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, nodes.Node) and c is not nodes.Node}
    assert found == set(NODE_TYPES.values()), "every node class must be in NODE_TYPES"
    return sorted(found, key=lambda c: c.kind)


@pytest.mark.parametrize("cls", _all_node_classes(), ids=lambda c: c.kind)
def test_every_node_roundtrips_dict_json_npz(wrap_node, cls, tmp_path):
    node = cls.example()
    assert node_from_dict(node.to_dict()).equals(node)
    if cls in (nodes.Input, nodes.Output):
        return
    g = wrap_node(node)
    g2 = Graph.load(g.save(tmp_path / "g"))
    assert g2.equals(g)
    assert g2.digest() == g.digest()
    json.loads((tmp_path / "g" / "graph.json").read_text())  # plain JSON


@pytest.mark.parametrize("cls", _all_node_classes(), ids=lambda c: c.kind)
def test_every_node_simulates(wrap_node, cls):
    if cls in (nodes.Input, nodes.Output):
        return
    g = wrap_node(cls.example())
    shape = g.nodes["in"].shape
    x = torch.rand(7, 2, *shape)
    if cls is lm_nodes.Embedding:  # takes one-hot tokens
        x = torch.nn.functional.one_hot(torch.randint(0, shape[0], (7, 2)), shape[0]).float()
    out = simulate(g, x)["out"]
    assert out.shape[:2] == (7, 2) and torch.isfinite(out).all()


def test_spiking_mlp_lowering_equals_module():
    m = SpikingMLP(SpikingMLPConfig(layers=[30, 24, 16, 5]))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4)
    g = from_module(m)
    assert [n.kind for n in g.nodes.values()] == ["Input", "Affine", "LIF", "Affine", "LIF",
                                                  "Affine", "LI", "Output"]
    x = (torch.rand(60, 3, 30) < 0.1).float()
    rec = simulate(g, x, record=True)
    out, _ = m(x)
    assert torch.equal(rec["output"], out)
    assert rec["1"].sum() > 0  # the hidden layer fires
    # [T, N] input gives [T, ...] output
    assert simulate(g, x[:, 0])["output"].shape == (60, 5)


def test_recurrent_population_lowers_to_a_cycle_and_matches():
    torch.manual_seed(3)
    w_rec = torch.randn(20, 20) * 0.4
    net = Sequential(Recurrent(12, LIF(20, beta=0.8), w_rec=w_rec), Linear(20, 4), LI(beta=0.9))
    with torch.no_grad():
        net[0].input.weight.mul_(3)
    g = from_module(net)
    sched = g.schedule()
    assert ("0.neuron", "0.recurrent") in sched.delayed
    assert any(set(grp) == {"0.neuron", "0.recurrent"} for grp in sched.groups)
    x = (torch.rand(80, 2, 12) < 0.2).float()
    rec = simulate(g, x, record=True)
    assert torch.equal(rec["0.neuron"], net[0](x)[0])
    assert torch.equal(rec["output"], net(x)[0])
    assert rec["0.neuron"].sum() > 0


def test_cubalif_and_egru_lower_and_match():
    torch.manual_seed(0)
    net = Sequential(Linear(6, 8), CubaLIF(alpha=0.6, beta=0.9, threshold=0.5), EGRU(8, 5))
    g = from_module(net)
    x = (torch.rand(30, 2, 6) < 0.3).float()
    torch.testing.assert_close(simulate(g, x)["output"], net(x)[0], rtol=0, atol=1e-6)


def test_golden_trace_impulse_through_affine_lif():
    g = Graph({"in": nodes.Input(shape=(1,)), "w": nodes.Linear(weight=np.array([[0.6]])),
               "lif": nodes.LIF(beta=np.float32(0.5), threshold=np.float32(1.0)),
               "out": nodes.Output()},
              [("in", "w"), ("w", "lif"), ("lif", "out")])
    x = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]).view(6, 1)
    # h: 0.6, 0.9, 0.45, 0.825, 1.0125 -> spike, v 0.0125 -> 0.60625
    assert simulate(g, x)["out"].flatten().tolist() == [0, 0, 0, 0, 1, 0]


def test_delay_nodes_shift_in_time():
    g = Graph({"in": nodes.Input(shape=(2,)),
               "d": nodes.DelayedAffine(weight=np.eye(2), delay=np.array([[2, 0], [0, 0]]),
                                        bias=np.zeros(2)),
               "out": nodes.Output()}, [("in", "d"), ("d", "out")])
    x = torch.zeros(5, 2)
    x[0] = 1
    y = simulate(g, x)["out"]
    assert y[:, 0].tolist() == [0, 0, 1, 0, 0] and y[:, 1].tolist() == [1, 0, 0, 0, 0]


def test_dt_is_recorded_and_must_agree():
    g = from_module(Sequential(Linear(3, 2), LIF(beta=0.9, dt=2e-3)))
    assert g.dt == 2e-3
    with pytest.raises(ValueError, match="different dt"):
        from_module(Sequential(Linear(3, 2), LIF(dt=1e-3), Linear(2, 2), LIF(dt=2e-3)))


# ------------------------------------------------------------------------ bad graphs
def _g(node_map, edges):
    return Graph(node_map, edges)


def test_bad_graphs_name_the_problem():
    inp, out = nodes.Input(shape=(2,)), nodes.Output()
    with pytest.raises(ValueError, match="dangling edge 'in' -> 'nowhere'"):
        _g({"in": inp, "out": out}, [("in", "nowhere"), ("in", "out")]).validate()
    with pytest.raises(ValueError, match="shape mismatch at node 'out'|node 'w'.*input shape"):
        _g({"in": inp, "w": nodes.Linear(weight=np.ones((2, 3))), "out": out},
           [("in", "w"), ("w", "out")]).validate()
    with pytest.raises(ValueError, match="cycle without a stateful \\(neuron\\) node"):
        _g({"in": inp, "a": nodes.Linear(weight=np.eye(2)), "b": nodes.Linear(weight=np.eye(2)),
            "out": out}, [("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")]).validate()
    with pytest.raises(ValueError, match="node 'lif' \\(LIF\\): field 'beta'"):
        _g({"in": inp, "lif": nodes.LIF(beta=np.float32(1.5)), "out": out},
           [("in", "lif"), ("lif", "out")]).validate()
    with pytest.raises(ValueError, match="no Output"):
        _g({"in": inp}, []).validate()
    with pytest.raises(ValueError, match="unknown node type 'Banana'"):
        Graph.from_dict({"format_version": 1, "nodes": {"x": {"type": "Banana"}}, "edges": []})
    with pytest.raises(ValueError, match="format_version"):
        Graph.from_dict({"format_version": 99, "nodes": {}, "edges": []})


def test_lowering_rejects_unknown_modules():
    with pytest.raises(ValueError, match="cannot lower module '1' of type Tanh"):
        from_module(Sequential(Linear(3, 2), torch.nn.Tanh()))


def test_simulate_rejects_bad_inputs():
    g = from_module(Sequential(Linear(3, 2), LIF()))
    with pytest.raises(ValueError, match="per-step shape must be \\(3,\\)"):
        simulate(g, torch.zeros(5, 2, 4))
    bad = torch.zeros(5, 3)
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        simulate(g, bad)


def test_graph_model_checkpoint_roundtrip(tmp_path):
    from neuro.checkpoint import load_checkpoint, save_checkpoint
    from neuro.graph import GraphModel

    torch.manual_seed(1)
    net = Sequential(Recurrent(5, LIF(7, beta=0.7), w_rec=torch.randn(7, 7) * 0.3), Linear(7, 3), LI())
    g = from_module(net)
    gm = GraphModel(g)
    path = save_checkpoint(tmp_path / "g.safetensors", gm, name=gm.name, config=gm.config_dict())
    gm2, meta = load_checkpoint(path)
    assert meta["model"] == "graph" and from_module(gm2).equals(g)
    x = (torch.rand(20, 2, 5) < 0.3).float()
    assert torch.equal(gm2(x)[0], net(x)[0])


def test_loop_latency_is_one_step_plus_delays():
    """LIF -> W -> LIF closes in one step; through a DelayedAffine of d steps in 1 + d."""
    def loop(syn):
        return Graph({"in": nodes.Input(shape=(1,)), "lif": nodes.LIF(beta=np.float32(0.0)),
                      "rec": syn, "out": nodes.Output()},
                     [("in", "lif"), ("rec", "lif"), ("lif", "rec"), ("lif", "out")])
    x = torch.zeros(8, 1)
    x[0] = 1.0
    plain = simulate(loop(nodes.Linear(weight=np.array([[1.0]]))), x)["out"].flatten().tolist()
    assert plain == [1, 1, 1, 1, 1, 1, 1, 1]  # re-excites itself every step
    for d in (0, 2):
        g = loop(nodes.DelayedAffine(weight=np.array([[1.0]]), delay=np.array([[d]]), bias=np.zeros(1)))
        out = simulate(g, x)["out"].flatten().tolist()
        assert out == [1 if t % (1 + d) == 0 else 0 for t in range(8)], (d, out)
