"""Subtractive reset on NEST through the NESTML model ``neuro_lif_subtract_neuron`` (no skip: the
set-up installs nestml and the Boost/libltdl headers and builds the module once,
``python -m neuro.hardware.nest.nestml_models``; a missing module is built here, about a minute).

Oracle: neuro's float reference executor, spike for spike, on the shared networks with every LIF
switched to ``reset="subtract"`` (integer delays, recurrence, the LSM), and on the variants the model
expresses (bias, refractory steps, per-neuron beta in [0, 1], an IF population, decay_input)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from neuro.graph import nodes
from neuro.hardware import get_backend
from neuro.hardware.base import check_target, float_reference, read_manifest
from neuro.hardware.nest import mapping, nestml_models

nest_backend = get_backend("nest")


@pytest.fixture(scope="module")
def module() -> nestml_models.Module:
    return nestml_models.build_module()  # cached: ~/.cache/neuro/nest (or $NEURO_NEST_CACHE)


def _subtract(graph):
    count = 0
    for node in graph.nodes.values():
        if node.kind in ("LIF", "IF"):
            node.reset = "subtract"
            count += 1
    assert count > 0
    return graph


def _exact(check):
    comp = check.comparison
    assert comp.identical, comp.table()
    for row in comp.rows:
        if row["spiking"]:
            assert row["reference"] > 0, f"{row['node']} is silent: agreement on silence proves nothing"
    assert "neuro_lif_subtract_neuron" in check.result.stats["simulator"]
    return comp


@pytest.mark.parametrize("network", ["delay", "feedforward", "reservoir", "lsm"])
def test_subtract_reset_spike_for_spike(network, networks, module, tmp_path):
    graph, spikes = networks[network](T=100, B=2)
    zero = float_reference(graph, {graph.inputs()[0]: spikes})
    _subtract(graph)
    assert nest_backend.supports(graph) == []
    sub = float_reference(graph, {graph.inputs()[0]: spikes})
    # the reset matters on this input: iaf_psc_delta (zero reset) could not have passed
    assert any(not np.array_equal(zero[n], sub[n]) for n, nd in graph.nodes.items()
               if nd.kind in ("LIF", "IF"))
    check = check_target(nest_backend, graph, spikes, tmp_path / "art")
    _exact(check)
    manifest = read_manifest(tmp_path / "art", "nest")
    assert manifest["target_info"]["neuron_models"] == ["neuro_lif_subtract_neuron"]
    assert "nest/neuro_lif_subtract_neuron.nestml" in manifest["files"]
    text = (tmp_path / "art" / "nest" / "neuro_lif_subtract_neuron.nestml").read_text()
    assert text == nestml_models.MODELS["neuro_lif_subtract_neuron"]
    if network == "reservoir":  # the module under 2 OpenMP threads: the same spikes
        two = nest_backend.run(tmp_path / "art", spikes, threads=2)
        assert two.stats["threads"] == 2
        for n, s in check.result.spikes.items():
            np.testing.assert_array_equal(two.spikes[n], s)


def test_subtract_variants(networks, module):
    """Bias, refractory steps (held membrane, dropped input), per-neuron beta in [0, 1] (0 and 1
    included), an IF population, decay_input; a zero-reset population beside the NESTML ones."""
    graph, spikes = networks["feedforward"](T=120, B=2, bias=True, weight_scale=4.0)
    _subtract(graph)
    graph.nodes["1"].refractory = 2
    graph.nodes["1"].beta = np.linspace(0.0, 1.0, 32).astype(np.float32)
    graph.nodes["3"] = nodes.IF(shape=(16,), beta=np.float32(1.0), threshold=np.float32(2.0),
                                reset="subtract")
    assert nest_backend.supports(graph) == []
    _exact(check_target(nest_backend, graph, spikes))
    graph, spikes = networks["feedforward"](T=120, B=2, bias=True, weight_scale=12.0)
    _subtract(graph)
    graph.nodes["3"].decay_input = True
    graph.nodes["1"].reset = "zero"  # iaf_psc_delta feeding the NESTML population
    net, _ = mapping.network(mapping.plan(graph))
    assert [p["model"] for p in net["populations"]] == ["iaf_psc_delta", "neuro_lif_subtract_neuron"]
    _exact(check_target(nest_backend, graph, spikes))


def test_pynn_script_with_nestml_module(networks, module, tmp_path):
    graph, spikes = _subtract(networks["delay"](T=60, B=2)[0]), networks["delay"](T=60, B=2)[1]
    graph.nodes["2"].refractory = 1
    art = nest_backend.compile(graph, tmp_path / "art")
    result = nest_backend.run(art, spikes)
    np.savez(tmp_path / "in.npz", spikes=spikes)
    script = art / "nest" / "run_pynn.py"
    base = [sys.executable, str(script), "--input", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz")]
    proc = subprocess.run(base, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "--nest-module" in proc.stderr  # the module is required, by name
    proc = subprocess.run(base + ["--nest-module", f"{module.path}.so"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["steps"] == 60
    with np.load(tmp_path / "o.npz") as f:
        assert sorted(f.files) == ["2", "6"]
        for n in f.files:
            assert f[n].sum() > 0
            np.testing.assert_array_equal(f[n], result.spikes[n])


def test_module_cache(module):
    """Keyed by model text + NEST + NESTML versions + flags; a second call returns the cached module."""
    assert module.path.with_suffix(".so").is_file()
    info = json.loads((module.path.parent / "module.json").read_text())
    assert info["nest"] == "3.10.0" and info["nestml"] == "9.0.0"
    assert info["module"] == module.name == nestml_models.module_name(module.path.parent.name)
    assert "-D_GLIBCXX_USE_CXX11_ABI=0" in info["cflags"]  # the manylinux wheel's std::string ABI
    assert nestml_models.build_module() == module
    assert nestml_models.missing() == []


def test_missing_tools_are_named(networks, monkeypatch, tmp_path):
    """Without NESTML or a compiler, supports() names what is missing and build_module refuses."""
    monkeypatch.setenv(nestml_models.ENV_CACHE, str(tmp_path / "empty-cache"))
    real = nestml_models.probe(sys.executable)
    monkeypatch.setattr(nestml_models, "probe", lambda python: dict(real, nestml=None))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    graph, _ = networks["feedforward"](T=10, B=1)
    _subtract(graph)
    problems = nest_backend.supports(graph)
    assert any("'1' (LIF)" in p and "subtract" in p and "nestml==9.0.0" in p and "no-such-g++" in p
               for p in problems), problems
    with pytest.raises(nestml_models.NestmlBuildError, match="NESTML is not installed"):
        nestml_models.build_module()
    graph.nodes["1"].reset_timing = "deferred"  # never expressible, NESTML or not
    monkeypatch.undo()
    assert any("deferred" in p for p in nest_backend.supports(graph))


@pytest.mark.slow
def test_fresh_build_from_scratch(monkeypatch, tmp_path):
    """The whole recipe into an empty cache (NESTML code generation, compile, load test): about
    40 s of CPU, 50-100 s on 2 shared cores; the set-up does this once, so the tests above find
    the module cached."""
    monkeypatch.setenv(nestml_models.ENV_CACHE, str(tmp_path))
    m = nestml_models.build_module()
    assert m.path.parent.parent == tmp_path and m.path.with_suffix(".so").is_file()
    assert not list(tmp_path.glob(".build-*"))  # the work folder is gone, only the module stays
    out = subprocess.run([sys.executable, "-c", "import nest, sys; nest.Install(sys.argv[1]); "
                          "n = nest.Create('neuro_lif_subtract_neuron'); print(sorted(n.get().keys()))",
                          str(m.path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'refr_steps'" in out.stdout and "'V_th'" in out.stdout and "'tau_m'" in out.stdout
