"""A trained-shape EGRU language model (Embedding, EGRU layers, decoder) end to end on the
SpiNNaker simulator's graded-event path and the FPGA step graph: integer logits and graded events
bit for bit with the integer reference executor over 500 tokens, statistics recounted by hand,
the CLI's export/run (and verify, slow) on a pruned checkpoint, and the refusals of Loihi and
NEST."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.energy.counting import count
from neuro.graph import from_module
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.hardware import fpga, get_backend, spinnaker
from neuro.hardware.base import check_target
from neuro.hardware.spinnaker import Machine
from neuro.models.egru.config import EGRULMConfig
from neuro.models.egru.model import EGRULanguageModel
from neuro.models.egru.pruning import prune
from neuro.models.spikegpt.graph import one_hot_tokens

V = 40
#: a small machine: the layers and the decoder spread over several chips, packets cross links
SMALL = Machine(width=3, height=3, cores_per_chip=2, neurons_per_core=8)


def tiny_lm(seed: int = 0, sparsity: float = 0.0) -> EGRULanguageModel:
    torch.manual_seed(seed)
    model = EGRULanguageModel(EGRULMConfig(vocab_size=V, emb_dim=12, hidden_sizes=[20, 12],
                                           thr_mean=0.1))
    with torch.no_grad():
        for layer in model.layers:
            layer.kernel.mul_(3)
        model.embedding.weight[:, ::3] = 0  # pruned decoder columns: rows the machine skips
        model.decoder_bias.uniform_(-0.5, 0.5)
    if sparsity:
        prune(model, sparsity)
    return model.eval()


def tokens(T: int, B: int = 1, seed: int = 1) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(0, V, (T, B))
    return np.asarray(one_hot_tokens(ids, V), np.float32)


def test_spinnaker_runs_the_lm_bit_exact_over_500_tokens_and_counts_by_hand(tmp_path):
    g = from_module(tiny_lm(sparsity=0.5))
    x = tokens(500)
    assert spinnaker.supports(g, machine=SMALL) == []
    art = spinnaker.compile(g, tmp_path / "a", machine=SMALL)
    res = spinnaker.run(art, x)
    q = quantize(g, "spinnaker")
    ref = simulate_int(q, {"input": x.astype(np.int64)}, record=True)
    for n in ("layers.0", "layers.1"):
        assert np.array_equal(res.spikes[n], ref[n])
    assert np.array_equal(res.outputs["output"], ref["output"])
    assert set(res.spikes) == {"layers.0", "layers.1"}
    st = res.stats
    T, B, D = 500, 1, 12
    events = {n: int(np.count_nonzero(ref[n])) for n in ("layers.0", "layers.1")}
    assert 0.05 < events["layers.1"] / (T * 12) < 0.95  # graded events, neither silent nor saturated
    assert st["dense_input_packets"] == T * B * D  # the embedding row, every token
    assert st["packets_sent"] == T * B * D + sum(events.values())
    assert st["payload_bytes"] == 4 * st["packets_sent"]
    assert st["embedding_row_reads"] == T * B * 2  # 12 columns on two 8-atom cores
    assert st["readout_updates"] == T * B * V
    col_nnz = (np.asarray(q.nodes["decoder"].weight) != 0).sum(0)  # words per event of unit i
    y = ref["layers.1"].reshape(-1, 12)
    assert st["readout_synaptic_events"] == int(((y != 0) * col_nnz).sum())
    w = np.asarray(q.nodes["decoder"].weight) != 0  # [V, 12]: decoder units on 8-unit cores
    cores_reached = sum((w[k:k + 8].any(0)).astype(int) for k in range(0, V, 8))  # per unit i
    assert st["readout_rows_fetched"] == int(((y != 0) * cores_reached).sum())
    assert st["router_hops"] > 0 and st["dropped_packets"] == 0
    assert any(c["kind"] == "readout" for c in st["per_core"])


def test_energy_counting_gives_the_simulators_packets(tmp_path):
    g = from_module(tiny_lm(sparsity=0.5))
    x = tokens(40, 2)
    res = spinnaker.run(spinnaker.compile(g, tmp_path / "a"), x)
    for graph in (g, quantize(g, "spinnaker")):  # float and integer reference runs
        c = count(graph, x, progress=False)
        assert sum(p.packets for p in c.populations.values()) == res.stats["packets_sent"]


def test_fpga_runs_the_lm_bit_exact_over_500_tokens():
    g = from_module(tiny_lm(seed=2))
    chk = check_target(fpga, g, tokens(500, seed=3))
    assert chk.comparison.identical, chk.comparison.table()
    assert chk.graph.metadata["format"]["name"] == "int16"
    assert {r["node"] for r in chk.comparison.rows} == {"layers.0", "layers.1", "output"}
    layers = chk.result.stats["resources"]["layers"]
    assert layers["embedding"]["table_entries"] == V * 12
    assert layers["decoder"]["macs_per_step_dense"] == V * 12


def test_fpga_runs_the_lm_with_8_bit_weights_bit_exact(tmp_path):
    """``int8-s32``: 8-bit weight registers, the 32-bit state of ``int16`` (12 fraction bits)."""
    g = from_module(tiny_lm(seed=2))
    chk = check_target(fpga, g, tokens(200, seed=3), tmp_path / "a", fmt="int8-s32")
    assert chk.comparison.identical, chk.comparison.table()
    assert chk.graph.metadata["format"]["name"] == "int8-s32"
    for name in ("layers.0", "layers.1"):
        node = chk.graph.nodes[name]
        for w in (node.kernel, node.recurrent_kernel):
            assert np.abs(np.asarray(w)).max() <= 127 and np.abs(np.asarray(w)).max() >= 64
    assert np.abs(np.asarray(chk.graph.nodes["decoder"].weight)).max() <= 127
    with pytest.raises(Exception, match="int8"):  # the 16-bit state has no room: refused
        check_target(fpga, g, tokens(5), tmp_path / "b", fmt="int8")


def test_non_one_hot_input_is_refused_naming_the_embedding(tmp_path):
    g = from_module(tiny_lm())
    x = tokens(5)
    x[2, 0, :3] = 1
    for backend in (spinnaker, fpga):
        art = backend.compile(g, tmp_path / backend.name, calibration_inputs=tokens(5))
        with pytest.raises(ValueError, match="'embedding' \\(Embedding\\): its input must be one-hot"):
            backend.run(art, x)


@pytest.mark.parametrize("target, words", [
    ("loihi", ("(EGRU)", "multiply", "graded payload", "(Embedding)")),
    ("nest", ("(EGRU)", "multiplicative gates", "graded", "Embedding"))])
def test_loihi_and_nest_refuse_the_lm_with_reasons(target, words):
    problems = "; ".join(get_backend(target).supports(from_module(tiny_lm())))
    for w in words:
        assert w in problems, (w, problems)


def _checkpoint(tmp_path):
    model = tiny_lm(sparsity=0.6)  # a pruned checkpoint holds the masks
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name,
                           config=model.config_dict())
    ids = np.random.default_rng(4).integers(0, V, (60, 2))
    np.savez(tmp_path / "tokens.npz", tokens=ids)
    return ckpt, ids


def test_cli_export_run_a_pruned_checkpoint(tmp_path, capsys):
    ckpt, ids = _checkpoint(tmp_path)
    art = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "spinnaker", "--out", str(art), "--input",
                 str(tmp_path / "tokens.npz")]) == 0
    assert main(["run", str(art), "--input", str(tmp_path / "tokens.npz"), "--out",
                 str(tmp_path / "o.npz")]) == 0
    out = capsys.readouterr().out
    assert "readout_synaptic_events" in out and "dense_input_packets: 1440" in out  # 60 x 2 x 12
    with np.load(tmp_path / "o.npz") as f:
        assert f["output"].shape == (60, 2, V)
    np.savez(tmp_path / "bad.npz", tokens=ids + V)
    assert main(["run", str(art), "--input", str(tmp_path / "bad.npz")]) == 2
    assert f"token ids must lie in [0, {V})" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_verify_a_pruned_checkpoint(tmp_path, capsys):
    ckpt, _ = _checkpoint(tmp_path)
    assert main(["verify", str(ckpt), "--targets", "spinnaker,fpga", "--formats",
                 "spinnaker,int16", "--input", str(tmp_path / "tokens.npz")]) == 0
    out = capsys.readouterr().out
    assert out.count("IDENTICAL to its reference") == 2
    assert "vs the float model: spike agreement 0.9" in out  # events compared, not payloads


def test_format_choice_quantizes_an_egru_lm_with_its_own_integer_form():
    """verify/demo/export choose the FPGA format of an EGRU LM through egru_lm_int (the 32-bit
    state formats fit, int8's 16-bit state does not), not through the SpikeGPT integer form that
    also has an Embedding; the cheapest that follows the float model is int8-s32."""
    from hardware.agreement import choose_format

    graph = from_module(tiny_lm().eval())
    x = tokens(30, 2)
    fmt, scores = choose_format(graph, tuple(fpga.formats), x)
    assert fmt == "int8-s32" and scores[fmt] == pytest.approx(1.0, abs=0.02)
    assert "int8" not in scores  # refused by the EGRU form (no room for its fraction bits)
