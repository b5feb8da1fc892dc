"""Every target of ``neuro.hardware.TARGETS`` runs every shared test network through the one
workflow (``check_target``: supports -> compile -> run -> compare) and keeps its promise: bit for bit
with the integer reference executor for quantized targets, the stated agreement for float ones.
A new target in the table is tested here with no new test code. A target that cannot run a
network (EGRU on Loihi and NEST) must refuse it in ``supports`` naming every node and why
(``REFUSED``)."""
from __future__ import annotations

import pytest

from neuro.hardware import TARGETS, get_backend
from neuro.hardware.base import (
    ArtifactError,
    check_target,
    read_manifest,
    runs_float,
    unlisted_files,
)

NETWORK_NAMES = ["delay", "egru", "feedforward", "lsm", "reservoir", "spikegpt"]  # ``networks``
#: (target, network) pairs the target refuses, with the words its reason must contain
REFUSED = {
    ("loihi", "egru"): ("no Lava process implements EGRU", "multiply", "graded"),
    ("nest", "egru"): ("no mapping for kind EGRU", "multiplicative gates", "graded"),
}
#: pairs refused for several reasons (one per node kind): (node kind, words of its reason)
REFUSED_KINDS = {
    ("loihi", "spikegpt"): {"WKV": ("no Lava process implements WKV", "exp"),
                            "LayerNorm": ("no Lava process implements LayerNorm", "square root"),
                            "Embedding": ("no Lava process implements Embedding",)},
    ("spinnaker", "spikegpt"): {"WKV": ("the SpiNNaker simulator runs",),
                                "LayerNorm": ("the SpiNNaker simulator runs",),
                                "Gate": ("the SpiNNaker simulator runs",)},
    ("nest", "spikegpt"): {"WKV": ("no mapping for kind WKV",),
                           "LayerNorm": ("no mapping for kind LayerNorm",)},
}
PAIRS = [(t, n) for t in TARGETS for n in NETWORK_NAMES]


@pytest.mark.parametrize("target,network",
                         [p for p in PAIRS if p not in REFUSED and p not in REFUSED_KINDS])
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
    art = check.artifact
    # the manifest lists every file compile wrote, and running wrote nothing into the artifact
    assert unlisted_files(art, read_manifest(art)) == []
    (art / "graph" / "extra.npz").write_bytes(b"added later")
    with pytest.raises(ArtifactError, match="file 'graph/extra.npz' is not listed in manifest.json"):
        backend.run(art, spikes)


@pytest.mark.parametrize("target,network", sorted(REFUSED))
def test_target_refuses_the_shared_network_with_reasons(target, network, networks):
    graph, _ = networks[network](T=10, B=1)
    problems = get_backend(target).supports(graph)
    kinds = {node.kind for node in graph.nodes.values()}
    assert problems, f"{target} now supports {network}: move the pair out of REFUSED"
    for p in problems:  # every problem names a node of the network and says why
        assert p.startswith("node '") and any(f"({k})" in p for k in kinds), p
    for word in REFUSED[(target, network)]:
        assert all(word in p for p in problems), (word, problems)


@pytest.mark.parametrize("target,network", sorted(REFUSED_KINDS))
def test_target_refuses_each_node_kind_by_name(target, network, networks, tmp_path):
    graph, spikes = networks[network](T=10, B=1)
    backend = get_backend(target)
    problems = backend.supports(graph)
    assert problems, f"{target} now supports {network}: move the pair out of REFUSED_KINDS"
    for kind, words in REFUSED_KINDS[(target, network)].items():
        named = [p for p in problems if p.startswith("node '") and f"({kind})" in p]
        assert named and all(w in p for p in named for w in words), (kind, words, problems)
    with pytest.raises(Exception, match="cannot"):  # compile refuses too (UnsupportedGraph)
        check_target(backend, graph, spikes, tmp_path / "a")
