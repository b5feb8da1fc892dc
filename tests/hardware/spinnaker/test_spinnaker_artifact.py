"""The artifact: files, manifest, reader (the program it runs equals the compiler's), tampering."""
import json

import numpy as np
import pytest

from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.hardware.base import ArtifactError, read_manifest
from neuro.hardware.spinnaker.artifact import DATA_FILES


@pytest.fixture
def compiled(networks, tmp_path, small_machine):
    g, x = networks["delay"](T=50, max_delay=41)
    q = quantize(g, "spinnaker", calibration_inputs=x)
    return q, x, spinnaker.compile(q, tmp_path / "art", machine=small_machine), small_machine


def test_files_and_manifest(compiled):
    q, x, art, machine = compiled
    m = read_manifest(art, "spinnaker")
    assert m["number_format"] == "spinnaker" and m["graph_digest"] == q.digest()
    for f in (*DATA_FILES, "summary.txt", "graph/graph.json"):
        assert f in m["files"] and (art / f).is_file()
    info = m["target_info"]
    assert info["machine"] == machine.to_dict() and info["delay_extensions"] > 0
    assert set(m["sha256"]) >= {*DATA_FILES, "summary.txt", "graph/graph.json"}
    placement = json.loads((art / "placement.json").read_text())
    assert [p["name"] for p in placement["populations"]] == ["input", "2", "6", "9"]
    text = (art / "summary.txt").read_text()
    for word in ("populations:", "delay extension of vertex", "router tables", "key 0x"):
        assert word in text


def test_reader_gives_the_compiled_program(compiled):
    q, x, art, machine = compiled
    direct = spinnaker.build_program(spinnaker.map_network(spinnaker.from_graph(q), machine))
    loaded = spinnaker.build_program(spinnaker.load_mapping(art))
    for a, b in zip(direct.arrays(), loaded.arrays()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert direct.scalars() == loaded.scalars()


@pytest.mark.parametrize("victim", ["synapses.npz", "placement.json", "routing.npz"])
def test_modified_files_are_refused(compiled, victim):
    q, x, art, _ = compiled
    path = art / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{victim}: does not match the manifest's digest"):
        spinnaker.run(art, x)


def test_recompile_replaces_the_artifact(compiled, networks):
    q, x, art, machine = compiled
    before = (art / "synapses.npz").read_bytes()
    spinnaker.compile(q, art)  # default machine: another placement
    assert read_manifest(art)["target_info"]["machine"] == spinnaker.Machine().to_dict()
    assert (art / "synapses.npz").read_bytes() != before
