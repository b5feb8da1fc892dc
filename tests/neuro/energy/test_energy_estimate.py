"""Energy per target: hand-computed energies, per-layer sums, SpiNNaker statistics (hand-made dict)."""
import numpy as np
import pytest

from neuro.energy import COMPONENTS, count, estimate, load_cost_table
from neuro.energy.estimate import UNATTRIBUTED
from neuro.graph import Graph
from neuro.graph import nodes as N

PJ = 1e-12


def _tiny():
    """in(2) -> Linear 3x2 of ones -> LIF(3, never fires); spikes at (t=1, ch 0) and (t=3, ch 1)."""
    g = Graph({"in": N.Input(shape=(2,)), "fc": N.Linear(weight=np.ones((3, 2), np.float32)),
               "lif": N.LIF(beta=np.float32(0.9), threshold=np.float32(5.0)), "out": N.Output()},
              [("in", "fc"), ("fc", "lif"), ("lif", "out")]).validate()
    x = np.zeros((4, 1, 2), np.float32)
    x[1, 0, 0] = x[3, 0, 1] = 1
    return count(g, x, progress=False)


def _spiking():
    rng = np.random.default_rng(0)
    g = Graph({"in": N.Input(shape=(6,)),
               "fc1": N.Affine(weight=rng.normal(size=(8, 6)).astype(np.float32), bias=np.zeros(8, np.float32)),
               "lif1": N.LIF(beta=np.float32(0.8), threshold=np.float32(0.5)),
               "fc2": N.Linear(weight=rng.normal(size=(3, 8)).astype(np.float32)),
               "lif2": N.LIF(beta=np.float32(0.8), threshold=np.float32(0.5)), "out": N.Output()},
              [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]).validate()
    return count(g, (rng.random((30, 3, 6)) < 0.3).astype(np.float32), progress=False)


def test_hand_computed_energies_of_a_tiny_run():
    c, t = _tiny(), load_cost_table().targets
    snn = estimate(c, t["snn-45nm"])
    assert snn.per_layer["fc"]["synaptic_ops"] == pytest.approx(6 * 0.9 * PJ)
    assert snn.per_layer["fc"]["weight_reads"] == pytest.approx(6 * 10 * PJ)
    assert snn.per_layer["lif"]["neuron_updates"] == pytest.approx(12 * 5.5 * PJ)
    ann = estimate(c, t["ann-45nm"])  # 4 steps x 6 connections, all MACs; 6 weights read per step
    assert ann.per_layer["fc"]["synaptic_ops"] == pytest.approx(24 * 4.6 * PJ)
    assert ann.per_layer["fc"]["weight_reads"] == pytest.approx(24 * 10 * PJ)
    assert ann.per_layer["lif"]["neuron_updates"] == pytest.approx(12 * 0.9 * PJ)
    loihi = estimate(c, t["loihi"])  # 9 active neuron-steps, 3 idle; 2 packets, 1 hop each
    assert loihi.per_layer["lif"]["neuron_updates"] == pytest.approx((9 * 52 + 3 * 1.7) * PJ)
    assert loihi.per_layer["in"]["spikes"] == pytest.approx(2 * 1.7 * PJ)
    assert loihi.per_layer["in"]["hops"] == pytest.approx(2 * 3.5 * PJ)
    assert loihi.per_layer["fc"]["synaptic_ops"] == pytest.approx(6 * 23.6 * PJ)
    assert any("hops estimated" in n for n in loihi.notes)
    sp1 = estimate(c, t["spinnaker1"])  # 0.5 W for 4 steps of 1 ms
    assert sp1.static_J == pytest.approx(0.5 * 4 * 1e-3)
    assert sp1.total_J == pytest.approx(sp1.dynamic_J + sp1.static_J)


@pytest.mark.parametrize("key", sorted(load_cost_table().targets))
def test_per_layer_energies_sum_to_the_total(key):
    c = _spiking()
    assert c.total("spikes") > 0
    e = estimate(c, load_cost_table().targets[key])
    layers = sum(sum(v.values()) for v in e.per_layer.values())
    assert layers == pytest.approx(e.dynamic_J, rel=1e-12) and e.dynamic_J > 0
    assert sum(e.components_J().values()) == pytest.approx(e.dynamic_J, rel=1e-12)
    assert e.total_J == pytest.approx(e.dynamic_J + e.static_J)
    assert set(e.per_layer) == set(c.synapses) | set(c.populations)
    assert all(set(v) == set(COMPONENTS) for v in e.per_layer.values())


def _stats(**kw):
    base = {"ticks": 30, "packets_sent": 500, "router_hops": 1500, "synaptic_rows_fetched": 400,
            "synaptic_events": 2000, "dropped_packets": 0, "neuron_updates": 990, "spikes": 300,
            "delay_extension_packets": 0, "routing_entries_per_chip": {"0,0": 3},
            "per_core": [{"core": 1}], "link_capacity_per_tick": 1}
    base.update(kw)
    return base


def test_spinnaker_statistics_replace_the_reference_counts():
    c = _spiking()
    t = load_cost_table().targets["spinnaker1"]
    e = estimate(c, t, _stats())
    tot = e.event_totals()
    assert tot["acs"] + tot["macs"] == pytest.approx(2000)
    assert tot["weight_reads"] == pytest.approx(2000)
    assert tot["active_updates"] + tot["idle_updates"] == pytest.approx(990)
    assert tot["packets"] == pytest.approx(500) and tot["hops"] == pytest.approx(1500)
    assert e.count_source == "spinnaker simulator statistics"
    # split across layers in proportion to the reference run
    ref_ops = {n: s.effective_ops for n, s in c.synapses.items()}
    share = ref_ops["fc1"] / sum(ref_ops.values())
    assert e.events["fc1"]["acs"] == pytest.approx(2000 * share)
    assert e.dynamic_J == pytest.approx(2000 * 8e-9 + 990 * 26e-9)
    assert sum(sum(v.values()) for v in e.per_layer.values()) == pytest.approx(e.dynamic_J)
    assert not any("dropped" in n for n in e.notes)
    assert not any("ticks" in n for n in estimate(c, t, _stats(ticks=90)).notes)  # 3 samples x 30 steps
    e2 = estimate(c, t, _stats(dropped_packets=7, ticks=96))
    assert any("dropped 7 packets" in n for n in e2.notes)
    assert any("96 ticks for 3 samples x 30 steps" in n for n in e2.notes)


def test_statistics_without_reference_events_go_to_an_unattributed_row():
    c = _tiny()
    for p in c.populations.values():
        p.packets = 0
    e = estimate(c, load_cost_table().targets["spinnaker2"], _stats(ticks=4))
    assert e.events[UNATTRIBUTED]["packets"] == 500 and e.events[UNATTRIBUTED]["hops"] == 1500
    assert sum(sum(v.values()) for v in e.per_layer.values()) == pytest.approx(e.dynamic_J)


@pytest.mark.parametrize("stats,match", [
    ({k: v for k, v in _stats().items() if k != "router_hops"}, r"spinnaker statistics: missing key 'router_hops'"),
    (_stats(synaptic_events=-1), r"'synaptic_events' must be a count >= 0"),
    (_stats(packets_sent="many"), r"'packets_sent' must be a count >= 0"),
    ([1, 2], r"must be a dict"),
])
def test_bad_statistics_are_one_line_errors(stats, match):
    with pytest.raises(ValueError, match=match) as exc:
        estimate(_tiny(), load_cost_table().targets["spinnaker1"], stats)
    assert "\n" not in str(exc.value)


def test_statistics_for_a_target_without_backend_are_refused():
    with pytest.raises(ValueError, match=r"target 'loihi' takes no backend statistics"):
        estimate(_tiny(), load_cost_table().targets["loihi"], _stats())
