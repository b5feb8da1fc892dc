"""Counting from a real run: hand-computed counts on tiny graphs (synapse layers, populations)."""
import numpy as np
import pytest
import torch

from neuro.energy import count
from neuro.graph import Graph, simulate
from neuro.graph import nodes as N


def _chain(syn: N.Node, n_in: int, lif: N.Node | None = None, in_shape=None) -> Graph:
    lif = lif or N.LIF(beta=np.float32(0.9), threshold=np.float32(100.0))
    return Graph({"in": N.Input(shape=in_shape or (n_in,)), "syn": syn, "lif": lif, "out": N.Output()},
                 [("in", "syn"), ("syn", "lif"), ("lif", "out")]).validate()


def _fanout3() -> Graph:
    return _chain(N.Linear(weight=np.ones((3, 2), np.float32)), 2)


def test_two_spikes_times_fanout_three_is_six_acs():
    x = np.zeros((4, 1, 2), np.float32)
    x[1, 0, 0] = x[3, 0, 1] = 1
    c = count(_fanout3(), x, progress=False)
    s = c.synapses["syn"]
    assert (s.effective_acs, s.effective_macs) == (6, 0)
    assert s.dense_ops == 4 * 2 * 3  # every connection at every step
    assert s.weight_reads_event == 6 and s.weight_reads_dense == 4 * 6
    assert s.input_events == 2 and s.input_entries == 8
    assert c.input_kind == "spikes"
    p = c.populations["in"]
    assert (p.events, p.packets, p.updates) == (2, 2, 0)
    lif = c.populations["lif"]
    assert lif.updates == 3 * 4 and lif.events == 0
    # active: step 1 (input) and steps 2, 3 (membrane non-zero after step 1); step 0 at rest
    assert lif.active_updates == 3 * 3
    assert c.neurobench()["SynapticOperations"] == {"Effective_MACs": 0.0, "Effective_ACs": 6.0,
                                                    "Dense": 24.0}


def test_real_valued_input_counts_macs():
    x = np.zeros((4, 1, 2), np.float32)
    x[1, 0, 0], x[3, 0, 1] = 0.5, 2.5
    c = count(_fanout3(), x, progress=False)
    assert (c.synapses["syn"].effective_acs, c.synapses["syn"].effective_macs) == (0, 6)
    assert c.input_kind == "real"


def test_negative_spikes_count_as_acs_and_classification_is_per_step_and_sample():
    x = np.zeros((3, 2, 2), np.float32)
    x[0, 0, 0], x[1, 0, 1] = 1, -1       # sample 0: spikes -> ACs
    x[2, 1, 0], x[2, 1, 1] = 1, 0.25     # sample 1, step 2: one real value -> both inputs are MACs
    c = count(_fanout3(), x, progress=False)
    assert (c.synapses["syn"].effective_acs, c.synapses["syn"].effective_macs) == (6, 6)
    per_sample = [count(_fanout3(), x[:, b : b + 1], progress=False).synapses["syn"] for b in (0, 1)]
    assert (per_sample[0].effective_acs, per_sample[1].effective_macs) == (6, 6)


def test_zero_input_counts_nothing():
    c = count(_fanout3(), np.zeros((5, 3, 2), np.float32), progress=False)
    s = c.synapses["syn"]
    assert (s.effective_acs, s.effective_macs, s.weight_reads_event, s.input_events) == (0, 0, 0, 0)
    assert s.dense_ops == 5 * 3 * 6
    assert c.populations["lif"].active_updates == 0 and c.total("spikes") == 0
    assert c.activation_sparsity == 1.0


def test_biases_and_zero_weights_are_excluded():
    w = np.array([[1.0, 0.0], [2.0, 3.0], [0.0, 0.0]], np.float32)  # column 0: 2 weights, column 1: 1
    g = _chain(N.Affine(weight=w, bias=np.array([0.5, 0.5, 0.5], np.float32)), 2)
    zero = count(g, np.zeros((4, 1, 2), np.float32), progress=False)
    assert zero.synapses["syn"].effective_ops == 0  # the bias alone is no synaptic operation
    assert zero.populations["lif"].active_updates == 3 * 4  # but the bias current keeps neurons active
    x = np.zeros((4, 1, 2), np.float32)
    x[0, 0, 0] = x[2, 0, 0] = x[2, 0, 1] = 1
    c = count(g, x, progress=False)
    assert c.synapses["syn"].effective_acs == 2 + 2 + 1
    assert c.synapses["syn"].n_weights == 6 and c.synapses["syn"].n_nonzero_weights == 3
    assert c.synapses["syn"].dense_ops == 4 * 6  # Dense uses all-ones weights (NeuroBench)


def test_delayed_affine_counts_a_linear_layer_over_delayed_inputs():
    w = np.array([[1.0], [1.0], [1.0], [0.0]], np.float32)
    d = np.array([[0], [2], [5], [1]])
    g = _chain(N.DelayedAffine(weight=w, delay=d, bias=np.zeros(4, np.float32)), 1)
    x = np.zeros((4, 1, 1), np.float32)
    x[0, 0, 0] = 1  # reaches outputs 0 (t=0) and 1 (t=2); output 2's delay 5 ends after the run
    c = count(g, x, progress=False)
    assert c.synapses["syn"].effective_acs == 2
    x[3, 0, 0] = 1  # at t=3 only the zero-delay synapse acts within the run
    assert count(g, x, progress=False).synapses["syn"].effective_acs == 3
    assert c.synapses["syn"].dense_ops == (4 - 0) + (4 - 2) + 0 + (4 - 1)


def test_conv1d_counts_kernel_taps_inside_the_input():
    conv = N.Conv1d(weight=np.ones((2, 1, 3), np.float32), bias=np.full(2, 0.3, np.float32), padding=1)
    g = Graph({"in": N.Input(shape=(1, 5)), "syn": conv,
               "lif": N.LIF(beta=np.float32(0.9), threshold=np.float32(100.0)), "out": N.Output()},
              [("in", "syn"), ("syn", "lif"), ("lif", "out")]).validate()
    x = np.zeros((2, 1, 1, 5), np.float32)
    x[0, 0, 0, 2] = 1  # middle: 3 taps x 2 output channels
    x[1, 0, 0, 0] = 1  # edge: 2 taps (the third falls on padding) x 2
    c = count(g, x, progress=False)
    assert c.synapses["syn"].effective_acs == 6 + 4
    assert c.synapses["syn"].dense_ops == 2 * 2 * (2 + 3 + 3 + 3 + 2)  # padding excluded


def test_recurrent_synapse_reads_the_previous_steps_spikes():
    g = Graph({"in": N.Input(shape=(2,)), "fc": N.Linear(weight=np.eye(2, dtype=np.float32) * 2),
               "lif": N.LIF(beta=np.float32(0.0), threshold=np.float32(1.0), reset="zero"),
               "rec": N.Linear(weight=np.array([[0, 0.1], [0.1, 0]], np.float32)),
               "out": N.Output()},
              [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]).validate()
    x = np.zeros((5, 1, 2), np.float32)
    x[0, 0, 0] = x[2, 0, 1] = x[4, 0, 0] = 1
    rec = simulate(g, x, record=True)
    assert torch.equal(rec["lif"][:, 0], torch.from_numpy(x[:, 0]))  # beta 0: spikes follow inputs
    c = count(g, x, progress=False)
    # the spikes at steps 0 and 2 reach W_rec (fan-out 1) at steps 1 and 3; the one at step 4 never does
    assert c.synapses["rec"].effective_acs == 2
    assert c.synapses["fc"].effective_acs == 3
    assert c.populations["lif"].packets == 3 and c.populations["lif"].feeds_synapses


def test_egru_counts_input_and_recurrent_weights(wrap_egru):
    g, x = wrap_egru
    c = count(g, x, progress=False)
    rec = simulate(g, x, record=True)
    node = g.nodes["n"]
    nz_in = (rec["in"] != 0).double().reshape(x.shape[0], -1, x.shape[-1])
    y = rec["n"]
    y_prev = torch.cat([torch.zeros_like(y[:1]), y[:-1]])
    want_in = float((nz_in @ torch.from_numpy((node.kernel != 0).sum(1).astype(np.float64))).sum())
    want_rec = float(((y_prev != 0).double() @ torch.from_numpy(
        (node.recurrent_kernel != 0).sum(1).astype(np.float64))).sum())
    assert c.synapses["n:input"].effective_ops == want_in > 0
    assert c.synapses["n:recurrent"].effective_ops == want_rec > 0
    assert c.synapses["n:recurrent"].effective_macs == want_rec  # graded events are real-valued
    assert c.populations["n"].events == int((y != 0).sum())


@pytest.fixture
def wrap_egru():
    rng = np.random.default_rng(0)
    node = N.EGRU(kernel=rng.normal(size=(3, 12)) * (rng.random((3, 12)) < 0.7),
                  recurrent_kernel=rng.normal(size=(4, 12)), bias=np.zeros(12),
                  recurrent_bias=np.zeros(12), threshold=np.full(4, 0.05, np.float32))
    g = Graph({"in": N.Input(shape=(3,)), "n": node, "out": N.Output()},
              [("in", "n"), ("n", "out")]).validate()
    x = (rng.random((20, 2, 3)) < 0.4).astype(np.float32)
    return g, x


def test_activation_sparsity_and_rates_by_hand():
    g = _chain(N.Linear(weight=np.ones((2, 1), np.float32) * 2), 1,
               lif=N.LIF(beta=np.float32(0.0), threshold=np.float32(1.0)))
    x = np.zeros((10, 1, 1), np.float32)
    x[[1, 4, 7], 0, 0] = 1  # each input spike makes both LIF neurons spike
    c = count(g, x, progress=False)
    assert c.populations["lif"].events == 6
    assert c.activation_sparsity == pytest.approx(1 - 6 / 20)
    assert c.populations["lif"].rate == pytest.approx(0.3)
    assert c.populations["in"].rate == pytest.approx(0.3)
    assert c.total("spikes") == 6  # the input's events are not neuron spikes


def test_chunked_runs_count_the_same_and_show_progress(capsys):
    rng = np.random.default_rng(1)
    g = _chain(N.Affine(weight=rng.normal(size=(6, 5)).astype(np.float32), bias=np.zeros(6, np.float32)), 5,
               lif=N.LIF(beta=np.float32(0.8), threshold=np.float32(0.5)))
    x = (rng.random((15, 7, 5)) < 0.3).astype(np.float32)
    a = count(g, x, batch_size=64, progress=False)
    b = count(g, x, batch_size=2, progress=True)
    assert a.as_dict() == b.as_dict()
    assert "energy: counting" in capsys.readouterr().err
    assert a.raster["lif"].shape == (15, 6) and a.raster["in"].shape == (15, 5)


def test_two_dimensional_input_is_one_sample():
    x = np.zeros((4, 2), np.float32)
    x[1, 0] = x[3, 1] = 1
    c = count(_fanout3(), x, progress=False)
    assert c.samples == 1 and c.synapses["syn"].effective_acs == 6


@pytest.mark.parametrize("x,match", [
    (np.zeros((4, 1, 3), np.float32), r"does not fit the model input 'in': expected \[T, 2\]"),
    (np.zeros((4,), np.float32), r"does not fit the model input"),
    (np.zeros((0, 1, 2), np.float32), r"no steps or no samples"),
])
def test_mismatched_data_is_a_one_line_error(x, match):
    with pytest.raises(ValueError, match=match) as exc:
        count(_fanout3(), x, progress=False)
    assert "\n" not in str(exc.value)


def test_graphs_with_two_inputs_are_refused():
    g = Graph({"a": N.Input(shape=(2,)), "b": N.Input(shape=(2,)),
               "lif": N.LIF(beta=np.float32(0.5)), "out": N.Output()},
              [("a", "lif"), ("b", "lif"), ("lif", "out")]).validate()
    with pytest.raises(ValueError, match=r"one input, this one has \['a', 'b'\]"):
        count(g, np.zeros((3, 2), np.float32), progress=False)


def test_delayed_affine_equals_brute_force_and_its_nir_branches():
    """Effective counts of a random DelayedAffine: a loop over (t, b, o, i); and the same layer
    written as one Linear -> Delay branch per distinct delay (NIR's form, counted as Linear layers),
    on an input padded with silent steps so that no delayed operation falls after the run (the
    branch form does its operations before the delay, the DelayedAffine when the delay has passed)."""
    from neuro.graph import from_nir, to_nir

    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 4)).astype(np.float32) * (rng.random((5, 4)) < 0.7)
    d = rng.integers(0, 7, size=(5, 4))
    g = _chain(N.DelayedAffine(weight=w, delay=d, bias=np.zeros(5, np.float32)), 4)
    x = (rng.random((9, 3, 4)) < 0.4).astype(np.float32)
    x[:, 2] *= rng.random((9, 4)).astype(np.float32)  # sample 2 is real-valued: MACs
    c = count(g, x, progress=False).synapses["syn"]
    T, B = x.shape[:2]
    want = {True: 0, False: 0}
    for t in range(T):
        for b in range(B):
            for o in range(5):
                for i in range(4):
                    s = t - d[o, i]
                    if s >= 0 and w[o, i] != 0 and x[s, b, i] != 0:
                        want[bool(np.isin(x[s, b], (-1, 0, 1)).all())] += 1
    assert (c.effective_acs, c.effective_macs) == (want[True], want[False])
    assert want[True] > 0 and want[False] > 0
    nir_graph = to_nir(g)
    for node in nir_graph.nodes.values():
        node.metadata = {}
    branches = from_nir(nir_graph, dt=g.dt)
    assert {n.kind for n in branches.nodes.values()} >= {"Linear", "Delay"}
    padded = np.concatenate([x, np.zeros((int(d.max()), B, 4), np.float32)])
    cp = count(g, padded, progress=False).synapses["syn"]
    assert cp.effective_ops > c.effective_ops  # the padding lets late spikes reach every target
    cb = count(branches, padded, progress=False)
    assert sum(s.effective_acs for s in cb.synapses.values()) == cp.effective_acs
    assert sum(s.effective_macs for s in cb.synapses.values()) == cp.effective_macs


def test_conv2d_counts_by_hand():
    conv = N.Conv2d(weight=np.ones((1, 1, 2, 2), np.float32), bias=None)
    g = Graph({"in": N.Input(shape=(1, 3, 3)), "syn": conv,
               "lif": N.LIF(beta=np.float32(0.9), threshold=np.float32(100.0)), "out": N.Output()},
              [("in", "syn"), ("syn", "lif"), ("lif", "out")]).validate()
    x = np.zeros((1, 1, 1, 3, 3), np.float32)
    x[0, 0, 0, 1, 1] = 1  # the centre is under all 4 windows of the 2x2 output
    x[0, 0, 0, 0, 0] = 1  # a corner is under 1
    c = count(g, x, progress=False).synapses["syn"]
    assert c.effective_acs == 5 and c.dense_ops == 4 * 4


def test_integer_graph_counts_on_the_integer_executor():
    from neuro.graph import from_module
    from neuro.graph.quantize import quantize
    from neuro.models import SpikingMLP, SpikingMLPConfig

    g = from_module(SpikingMLP(SpikingMLPConfig(layers=[10, 8, 4])))
    x = (np.random.default_rng(0).random((50, 3, 10)) < 0.2).astype(np.float32)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    cf, cq = count(g, x, progress=False), count(q, x, progress=False)
    rf, rq = simulate(g, x, record=True), simulate(q, x, record=True)
    assert torch.equal(rf["1"].to(torch.int64), rq["1"])  # same hidden spikes ...
    assert cq.synapses == cf.synapses  # ... so the same synaptic operations
    assert cq.total("spikes") == cf.total("spikes") > 0


def test_sum_pooling_is_free_and_makes_the_next_layer_count_macs():
    """Input [1, 4, 4] spikes -> SumPool2d 2x2 -> Flatten -> Linear(4 -> 3): the pooled vector
    holds window sums; a step whose pooled vector has a value above 1 counts MACs."""
    rng = np.random.default_rng(0)
    x = (rng.random((6, 2, 1, 4, 4)) < 0.3).astype(np.float32)
    w = np.ones((3, 4), np.float32)
    g = Graph({"in": N.Input(shape=(1, 4, 4)), "pool": N.SumPool2d(kernel_size=(2, 2),
               stride=(2, 2)), "flat": N.Flatten(), "syn": N.Linear(weight=w),
               "lif": N.LIF(beta=np.float32(0.9), threshold=np.float32(100.0)), "out": N.Output()},
              [("in", "pool"), ("pool", "flat"), ("flat", "syn"), ("syn", "lif"), ("lif", "out")]
              ).validate()
    c = count(g, x, progress=False)
    pooled = x.reshape(6, 2, 1, 2, 2, 2, 2).sum(axis=(4, 6)).reshape(6, 2, 4)
    nz = (pooled != 0).sum(-1) * 3  # effective ops per (step, sample)
    binary = ((pooled == 0) | (pooled == 1)).all(-1)
    s = c.synapses["syn"]
    assert s.effective_acs == int(nz[binary].sum()) and s.effective_macs == int(nz[~binary].sum())
    assert s.effective_macs > 0 and s.dense_ops == 6 * 2 * 12
    assert set(c.synapses) == {"syn"}  # the pooling node is not a synapse layer
