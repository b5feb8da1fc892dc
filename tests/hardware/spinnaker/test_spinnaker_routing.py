"""Machine geometry, keys, router tables with default routing, the router, link capacity."""
import numpy as np
import pytest

from neuro.hardware.spinnaker import (
    Machine,
    Network,
    Population,
    Projection,
    map_network,
    run_mapping,
)
from neuro.hardware.spinnaker.machine import DIRECTIONS
from neuro.hardware.spinnaker.placement import Vertex
from neuro.hardware.spinnaker.program import build_program
from neuro.hardware.spinnaker.routing import LINK_BITS, allocate_keys, walk

W = 1024  # weight = threshold: a target neuron spikes exactly when its input spikes


def _relay(n_atoms: int, fillers: int, machine: Machine, targets: int = 1) -> Network:
    """input -> target(s) one-to-one, with unconnected filler populations placed in between."""
    pops = [Population("input", n_atoms, "source")]
    pops += [Population(f"fill{i}", n_atoms, "LIF", vth=W) for i in range(fillers)]
    pops += [Population(f"tgt{i}", n_atoms, "LIF", vth=W, beta_m=1 << 15) for i in range(targets)]
    projs = [Projection(f"p{i}", "input", f"tgt{i}", np.arange(n_atoms), np.arange(n_atoms),
                        np.full(n_atoms, W)) for i in range(targets)]
    return Network(pops, projs)


def test_geometry():
    m = Machine(width=4, height=3)
    for d in range(len(DIRECTIONS)):
        back = m.neighbour(m.neighbour(5, d), (d + 3) % 6)
        assert back == 5
    assert m.neighbour(m.chip_index(3, 2), 0) == m.chip_index(0, 2)  # wraps around the torus
    assert m.max_delay == 16 * 9
    with pytest.raises(ValueError, match="neurons_per_core must be an integer in"):
        Machine(neurons_per_core=4096)


def test_straight_line_uses_default_routing():
    m = Machine(width=6, height=1, cores_per_chip=1, neurons_per_core=4)
    mapping = map_network(_relay(4, fillers=2, machine=m), m)  # input on chip 0, target on chip 3
    entries = {m.chip_xy(c): len(t) for c, t in mapping.tables.items()}
    assert entries == {(0, 0): 1, (3, 0): 1}  # chips 1 and 2 pass packets straight on
    src = mapping.vertices[0]
    links, cores = walk(mapping.tables, m, 0, src.key)
    assert [link for link, _ in links] == [0 * 6 + 0, 1 * 6 + 0, 2 * 6 + 0]  # east, east, east
    assert cores == [(3, 2)]  # chip 3's only core, reached through the third link
    x = np.zeros((10, 1, 4), np.int64)
    x[2, 0, 1] = x[5, 0, 3] = 1
    res = run_mapping(mapping, {"input": x})
    assert res.stats["router_hops"] == 3 * 2 and res.stats["packets_sent"] == 2
    assert res.stats["routing_entries_per_chip"] == {"0,0": 1, "3,0": 1}
    assert np.array_equal(res.spikes["tgt0"], x)  # aligned with the reference step


def test_keys_are_aligned_blocks():
    vs = [Vertex(i, "neurons", "p", 0, n) for i, n in enumerate([3, 256, 1, 17])]
    allocate_keys(vs, {0, 1, 2, 3})
    for v in vs:
        block = (~v.mask & 0xFFFFFFFF) + 1
        assert block >= v.n and v.key % block == 0
    spans = sorted((v.key, v.key + (~v.mask & 0xFFFFFFFF)) for v in vs)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # no overlap


def test_link_capacity_drops_packets():
    m = Machine(width=3, height=3, cores_per_chip=1, neurons_per_core=4, link_capacity_per_tick=2)
    mapping = map_network(_relay(4, fillers=1, machine=m, targets=2), m)
    x = np.ones((20, 1, 4), np.int64)  # 4 packets per tick, links carry 2
    res = run_mapping(mapping, {"input": x}, engine="numpy")
    cpp = run_mapping(mapping, {"input": x}, engine="cpp")
    assert res.stats == cpp.stats
    links, cores = walk(mapping.tables, m, 0, mapping.vertices[0].key)
    first = sum(1 for _, parent in links if parent < 0)
    assert res.stats["dropped_packets"] == 20 * 2 * first
    for t in ("tgt0", "tgt1"):  # off chip (0, 0): only the first two atoms' packets arrive
        assert res.spikes[t][:, 0, :2].all() and not res.spikes[t][:, 0, 2:].any()
    unlimited = run_mapping(map_network(_relay(4, 1, m, 2), Machine(
        width=3, height=3, cores_per_chip=1, neurons_per_core=4, link_capacity_per_tick=None)),
        {"input": x})
    assert unlimited.stats["dropped_packets"] == 0 and unlimited.spikes["tgt1"].all()


def test_router_errors():
    m = Machine(width=3, height=1, cores_per_chip=1)
    loop = {0: np.array([[0, 0xFFFFFF00, 1 << 0]], np.uint32),  # east
            1: np.array([[0, 0xFFFFFF00, 1 << 0]], np.uint32),
            2: np.array([[0, 0xFFFFFF00, 1 << 0]], np.uint32)}
    with pytest.raises(ValueError, match="routing loop"):
        walk(loop, m, 0, 5)
    with pytest.raises(ValueError, match="no router entry on its source chip"):
        walk({}, m, 0, 5)
    lost = {0: np.array([[0, 0xFFFFFF00, 1 << 0]], np.uint32)}  # default-routed around the ring
    with pytest.raises(ValueError, match="routing loop"):
        walk(lost, m, 0, 5)
    ok = {0: np.array([[0, 0xFFFFFF00, 1 << (LINK_BITS + 0)]], np.uint32)}
    assert walk(ok, m, 0, 5) == ([], [(0, -1)])


def test_program_checks_the_tables_deliver():
    m = Machine(width=6, height=1, cores_per_chip=1, neurons_per_core=4)
    mapping = map_network(_relay(4, fillers=2, machine=m), m)
    del mapping.tables[3]  # the target chip's entry: the packet would go round the ring
    with pytest.raises(ValueError, match="routing loop|do not deliver"):
        build_program(mapping)
