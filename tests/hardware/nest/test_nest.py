"""The NEST target (no skip: the set-up installs nest-simulator and PyNN): spike-for-spike with the
float reference executor on the shared networks and the variants NEST expresses, every refusal
named, the standalone PyNN script, and threads."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from neuro.graph import Graph, nodes
from neuro.hardware import get_backend
from neuro.hardware.base import UnsupportedGraph, check_target, read_manifest

nest_backend = get_backend("nest")
from neuro.hardware.nest import mapping  # noqa: E402


def _exact(check):
    comp = check.comparison
    assert comp.identical, comp.table()
    for row in comp.rows:
        if row["spiking"]:
            assert row["reference"] > 0, f"{row['node']} is silent: agreement on silence proves nothing"
    return comp


@pytest.mark.parametrize("network", ["delay", "feedforward", "lsm", "reservoir"])
def test_shared_networks_spike_for_spike(network, networks, tmp_path):
    assert sorted(networks) == ["delay", "egru", "feedforward", "lsm", "reservoir",
                                "spikegpt"]  # EGRU, SpikeGPT: refused
    # (tests/hardware/test_every_target.py checks the reason)
    graph, spikes = networks[network](T=80, B=2)
    assert nest_backend.supports(graph) == []
    check = check_target(nest_backend, graph, spikes, tmp_path / "art")
    comp = _exact(check)
    assert comp.threshold == nest_backend.agreement == 1.0
    assert set(check.result.spikes) == {n for n, nd in graph.nodes.items() if nd.role == "neuron"}
    stats = check.result.stats
    assert stats["nest_simulate_seconds"] >= 0 and stats["nest_build_seconds"] > 0
    assert stats["threads"] == 1 and stats["connections"] > 0
    manifest = read_manifest(tmp_path / "art", "nest")
    assert manifest["number_format"] == "float32"
    assert {"nest/network.json", "nest/network.npz", "nest/run_pynn.py"} <= set(manifest["files"])


def test_variants_nest_expresses(networks, tmp_path):
    """Biases, refractory steps, decay_input, per-neuron beta in [0, 1], an IF population."""
    graph, spikes = networks["feedforward"](T=120, B=2, bias=True, weight_scale=4.0)
    graph.nodes["1"].refractory = 2
    graph.nodes["1"].beta = np.linspace(0.0, 1.0, 32).astype(np.float32)
    graph.nodes["3"] = nodes.IF(shape=(16,), beta=np.float32(1.0), threshold=np.float32(2.0),
                                reset="zero")
    assert nest_backend.supports(graph) == []
    _exact(check_target(nest_backend, graph, spikes))
    graph, spikes = networks["feedforward"](T=120, B=2, bias=True, weight_scale=12.0)
    graph.nodes["3"].decay_input = True
    _exact(check_target(nest_backend, graph, spikes))


def test_refusals_name_node_and_kind(networks):
    graph, _ = networks["feedforward"](T=10, B=1)
    graph.nodes["1"].v_reset = np.float32(-0.5)
    graph.nodes["3"] = nodes.CubaLIF(shape=(16,), alpha=np.float32(0.5), reset="zero")
    problems = nest_backend.supports(graph)
    assert any("'1' (LIF)" in p and "v_reset" in p for p in problems), problems
    assert any("'3' (CubaLIF)" in p for p in problems), problems
    # (subtractive reset runs through a NESTML model: tests/hardware/nest/test_nestml.py)
    with pytest.raises(UnsupportedGraph, match="CubaLIF"):
        nest_backend.compile(graph, "/nonexistent/never-written")

    graph, _ = networks["feedforward"](T=10, B=1)
    graph.nodes["3"] = nodes.EGRU.example()
    graph.nodes["1"].reset_timing = "deferred"
    problems = nest_backend.supports(graph)
    assert any("'3' (EGRU)" in p for p in problems) and any("deferred" in p for p in problems)


def _cycle_graph(delay_node: bool) -> Graph:
    """input -> a -> A -> b -> B -> c -> A: a loop through two populations (the reference delays
    every edge leaving a neuron inside a cycle by one step), optionally with a Delay node."""
    w = np.full((4, 4), 0.5, np.float32)
    wb = np.full((4, 4), 0.6, np.float32)
    wb[:, 3] = -0.7
    lif = lambda: nodes.LIF(shape=(4,), beta=np.float32(0.9), threshold=np.float32(1.0), reset="zero")  # noqa: E731
    ns = {"input": nodes.Input(shape=(4,)), "a": nodes.Linear(weight=w), "A": lif(),
          "b": nodes.Linear(weight=wb), "B": lif(), "c": nodes.Linear(weight=w), "out": nodes.Output()}
    edges = [("input", "a"), ("a", "A"), ("A", "b"), ("b", "B"), ("B", "c"), ("c", "A"), ("B", "out")]
    if delay_node:
        ns["d"] = nodes.Delay(delay=np.arange(4, dtype=np.int64))
        edges = [e for e in edges if e != ("B", "c")] + [("B", "d"), ("d", "c")]
    return Graph(ns, edges)


@pytest.mark.parametrize("delay_node", [False, True])
def test_loop_through_two_populations(delay_node):
    g = _cycle_graph(delay_node)
    assert nest_backend.supports(g) == []
    x = (np.random.default_rng(0).random((60, 2, 4)) < 0.4).astype(np.float32)
    _exact(check_target(nest_backend, g, x))


def test_quantized_graph_and_format_refused(networks):
    graph, _ = networks["feedforward"](T=10, B=1)
    assert any("'int8'" in p for p in nest_backend.supports(graph, "int8"))
    graph.metadata["format"] = {"name": "int8"}
    assert any("quantized" in p for p in nest_backend.supports(graph))


def test_beta_round_trip():
    """tau_m = -1/ln(beta) is nudged until NEST's exp(-1/tau_m) gives the float32 beta back; where
    no float64 tau_m does, the simulated beta is the nearest and the artifact says so."""
    rng = np.random.default_rng(0)
    betas = rng.random(2000).astype(np.float32).astype(np.float64)
    exact = 0
    for b in betas:
        tau, sim = mapping.tau_for_beta(b)
        assert math.exp(-1.0 / tau) == sim and abs(sim - b) <= 1e-15 * b  # a few float64 ulps, far below float32
        exact += sim == b
    assert exact / len(betas) > 0.75
    assert mapping.tau_for_beta(1.0)[1] == 1.0 and mapping.tau_for_beta(0.0)[1] == 0.0
    assert math.exp(-1.0 / mapping.tau_for_beta(float(np.float32(0.9)))[0]) == float(np.float32(0.9))


def test_pynn_script_runs_standalone(networks, tmp_path):
    graph, spikes = networks["delay"](T=60, B=2)
    art = nest_backend.compile(graph, tmp_path / "art")
    result = nest_backend.run(art, spikes)
    np.savez(tmp_path / "in.npz", spikes=spikes)
    script = tmp_path / "copy"  # the nest/ folder alone, away from the artifact and from neuro
    script.mkdir()
    for f in ("run_pynn.py", "network.json", "network.npz"):
        (script / f).write_bytes((art / "nest" / f).read_bytes())
    proc = subprocess.run([sys.executable, str(script / "run_pynn.py"), "--input", str(tmp_path / "in.npz"),
                           "--out", str(tmp_path / "out.npz")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    timing = json.loads(proc.stdout.strip().splitlines()[-1])
    assert timing["steps"] == 60 and timing["batch"] == 2
    with np.load(tmp_path / "out.npz") as f:
        assert sorted(f.files) == ["2", "6"]
        for n in f.files:
            np.testing.assert_array_equal(f[n], result.spikes[n])
    # rank/thread-agnostic building: the same script on 2 threads gives the same spikes
    proc = subprocess.run([sys.executable, str(script / "run_pynn.py"), "--input", str(tmp_path / "in.npz"),
                           "--out", str(tmp_path / "out2.npz"), "--threads", "2"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp_path / "out2.npz") as f:
        for n in f.files:
            np.testing.assert_array_equal(f[n], result.spikes[n])
    text = (script / "run_pynn.py").read_text()
    assert "spike_precision" in text and "variable_map" in text and "FromListConnector" in text


def test_two_threads_same_spikes(networks, tmp_path):
    graph, spikes = networks["reservoir"](T=80, B=2)
    art = nest_backend.compile(graph, tmp_path / "art")
    one = nest_backend.run(art, spikes, threads=1)
    two = nest_backend.run(art, spikes, threads=2)
    assert two.stats["threads"] == 2
    for n in one.spikes:
        np.testing.assert_array_equal(one.spikes[n], two.spikes[n])
    with pytest.raises(ValueError, match="threads"):
        nest_backend.run(art, spikes, threads=0)


def test_probe_and_binary_inputs(networks, tmp_path):
    info = nest_backend.probe()
    assert info["nest"].startswith("3.10")
    graph, spikes = networks["feedforward"](T=10, B=1)
    art = nest_backend.compile(graph, tmp_path / "art")
    with pytest.raises(ValueError, match="spikes must be 0 or 1"):
        nest_backend.run(art, spikes * 2)


def test_pynn_script_map_only(networks, tmp_path):
    """``--map-only`` (sPyNNaker's virtual board: benchmarks/spynnaker_mapping.py) builds and runs
    the network, reads nothing back and writes no output; without it ``--out`` is required."""
    graph, spikes = networks["feedforward"](T=20, B=1)
    art = nest_backend.compile(graph, tmp_path / "art")
    np.savez(tmp_path / "in.npz", spikes=spikes)
    script = str(art / "nest" / "run_pynn.py")
    proc = subprocess.run([sys.executable, script, "--input", str(tmp_path / "in.npz"), "--map-only"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["map_only"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "in.npz"]
    proc = subprocess.run([sys.executable, script, "--input", str(tmp_path / "in.npz")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "--out is required" in proc.stderr
