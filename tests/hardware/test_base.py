"""The backend protocol's shared parts: artifacts, input checks, comparison (no backend needed)."""
import json

import numpy as np
import pytest

from neuro.graph.quantize import quantize
from neuro.hardware import get_backend
from neuro.hardware.base import (
    ArtifactError,
    Result,
    UnsupportedGraph,
    as_int_spikes,
    compare,
    load_artifact_graph,
    prepare_graph,
    read_manifest,
    reference,
    write_artifact,
)


def test_artifact_roundtrip_and_tamper_detection(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    out = write_artifact(tmp_path / "art", target="fake", graph=q,
                         write_files=lambda d: ((d / "data.txt").write_text("x"), {"data.txt": "test"})[1])
    m = read_manifest(out, "fake")
    assert m["number_format"] == "int8" and m["graph_digest"] == q.digest()
    assert set(m["files"]) == {"graph/graph.json", "graph/arrays.npz", "data.txt"}
    assert load_artifact_graph(out).equals(q)
    with pytest.raises(ArtifactError, match="for target 'fake', not 'loihi'"):
        read_manifest(out, "loihi")
    (out / "data.txt").unlink()
    with pytest.raises(ArtifactError, match="'data.txt' listed in manifest.json is missing"):
        read_manifest(out)


def test_failed_write_leaves_nothing(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)

    def boom(d):
        (d / "partial").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "art", target="fake", graph=q, write_files=boom)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("user data")
    with pytest.raises(ArtifactError, match="not a neuro artifact"):
        write_artifact(tmp_path / "keep", target="fake", graph=q, write_files=lambda d: {})


def test_prepare_graph_lists_problems_and_quantizes(networks):
    g, x = networks["feedforward"](T=20)
    with pytest.raises(UnsupportedGraph, match="a; b"):
        prepare_graph("fake", ("int8",), g, None, x, lambda graph, fmt: ["a", "b"])
    q = prepare_graph("fake", ("int8", "int16"), g, None, x, lambda graph, fmt: [])
    assert q.metadata["format"]["name"] == "int8"
    with pytest.raises(UnsupportedGraph, match="quantized to 'int8', not 'int16'"):
        prepare_graph("fake", ("int8", "int16"), q, "int16", x, lambda graph, fmt: [])


def test_compare_names_first_divergence(networks):
    g, x = networks["feedforward"](T=30)
    q = quantize(g, "int16", calibration_inputs=x)
    spikes = as_int_spikes(q, x)
    ref = reference(q, spikes)
    same = Result({"1": ref["1"].copy()}, {"output": ref["output"].copy()})
    assert compare("fake", q, same, ref).identical
    bad = ref["1"].copy()
    bad[7, 1, 3] ^= 1
    c = compare("fake", q, Result({"1": bad}, {}), ref)
    assert not c.identical and c.rows[0]["first_divergence"] == 7
    assert "MISMATCH" in c.table()
    json.dumps(c.as_dict())


def test_input_checks():
    from neuro.graph import Graph, nodes

    g = Graph({"in": nodes.Input(shape=(3,)), "out": nodes.Output()}, [("in", "out")]).validate()
    assert as_int_spikes(g, np.zeros((5, 3)))["in"].shape == (5, 1, 3)
    with pytest.raises(ValueError, match=r"expected \[T, 3\] or \[T, B, 3\]"):
        as_int_spikes(g, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="holds the value 0.5"):
        as_int_spikes(g, np.full((5, 3), 0.5))


@pytest.mark.parametrize("x, message", [
    (np.full((4, 3), 2**64 - 1, np.uint64), "values up to 18446744073709551615"),  # wrapped to -1
    (np.full((4, 3), 256, np.int64), "values up to 256"),  # would wrap to 0 in uint8
    (np.full((4, 3), 1e30), "values up to 1e"),
    (np.ones((4, 3), np.complex64), "dtype complex64 is not allowed"),
    (np.array([[np.nan, 0, 1]]), "NaN or infinite"),
    (np.full((4, 3), -1, np.int8), "negative values"),
    (np.zeros((0, 3)), "T = 0"),
    (np.zeros((4, 0, 3)), "B = 0"),
    (np.array([["a", "b", "c"]]), "dtype <U1 is not allowed"),
])
def test_one_validator_refuses_what_a_target_would_wrap(x, message):
    """The values that used to reach the targets wrapped or rounded (issue 19) are refused by
    the one validator every backend's run goes through."""
    from neuro.graph import Graph, nodes

    g = Graph({"in": nodes.Input(shape=(3,)), "out": nodes.Output()}, [("in", "out")]).validate()
    with pytest.raises(ValueError, match=message):
        as_int_spikes(g, x)
    with pytest.raises(ValueError, match="values up to 2; spikes must be 0 or 1"):
        as_int_spikes(g, np.full((4, 3), 2), max_count=1)


def test_every_file_is_digested_and_checked(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    out = write_artifact(tmp_path / "art", target="fake", graph=q,
                         write_files=lambda d: ((d / "data.bin").write_bytes(b"\0" * 64),
                                                {"data.bin": "test"})[1])
    m = read_manifest(out)
    assert set(m["sha256"]) == {"graph/graph.json", "graph/arrays.npz", "data.bin"}
    (out / "data.bin").write_bytes(b"\1" + b"\0" * 63)
    with pytest.raises(ArtifactError, match="data.bin: does not match the manifest's digest"):
        read_manifest(out)


def test_files_the_manifest_does_not_list_are_refused(networks, tmp_path):
    """Anything added to an artifact (a file, a nested file, a symlink, a FIFO) is refused by
    name; an empty folder is harmless. The SHA-256 of every listed file is still checked."""
    import os

    from neuro.hardware.base import unlisted_files

    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    out = write_artifact(tmp_path / "art", target="fake", graph=q,
                         write_files=lambda d: ((d / "sub").mkdir(), (d / "sub" / "a.bin").write_bytes(
                             b"a"), {"sub/a.bin": "test"})[2])
    (out / "empty").mkdir()
    assert unlisted_files(out, read_manifest(out)) == []
    for extra, make in (("sub/b.bin", lambda p: p.write_bytes(b"b")),
                        ("graph/extra.json", lambda p: p.write_text("{}")),
                        ("link", lambda p: p.symlink_to(out / "sub")),
                        ("fifo", lambda p: os.mkfifo(p))):
        make(out / extra)
        with pytest.raises(ArtifactError, match=rf"file '{extra}' is not listed in manifest.json"):
            read_manifest(out)
        (out / extra).unlink()
    assert read_manifest(out)["target"] == "fake"


@pytest.mark.parametrize("version,age", [(1, "written by an older neuro"),
                                         (3, "not a version this neuro knows"),
                                         (None, "not a version this neuro knows"),
                                         (True, "not a version this neuro knows")])
def test_other_artifact_versions_are_refused_naming_the_rebuild(networks, tmp_path, version, age):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    out = write_artifact(tmp_path / "art", target="fake", graph=q, write_files=lambda d: {})
    mf = json.loads((out / "manifest.json").read_text())
    mf["artifact_version"] = version
    if version == 1:
        del mf["sha256"]  # version 1 had no digests
    (out / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(ArtifactError, match=rf"artifact_version {version!r} \({age}\) is not "
                                            r"supported: .* `neuro export CHECKPOINT --target "
                                            rf"fake --out {out} --force`$"):
        read_manifest(out)


def test_export_over_another_targets_artifact_needs_force(networks, tmp_path):
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    out = write_artifact(tmp_path / "art", target="one", graph=q, write_files=lambda d: {})
    with pytest.raises(ArtifactError, match="holds an artifact for target 'one', not 'two'"):
        write_artifact(out, target="two", graph=q, write_files=lambda d: {})
    assert read_manifest(out)["target"] == "one"
    write_artifact(out, target="two", graph=q, write_files=lambda d: {}, force=True)
    assert read_manifest(out)["target"] == "two"


def test_unknown_target():
    with pytest.raises(ValueError, match="unknown hardware target 'tpu'"):
        get_backend("tpu")


class _FloatTarget:
    """A float target for the protocol test: it stores the float graph and "runs" it on the
    float reference executor, then flips ``flips`` spikes of its first population (a simulator
    whose float arithmetic differs from neuro's in a few threshold crossings)."""

    name, formats, runs, agreement = "fake-float", ("float32",), "float", 0.99

    def __init__(self, flips: int) -> None:
        self.flips = flips

    def supports(self, graph, fmt=None):
        return []

    def compile(self, graph, out, *, fmt=None, calibration_inputs=None):
        return write_artifact(out, target=self.name, graph=graph, write_files=lambda d: {})

    def run(self, artifact, spikes):
        from neuro.graph import simulate

        g = load_artifact_graph(artifact)
        x = np.asarray(spikes, np.float32)
        values = {k: v.numpy() for k, v in simulate(g, x[:, None] if x.ndim == 2 else x, record=True).items()}
        pops = [n for n, node in g.nodes.items() if node.role == "neuron" and node.spiking]
        spikes_out = {n: values[n].copy() for n in pops}
        flat = spikes_out[pops[0]].reshape(-1)
        flat[:self.flips] = 1 - flat[:self.flips]
        return Result(spikes_out, {n: values[n] for n in g.outputs()})


@pytest.mark.parametrize("flips,ok", [(0, True), (3, True), (2000, False)])
def test_float_target_is_compared_with_the_float_reference_at_its_stated_agreement(
        networks, tmp_path, flips, ok):
    from neuro.hardware.base import check_target

    g, x = networks["feedforward"](T=50)
    check = check_target(_FloatTarget(flips), g, x, tmp_path / "art")
    comp = check.comparison
    assert "format" not in check.graph.metadata  # the float graph is what the artifact implements
    assert read_manifest(tmp_path / "art")["number_format"] == "float32"
    assert comp.threshold == 0.99 and comp.identical == (flips == 0) and comp.ok == ok
    assert comp.verdict == ("IDENTICAL" if flips == 0 else "AGREES (>= 0.99)" if ok else "MISMATCH")


def test_group_problems_merges_nodes_with_the_same_kind_and_reason():
    from hardware.base import group_problems

    problems = [f"node 'b{i}.ln' (LayerNorm): no process implements LayerNorm" for i in range(5)]
    problems += ["node 'wkv' (WKV): no process implements WKV", "output 'out': reads two nodes",
                 "node 'b9.ln' (LayerNorm): another reason"]
    assert group_problems(problems) == [
        "nodes 'b0.ln', 'b1.ln', 'b2.ln' and 2 more (LayerNorm): no process implements LayerNorm",
        "node 'wkv' (WKV): no process implements WKV", "output 'out': reads two nodes",
        "node 'b9.ln' (LayerNorm): another reason"]
    assert group_problems([]) == []
