"""Run statistics: exact keys, and counts checked against an independent count from the
reference executor's spikes and the weight matrices (the simulator is event-driven: its work is
spikes x fan-out, plus the neuron update)."""
import numpy as np
import pytest

from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.hardware.base import as_int_spikes, reference

KEYS = {"ticks", "packets_sent", "router_hops", "synaptic_rows_fetched", "synaptic_events",
        "dropped_packets", "neuron_updates", "spikes", "delay_extension_packets",
        "routing_entries_per_chip", "per_core", "link_capacity_per_tick"}


@pytest.fixture
def feedforward(networks, tmp_path):
    g, x = networks["feedforward"](T=300, B=2)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    return q, x


@pytest.mark.parametrize("npc", [256, 8])
def test_counts_match_an_independent_count(feedforward, tmp_path, npc):
    q, x = feedforward
    machine = spinnaker.Machine(neurons_per_core=npc, cores_per_chip=4, width=4, height=4)
    art = spinnaker.compile(q, tmp_path / "art", machine=machine)
    res = spinnaker.run(art, x)
    st = res.stats
    assert set(st) == KEYS
    ref = reference(q, as_int_spikes(q, x))
    T, B = x.shape[:2]
    layers = [("input", "0", "1"), ("1", "2", "3"), ("3", "4", "5")]  # (source, synapse, target)
    packets = events = rows = 0
    for src, syn, _ in layers:
        s = ref[src]  # [T, B, n_src] spikes of the source
        nz = np.asarray(q.nodes[syn].weight) != 0  # [out, in]
        packets += int(s.sum())
        events += int((s.sum((0, 1)) * nz.sum(0)).sum())  # each spike x its fan-out
        slices = [nz[i:i + npc].any(0) for i in range(0, nz.shape[0], npc)]  # per target core
        rows += int((s.sum((0, 1)) * np.sum(slices, 0)).sum())
    assert st["packets_sent"] == packets
    assert st["synaptic_events"] == events
    assert st["synaptic_rows_fetched"] == rows
    assert st["spikes"] == int(ref["1"].sum() + ref["3"].sum())
    assert st["neuron_updates"] == (32 + 16 + 5) * T * B
    assert st["ticks"] == B * (T + 3)  # three layers: three ticks of latency
    assert st["dropped_packets"] == 0 and st["delay_extension_packets"] == 0
    assert st["link_capacity_per_tick"] == machine.link_capacity_per_tick
    assert sum(c["synaptic_events"] for c in st["per_core"]) == events
    assert all(c["neurons"] <= npc for c in st["per_core"])
    assert {c["population"] for c in st["per_core"]} == {"input", "1", "3", "5"}
    if npc == 256:  # everything on chip (0, 0): no link traversed
        assert st["router_hops"] == 0 and list(st["routing_entries_per_chip"]) == ["0,0"]
    else:
        assert st["router_hops"] > 0


def test_no_input_no_events(feedforward, tmp_path):
    q, x = feedforward
    art = spinnaker.compile(q, tmp_path / "art")
    st = spinnaker.run(art, np.zeros_like(x)).stats
    assert st["packets_sent"] == st["synaptic_events"] == st["spikes"] == st["router_hops"] == 0
    assert st["neuron_updates"] == (32 + 16 + 5) * x.shape[0] * x.shape[1]


def test_work_grows_with_spikes_not_neurons(feedforward, tmp_path):
    """Doubling the input rate roughly doubles the events; the count per input spike is fixed."""
    q, _ = feedforward
    art = spinnaker.compile(q, tmp_path / "art")
    rng = np.random.default_rng(0)
    ev = []
    for rate in (0.02, 0.04):
        x = (rng.random((400, 1, 20)) < rate).astype(np.int64)
        st = spinnaker.run(art, x).stats
        w = np.asarray(q.nodes["0"].weight) != 0
        assert st["synaptic_events"] >= int((x.sum((0, 1)) * w.sum(0)).sum())
        ev.append(st["synaptic_events"] / max(1, st["packets_sent"]))
    assert 0.5 < ev[1] / ev[0] < 2.0  # events per packet ~ fan-out, independent of the rate
