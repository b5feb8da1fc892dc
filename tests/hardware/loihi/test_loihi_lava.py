"""Lava runs (no skip): fixed_pt is bit-exact with the reference executor, floating_pt agrees with
the float model, worker failures surface as one error.

Each Lava run costs seconds (one OS process per Lava Process), so the three shared networks run
merged into one graph, and the edge cases are one graph too; comparisons stay per node.
"""
import json

import numpy as np
import pytest
import torch
from loihi_graphs import edge_graph, union

from neuro.graph import simulate
from neuro.graph.intsim import simulate_int
from neuro.hardware import get_backend
from neuro.hardware.base import as_int_spikes, compare, load_artifact_graph
from neuro.hardware.loihi import LavaWorkerError
from neuro.safeio import sha256_file

loihi = get_backend("loihi")
T = 200


def _check_bit_exact(art, spikes, batch_note):
    q = load_artifact_graph(art)
    ref = simulate_int(q, as_int_spikes(q, spikes), record=True, record_membranes=True)
    res = loihi.run(art, spikes, probe_membranes=True)
    comp = compare("loihi", q, res, ref)
    print(batch_note, comp.table(), sep="\n")
    assert comp.steps == T and comp.identical, comp.table()
    lifs = [n for n, node in q.nodes.items() if node.kind in ("LIF", "CubaLIF", "IF")]
    assert sorted(res.membranes) == sorted(lifs)
    for n, v in res.membranes.items():
        assert np.array_equal(v, ref[f"{n}.v"]), f"membrane of {n!r} differs"
    return q, ref, res


def test_networks_fixed_pt_bit_exact_and_floating_pt_agrees(networks, tmp_path):
    """Feed-forward, delay and LSM-style reservoir networks (negative weights, LI readouts),
    T=200, B=2: spikes, readout membranes and every LIF membrane equal simulate_int's."""
    parts = {k: networks[k](T=T, B=2) for k in ("feedforward", "delay", "reservoir", "lsm")}
    g, x = union(parts)
    art = loihi.compile(g, tmp_path / "art", calibration_inputs=x)
    q, ref, res = _check_bit_exact(art, x, "fixed_pt")
    for k in parts:  # every network spikes, so the comparison is not vacuous
        assert any(res.stats["spikes"][n] > 100 for n in res.stats["spikes"] if n.startswith(k))
    assert json.loads((art / "manifest.json").read_text())["target_info"]["processes"][
        "reservoir.0.recurrent"] == "sparse"
    # floating_pt: Lava's float LIF/Dense on the float parameters vs the float model
    fres = loihi.run(art, x, mode="floating_pt")
    fref = simulate(g, {k: torch.from_numpy(v) for k, v in x.items()}, record=True)
    agree, total = 0, 0
    for n, got in fres.spikes.items():
        want = fref[n].numpy()
        if g.nodes[n].kind == "LI":
            assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max()), n
        else:
            agree += int((got == want).sum())
            total += want.size
    print(f"floating_pt spike agreement with the float model: {agree / total:.6f} "
          f"({total - agree} of {total} differ)")
    assert agree / total >= 0.99


def test_edge_cases_bit_exact():
    """Wrap of u, clip of v (both signs), spikes at the top of the range, exact threshold,
    inhibitory/odd weights, biases with exponents, alignment pads, Delay nodes, CubaLIF, IF and a
    recurrent loop through a delay."""
    g, x = edge_graph(T=T, B=1)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        art = loihi.compile(g, f"{d}/art")
        q, ref, res = _check_bit_exact(art, x, "edge cases")
    lim = (1 << 23) - 1
    assert ref["wrap.n"][:, 0, 0].sum() > 10 and ref["wrap.n.v"][:, 0, 1].min() == -lim
    assert ref["li.n"][:, 0, 0].max() == lim and ref["li.n"][:, 0, 1].min() == -lim
    assert ref["thr.n.v"][5, 0, 0] == 10 << 6 and ref["thr.n"][5, 0, 0] == 0  # v == vth << 6
    assert ref["thr.n"][9, 0, 0] == 1
    assert res.stats["latency_removed_steps"] == 3


def test_worker_failures_are_one_clear_error(networks, tmp_path, lava_python):
    import sys

    g, x = networks["feedforward"](T=20, B=1)
    art = loihi.compile(g, tmp_path / "art", calibration_inputs=x)
    # an interpreter without Lava (the project's own): the error says how to install it
    with pytest.raises(LavaWorkerError, match=r"Lava is not available to neuro: .*neuro setup lava") as err:
        loihi.run(art, x, python=sys.executable)
    msg = str(err.value)  # one line, each part said once
    assert "\n" not in msg and msg.count(sys.executable) == 1 and msg.count("neuro setup lava") == 1
    with pytest.raises(LavaWorkerError, match="does not exist"):
        loihi.run(art, x, python=str(tmp_path / "no-python"))
    # a time-out kills the worker and its Lava processes instead of hanging
    with pytest.raises(LavaWorkerError, match="timed out after"):
        loihi.run(art, x, timeout=0.5)
    # Lava itself fails (a weight matrix of the wrong shape): its message comes through
    with np.load(art / "lava" / "arrays.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["syn/2/weight"] = arrays["syn/2/weight"][:, :3]
    np.savez(art / "lava" / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match="arrays.npz: does not match the manifest's digest"):
        loihi.run(art, x, timeout=120)  # a modified artifact is refused before Lava starts
    manifest = json.loads((art / "manifest.json").read_text())  # re-sign it: Lava gets to fail
    manifest["sha256"]["lava/arrays.npz"] = sha256_file(art / "lava" / "arrays.npz")
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LavaWorkerError, match=r"^the Lava worker failed \(exit 1\): ") as e:
        loihi.run(art, x, timeout=120)
    print(str(e.value).splitlines()[0])
