"""Bad input: a clear error naming the population (or node, chip) and the limit; nothing written."""
import numpy as np
import pytest

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.hardware.base import ArtifactError, UnsupportedGraph
from neuro.hardware.spinnaker import Machine


def _fails(graph, tmp_path, machine, match):
    assert spinnaker.supports(graph, machine=machine)  # listed, never silent
    with pytest.raises(UnsupportedGraph, match=match):
        spinnaker.compile(graph, tmp_path / "art", machine=machine)
    assert not (tmp_path / "art").exists() and list(tmp_path.iterdir()) == []


def test_too_many_neurons(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    tiny = Machine(width=1, height=1, cores_per_chip=4, neurons_per_core=8)
    _fails(q, tmp_path, tiny, r"population '1' does not fit the machine: .* the machine has 4 "
                              r"\(1x1 chips x 4 cores, at most 8 neurons per core\)")


def test_delay_beyond_the_extension(networks, tmp_path):
    g, x = networks["delay"](T=20, max_delay=41)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    assert spinnaker.supports(q) == []  # fine with the default 8 stages (144 ticks)
    short = Machine(max_delay_stages=1)
    _fails(q, tmp_path, short, r"projection '0' \(input -> 2\): a delay of \d+ ticks .* exceeds the "
                               r"32 ticks the delay extension supports .*population '2'")


def test_routing_table_overflow(tmp_path):
    n = 8
    g = Graph({"input": N.Input(shape=(n,)), "w": N.Linear(weight=np.ones((n, n), np.float32)),
               "lif": N.LIF(shape=(n,), beta=0.9, threshold=1.0, reset="zero"),
               "output": N.Output()},
              [("input", "w"), ("w", "lif"), ("lif", "output")]).validate()
    m = Machine(width=2, height=2, cores_per_chip=16, neurons_per_core=1, router_entries=4)
    _fails(g, tmp_path, m, r"routing table of chip \(0, 0\) needs 8 entries, the limit is 4 per "
                           r"chip \(keys of populations 'input'\)")


def test_synaptic_row_memory(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    small = Machine(row_memory_per_core=1024)  # population '1' (32 x 20 synapses) is cut in slices
    m = spinnaker.map_network(spinnaker.from_graph(q), small)
    assert sum(v.population == "1" for v in m.vertices) > 1
    assert int(m.row_bytes.max()) <= 1024
    _fails(q, tmp_path, Machine(row_memory_per_core=64),
           r"population '[135]': the synaptic rows of one neuron need \d+ bytes, the per-core "
           r"budget is 64 bytes")


def test_nodes_the_simulator_cannot_run(tmp_path):
    g = Graph({"input": N.Input(shape=(4,)), "w": N.Linear(weight=np.ones((3, 4), np.float32)),
               "th": N.Threshold(threshold=np.ones(3, np.float32)), "output": N.Output()},
              [("input", "w"), ("w", "th"), ("th", "output")]).validate()
    problems = spinnaker.supports(g)
    assert any("node 'th' (Threshold)" in p for p in problems)
    with pytest.raises(UnsupportedGraph, match="node 'th' \\(Threshold\\)"):
        spinnaker.compile(g, tmp_path / "art")
    assert not (tmp_path / "art").exists()


def test_non_spiking_population_cannot_send(tmp_path):
    g = Graph({"input": N.Input(shape=(4,)), "w1": N.Linear(weight=np.ones((3, 4), np.float32)),
               "li": N.LI(shape=(3,), beta=0.5), "w2": N.Linear(weight=np.ones((2, 3), np.float32)),
               "lif": N.LIF(shape=(2,), beta=0.5, threshold=1.0, reset="zero"), "output": N.Output()},
              [("input", "w1"), ("w1", "li"), ("li", "w2"), ("w2", "lif"), ("lif", "output")]).validate()
    assert any("node 'li' (LI) is non-spiking and feeds synapse 'w2'" in p for p in spinnaker.supports(g))


def test_wrong_format_and_wrong_input(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    with pytest.raises(UnsupportedGraph, match=r"number format 'int8' is not one of \['spinnaker'\]"):
        spinnaker.compile(quantize(g, "int8", calibration_inputs=x), tmp_path / "a")
    assert "number format 'loihi2' is not one of ['spinnaker']" in spinnaker.supports(g, "loihi2")
    art = spinnaker.compile(g, tmp_path / "b", calibration_inputs=x)
    with pytest.raises(ValueError, match=r"expected \[T, 20\]"):
        spinnaker.run(art, np.zeros((10, 21)))
    with pytest.raises(ValueError, match="engine must be"):
        spinnaker.run(art, np.zeros((10, 20)), engine="gpu")
    with pytest.raises(ArtifactError, match="not a neuro artifact"):
        spinnaker.run(tmp_path, np.zeros((10, 20)))


def test_neuron_features_without_an_integer_form():
    g = Graph({"input": N.Input(shape=(4,)), "w": N.Linear(weight=np.ones((3, 4), np.float32)),
               "lif": N.LIF(shape=(3,), beta=0.5, threshold=1.0, reset="zero", refractory=2),
               "output": N.Output()},
              [("input", "w"), ("w", "lif"), ("lif", "output")]).validate()
    assert spinnaker.supports(g) == ["node 'lif' (LIF): field 'refractory' (2 steps) has no integer form yet"]


class MyLIF(N.LIF):
    """A new neuron kind: LIF's fields and roles, dynamics no backend has been taught."""

    kind = "MyLIF"


def test_a_subclass_of_a_known_neuron_is_refused_by_its_kind(tmp_path):
    g = Graph({"input": N.Input(shape=(4,)), "w": N.Linear(weight=np.ones((3, 4), np.float32)),
               "lif": MyLIF(shape=(3,), beta=0.5, threshold=1.0, reset="zero"), "output": N.Output()},
              [("input", "w"), ("w", "lif"), ("lif", "output")]).validate()
    problems = spinnaker.supports(g)
    assert len(problems) == 1 and problems[0].startswith("node 'lif' (MyLIF): the SpiNNaker simulator runs")
    with pytest.raises(UnsupportedGraph, match=r"node 'lif' \(MyLIF\)"):
        spinnaker.compile(g, tmp_path / "art")
    assert not (tmp_path / "art").exists()
