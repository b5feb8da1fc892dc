"""EGRU populations on the SpiNNaker simulator (graded-event path): bit for bit with the integer
reference executor over 500 steps, statistics recounted by hand, pruned CSR rows, dense inputs,
energy counting in agreement with the machine's counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.energy.counting import count
from neuro.graph import from_module
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.hardware.base import check_target
from neuro.hardware.spinnaker import Machine
from neuro.hardware.spinnaker.egru_map import build, decode_words, encode_words
from neuro.layers import Sequential
from neuro.neurons import EGRU

#: a small machine, so that the layers spread over several chips and packets cross links
SMALL = Machine(width=3, height=3, cores_per_chip=2, neurons_per_core=8)


def stack(sizes=(6, 16, 12), seed=0, prune=0.0, thr_mean=0.15):
    torch.manual_seed(seed)
    model = Sequential(*[EGRU(a, b, thr_mean=thr_mean) for a, b in zip(sizes[:-1], sizes[1:])])
    if prune:
        with torch.no_grad():
            for layer in model:
                for w in (layer.kernel, layer.recurrent_kernel):
                    w.mul_(torch.rand(w.shape) >= prune)
    return from_module(model)


def spikes(T, B, n, seed=1):
    return (np.random.default_rng(seed).random((T, B, n)) < 0.3).astype(np.float32)


def _row_nnz(w):
    return (np.asarray(w) != 0).sum(1)


def test_words_roundtrip():
    w = np.array([-32768, -1, 0, 5, 32767])
    got = decode_words(encode_words(w, np.array([0, 1, 0, 1, 1]), np.array([0, 1, 2, 2, 0]),
                                    np.array([0, 7, 2047, 3, 1])))
    assert [a.tolist() for a in got] == [w.tolist(), [0, 1, 0, 1, 1], [0, 1, 2, 2, 0],
                                         [0, 7, 2047, 3, 1]]


def test_egru_stack_is_bit_exact_over_500_steps_and_counts_by_hand(tmp_path):
    g = stack()
    x = spikes(500, 2, 6)
    assert spinnaker.supports(g, machine=SMALL) == []
    art = spinnaker.compile(g, tmp_path / "a", machine=SMALL)
    res = spinnaker.run(art, x)
    q = quantize(g, "spinnaker")
    ref = simulate_int(q, {"input": x.astype(np.int64)}, record=True)
    for n in ("0", "1"):
        np.testing.assert_array_equal(res.spikes[n], ref[n])
    np.testing.assert_array_equal(res.outputs["output"], ref["output"])
    y0, y1 = ref["0"], ref["1"]
    e0, e1 = int((y0 != 0).sum()), int((y1 != 0).sum())
    assert e0 > 4000 and e1 > 1000  # both layers are active (measured 4924, 1160)
    s = res.stats
    n_in = int(x.sum())
    assert s["spikes"] == e0 + e1
    assert s["packets_sent"] == n_in + e0 + e1 and s["dense_input_packets"] == 0
    assert s["payload_bytes"] == 4 * s["packets_sent"]
    assert s["neuron_updates"] == (16 + 12) * 500 * 2
    assert s["ticks"] == 2 * (500 + 2)
    # synaptic events: every event times the non-zero weights of its rows (kernel rows of the
    # next layer, recurrent rows of its own), except the recurrent packets of the last step
    k0, r0, k1, r1 = (np.asarray(q.nodes[n].__dict__[f]) for n, f in
                      (("0", "kernel"), ("0", "recurrent_kernel"), ("1", "kernel"), ("1", "recurrent_kernel")))
    ev_in = x.astype(bool)
    ev0, ev1 = y0 != 0, y1 != 0
    want = (int((ev_in * _row_nnz(k0)).sum()) + int((ev0 * _row_nnz(k1)).sum())
            + int((ev0[:-1] * _row_nnz(r0)).sum()) + int((ev1[:-1] * _row_nnz(r1)).sum()))
    assert s["synaptic_events"] == want
    assert s["router_hops"] > 0 and s["dropped_packets"] == 0
    assert len({tuple(c["chip"]) for c in s["per_core"]}) > 1
    assert sum(c["synaptic_events"] for c in s["per_core"]) == s["synaptic_events"]
    assert sum(c["packets_sent"] for c in s["per_core"]) == s["packets_sent"]


def test_pruned_rows_are_csr_and_stay_bit_exact(tmp_path):
    dense, pruned = stack(), stack(prune=0.9)
    x = spikes(200, 1, 6)
    a = spinnaker.run(spinnaker.compile(dense, tmp_path / "d"), x).stats
    chk = check_target(spinnaker, pruned, x, tmp_path / "p")
    assert chk.comparison.identical, chk.comparison.table()
    m = build(chk.graph, Machine())
    nnz = sum(int((np.asarray(chk.graph.nodes[n].__dict__[f]) != 0).sum())
              for n in ("0", "1") for f in ("kernel", "recurrent_kernel"))
    assert m.words.size == nnz  # only non-zero weights are stored
    assert chk.result.stats["synaptic_events"] < 0.3 * a["synaptic_events"]


def test_dense_input_is_sent_every_step(tmp_path):
    g = stack(sizes=(5, 8))
    g.metadata["input_frac_bits"] = 15  # the input holds s16.15 real values (an embedding)
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(60, 2, 5)) * 0.5 * 2**15)
    x[:, :, 0] = 0  # a zero channel is still sent: dense
    art = spinnaker.compile(g, tmp_path / "a")
    res = spinnaker.run(art, x)
    q = quantize(g, "spinnaker")
    assert q.nodes["0"].q["in_frac"] == 15
    ref = simulate_int(q, {"input": x.astype(np.int64)}, record=True)
    np.testing.assert_array_equal(res.spikes["0"], ref["0"])
    assert int((ref["0"] != 0).sum()) > 50
    assert res.stats["dense_input_packets"] == 60 * 2 * 5
    c = count(q, x, progress=False)
    assert c.populations["input"].packets == 60 * 2 * 5


def test_energy_counts_match_the_machine(tmp_path):
    g = stack()
    x = spikes(120, 2, 6)
    s = spinnaker.run(spinnaker.compile(g, tmp_path / "a"), x).stats
    c = count(quantize(g, "spinnaker"), x, progress=False)
    assert c.total("packets") == s["packets_sent"]
    assert c.total("spikes") == s["spikes"]
    assert c.total("effective_acs") + c.total("effective_macs") == s["synaptic_events"]
    assert c.total("updates") == s["neuron_updates"]


def test_link_capacity_drops_graded_packets(tmp_path):
    g = stack()
    x = spikes(40, 1, 6)
    art = spinnaker.compile(g, tmp_path / "a", machine=SMALL)
    s = spinnaker.run(art, x, link_capacity_per_tick=1).stats
    assert s["dropped_packets"] > 0 and s["link_capacity_per_tick"] == 1


def test_egru_refusals_name_node_and_reason():
    g = stack()
    from neuro.graph import nodes as N

    g.nodes["extra"] = N.LIF(shape=(12,))
    g.edges.append(("1", "extra"))
    problems = spinnaker.supports(g)
    assert any("node 'extra' (LIF)" in p and "graded-event path" in p for p in problems)
    tiny = Machine(width=1, height=1, cores_per_chip=2, neurons_per_core=8)
    problems = spinnaker.supports(stack(), machine=tiny)
    assert problems and "does not fit the machine" in problems[0]


@pytest.mark.parametrize("bad", ["loihi2"])
def test_egru_is_refused_in_other_formats(bad):
    assert "not one of ['spinnaker']" in spinnaker.supports(stack(), bad)[0]


def test_cli_run_keeps_graded_events_and_reports_the_event_rate(tmp_path, capsys):
    from neuro.cli import main

    art = spinnaker.compile(stack(), tmp_path / "a")
    x = spikes(50, 1, 6)[:, 0]
    np.savez(tmp_path / "in.npz", spikes=x.astype(np.uint8))
    assert main(["run", str(art), "--input", str(tmp_path / "in.npz"), "--out",
                 str(tmp_path / "out.npz")]) == 0
    y = spinnaker.run(art, x).spikes["1"][:, 0]
    saved = np.load(tmp_path / "out.npz")["spikes"]
    np.testing.assert_array_equal(saved, y)  # graded s16.15 values, not cast to 0/1 bytes
    assert y.max() > 1
    assert f"(rate {(y != 0).mean():.4f})" in capsys.readouterr().out


def test_tampered_artifact_is_refused(tmp_path):
    from neuro.hardware.base import ArtifactError

    art = spinnaker.compile(stack(), tmp_path / "a")
    with np.load(art / "egru_synapses.npz") as f:
        arrays = dict(f)
    arrays["words"] = arrays["words"] ^ np.uint32(1 << 16)
    np.savez(art / "egru_synapses.npz", **arrays)
    with pytest.raises(ArtifactError, match="egru_synapses.npz"):
        spinnaker.run(art, spikes(5, 1, 6))
