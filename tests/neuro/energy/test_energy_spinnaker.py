"""Oracle: the SpiNNaker simulator's own counters equal the counts of the same integer graph run
on the reference executor (synaptic events = effective ACs, packets, neuron updates, spikes), and
the report takes its SpiNNaker counts from the simulator. ``neuro.hardware.spinnaker`` is imported
directly: a missing simulator fails."""
import json

import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.datasets import save_spikes
from neuro.energy import count, run
from neuro.graph import from_module
from neuro.hardware import spinnaker
from neuro.hardware.base import load_artifact_graph
from neuro.models import SpikingMLP, SpikingMLPConfig


def _model():
    torch.manual_seed(0)
    model = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 4]))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model


def test_simulator_counters_equal_the_reference_counts(tmp_path):
    graph = from_module(_model())
    x = (np.random.default_rng(0).random((40, 3, 12)) < 0.2).astype(np.float32)
    art = spinnaker.compile(graph, tmp_path / "art", calibration_inputs=x)
    stats = spinnaker.run(art, x).stats
    c = count(load_artifact_graph(art), x, progress=False)  # the integer graph the simulator runs
    assert c.total("spikes") > 0
    assert stats["synaptic_events"] == c.total("effective_acs") + c.total("effective_macs")
    assert stats["packets_sent"] - stats["delay_extension_packets"] == c.total("packets")
    assert stats["neuron_updates"] == c.total("updates")
    assert stats["spikes"] == c.total("spikes")


def test_report_uses_the_simulator(tmp_path):
    model = _model()
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name, config=model.config_dict())
    x = (np.random.default_rng(1).random((30, 2, 12)) < 0.2).astype(np.uint8)
    data = save_spikes(tmp_path / "x.npz", x)
    doc = json.loads(run(ckpt, data, tmp_path / "r", targets="spinnaker1", progress=False)["json"].read_text())
    t = doc["targets"]["spinnaker1"]
    assert t["count_source"] == "spinnaker simulator statistics"
    art = spinnaker.compile(from_module(model), tmp_path / "art", calibration_inputs=x.astype(np.float32))
    stats = spinnaker.run(art, x).stats
    assert t["events"]["acs"] + t["events"]["macs"] == pytest.approx(stats["synaptic_events"])
    assert t["events"]["packets"] == pytest.approx(stats["packets_sent"])
    assert t["events"]["hops"] == pytest.approx(stats["router_hops"])
