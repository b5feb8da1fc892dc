"""Every target of ``neuro.hardware.TARGETS`` runs every shared test network through the one
workflow (``check_target``: supports -> compile -> run -> compare) and keeps its promise: bit for bit
with the integer reference executor for quantized targets, the stated agreement for float ones.
A new target in the table is tested here with no new test code."""
from __future__ import annotations

import pytest

from neuro.hardware import TARGETS, get_backend
from neuro.hardware.base import check_target, runs_float

NETWORK_NAMES = ["delay", "feedforward", "lsm", "reservoir"]  # the ``networks`` fixture


@pytest.mark.parametrize("network", NETWORK_NAMES)
@pytest.mark.parametrize("target", list(TARGETS))
def test_target_runs_the_shared_network(target, network, networks, tmp_path):
    backend = get_backend(target)
    assert sorted(networks) == NETWORK_NAMES  # a new shared network is added to the list above
    graph, spikes = networks[network](T=60, B=2)
    assert backend.supports(graph) == []
    check = check_target(backend, graph, spikes, tmp_path / "artifact")
    comp = check.comparison
    assert comp.ok, comp.table()
    if not runs_float(backend):
        assert comp.identical and comp.threshold == 1.0
    assert comp.steps == 60 and comp.batch == 2
    assert comp.spike_count() > 0  # the networks are active: agreement on silence proves nothing
    assert (check.artifact / "manifest.json").is_file()
