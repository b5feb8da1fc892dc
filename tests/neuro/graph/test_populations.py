"""Node roles and the population view shared by quantize and the backends."""
import copy

import numpy as np
import pytest

from neuro.graph import NODE_TYPES, ROLES, Graph, GraphError, partition, simulate
from neuro.graph import nodes as N
from neuro.graph.formats import get_format
from neuro.graph.populations import fold_channel_affines, neuron_problems
from neuro.graph.quantize import quantize


def test_every_node_class_declares_its_role():
    for cls in NODE_TYPES.values():
        assert cls.role in ROLES, cls.kind
    roles = {k: c.role for k, c in NODE_TYPES.items()}
    assert {k for k, r in roles.items() if r == "synapse"} == {"Affine", "Linear", "DelayedAffine",
                                                               "Conv1d", "Conv2d"}
    assert {k for k, r in roles.items() if r == "neuron"} == {"LIF", "CubaLIF", "IF", "LI", "EGRU",
                                                              "Threshold"}
    assert {k for k, c in NODE_TYPES.items() if c.spiking} == {"Input", "LIF", "CubaLIF", "IF",
                                                              "EGRU", "Threshold"}
    assert {k for k, c in NODE_TYPES.items() if c.has_integer_form} == {
        "Input", "Output", "Affine", "Linear", "DelayedAffine", "Delay", "Flatten", "LIF", "CubaLIF",
        "IF", "LI", "EGRU", "Conv2d", "SumPool2d"}
    assert [k for k, c in NODE_TYPES.items() if c.owns_weights] == ["EGRU"]
    assert [k for k, c in NODE_TYPES.items() if c.folds_into_synapse] == ["ChannelAffine"]
    assert {k for k, r in roles.items() if r == "operator"} == {
        "Embedding", "LayerNorm", "TokenShift", "WKV", "Gate", "SquaredReLU", "Add"}
    assert {k: c.ports for k, c in NODE_TYPES.items() if c.ports} == {
        "WKV": ("key", "value"), "Gate": ("gate", "value")}


def _net():
    """in -> Delay -> w1 -> a (recurrent through r) -> Flatten -> w2 -> b -> out, skip in -> w3 -> b."""
    w = lambda o, i: np.full((o, i), 0.5, np.float32)  # noqa: E731
    nodes = {"in": N.Input(shape=(3,)), "d": N.Delay(delay=np.array([0, 1, 2])),
             "w1": N.Linear(weight=w(4, 3)), "a": N.LIF(shape=(4,), reset="zero"),
             "r": N.Linear(weight=w(4, 4)), "f": N.Flatten(), "w2": N.Linear(weight=w(2, 4)),
             "w3": N.Affine(weight=w(2, 3), bias=np.zeros(2, np.float32)),
             "b": N.LI(shape=(2,)), "out": N.Output()}
    edges = [("in", "d"), ("d", "w1"), ("w1", "a"), ("a", "r"), ("r", "a"), ("a", "f"), ("f", "w2"),
             ("w2", "b"), ("in", "w3"), ("w3", "b"), ("b", "out")]
    return Graph(nodes, edges).validate()


def test_partition_populations_projections_outputs():
    view = partition(_net())
    assert view.problems == []
    assert view.inputs == ["in"] and view.neurons == {"a": ["w1", "r"], "b": ["w2", "w3"]}
    got = {p.synapse: (p.source, p.target, p.delay.tolist(), p.recurrent, p.path)
           for p in view.projections}
    assert got == {"w1": ("in", "a", [0, 1, 2], False, ("d",)),
                   "r": ("a", "a", [0, 0, 0, 0], True, ()),
                   "w2": ("a", "b", [0, 0, 0, 0], False, ("f",)),
                   "w3": ("in", "b", [0, 0, 0], False, ())}
    assert view.outputs == {"out": "b"}


def test_partition_lists_what_is_out_of_place():
    g = Graph({"in": N.Input(shape=(3,)), "n": N.LIF(shape=(3,), reset="zero"),
               "w": N.Linear(weight=np.ones((2, 3), np.float32)), "d": N.Delay(delay=np.zeros(2, np.int64)),
               "m": N.LIF(shape=(2,), reset="zero"), "out": N.Output()},
              [("in", "n"), ("n", "w"), ("w", "d"), ("d", "m"), ("m", "out")]).validate()
    view = partition(g)
    subjects = [s for s, _ in view.problems]
    assert "in" in subjects and "d" in subjects  # Input straight into a neuron; synapse -> Delay
    assert any("a synapse must feed exactly one neuron population" in m for m in view.messages())
    assert view.messages(skip=["in", "d"]) == []
    with pytest.raises(GraphError, match="not a synapse"):
        quantize(g, "int8")


def test_fold_channel_affines_keeps_the_float_semantics():
    rng = np.random.default_rng(0)
    g = Graph({"in": N.Input(shape=(3,)), "w": N.Linear(weight=rng.normal(size=(2, 3)).astype(np.float32)),
               "bn": N.ChannelAffine(scale=np.float32([0.5, 2.0]), shift=np.float32([0.1, -0.1])),
               "n": N.LIF(shape=(2,), reset="zero"), "out": N.Output()},
              [("in", "w"), ("w", "bn"), ("bn", "n"), ("n", "out")]).validate()
    f = copy.deepcopy(g)
    fold_channel_affines(f)
    assert "bn" not in f.nodes and type(f.nodes["w"]) is N.Affine
    x = (rng.random((20, 3)) < 0.5).astype(np.float32)
    assert np.array_equal(simulate(g, x)["out"].numpy(), simulate(f.validate(), x)["out"].numpy())


def test_neuron_problems_names_the_field_and_the_format():
    node = N.LIF(shape=(2,), beta=np.float32([0.5, 0.6]), reset="subtract", refractory=3)
    got = neuron_problems("n", node, get_format("loihi2"), ("beta",))
    assert got == ["node 'n' (LIF): field 'reset' 'subtract' is not available in format loihi2 "
                   "(supports ['zero'])",
                   "node 'n' (LIF): field 'refractory' (3 steps) has no integer form yet",
                   "node 'n' (LIF): per-neuron beta: the target has one beta register per population"]
    assert neuron_problems("n", N.LIF(reset="subtract"), get_format("spinnaker")) == []


class MyLIF(N.LIF):
    kind = "MyLIF"


def test_a_subclass_inherits_roles_but_no_behaviour():
    g = Graph({"in": N.Input(shape=(2,)), "w": N.Linear(weight=np.eye(2, dtype=np.float32)),
               "n": MyLIF(shape=(2,), reset="zero"), "out": N.Output()},
              [("in", "w"), ("w", "n"), ("n", "out")]).validate()
    assert partition(g).neurons == {"n": ["w"]}  # a neuron population by its role
    with pytest.raises(GraphError, match="MyLIF"):
        simulate(g, np.ones((3, 2), np.float32))
    with pytest.raises(GraphError, match="MyLIF"):
        quantize(g, "int8")
