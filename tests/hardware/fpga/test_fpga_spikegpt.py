"""SpikeGPT on the FPGA target: the one-token ONNX step graph run by onnxruntime equals the
integer reference executor (neuro.graph.spikegpt_int) bit for bit; resources per block; the
CLI's export/run/verify on a SpikeGPT checkpoint."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.hardware import fpga
from neuro.hardware.base import check_target
from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig
from neuro.models.spikegpt.graph import one_hot_tokens, to_graph


def model(V=16, L=2, C=16, seed=0):
    torch.manual_seed(seed)
    m = SpikeGPT(SpikeGPTConfig(vocab_size=V, n_layer=L, n_embd=C, ctx_len=8)).eval()
    with torch.no_grad():  # away from the initialisation's zero matrices
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m


def tokens(T, B, V=16, seed=1):
    return one_hot_tokens(np.random.default_rng(seed).integers(0, V, (T, B)), V)


@pytest.mark.parametrize("fmt,T", [("int8", 256), pytest.param("int16", 64, marks=pytest.mark.slow)])
def test_step_graph_is_bit_exact_over_256_tokens(fmt, T, tmp_path):
    g, x = to_graph(model()), tokens(T, 2)
    chk = check_target(fpga, g, x, tmp_path / "a", fmt=fmt)
    comp = chk.comparison
    assert comp.identical, comp.table()
    assert comp.steps == T and {r["node"] for r in comp.rows} == {
        "blocks.0.lif1", "blocks.0.lif2", "blocks.1.lif1", "blocks.1.lif2", "output"}
    # every LIF fires (agreement on silence proves nothing); int8 at 256 tokens: 117, 1537, 43, 1630
    assert all(r["reference"] >= T // 8 for r in comp.rows), comp.table()
    m = onnx.load(str(tmp_path / "a" / "spikegpt_step.onnx"))
    assert {n.op_type for n in m.graph.node} <= {
        "MatMul", "Add", "Sub", "Mul", "Div", "Mod", "Max", "Clip", "Gather", "GreaterOrEqual",
        "Where", "Cast", "ReduceSum", "Identity"}
    assert all(t.data_type == onnx.TensorProto.INT64 for t in m.graph.initializer)
    w = [np.asarray(onnx.numpy_helper.to_array(t)) for t in m.graph.initializer]
    wb = 8 if fmt == "int8" else 16
    assert any(a.shape == (16, 16) and np.abs(a).max() == 2 ** (wb - 1) - 1 for a in w)
    res = json.loads((tmp_path / "a" / "resources.json").read_text())
    assert set(res["blocks"]) == {"embedding", "blocks.0", "blocks.1", "head"}
    b0 = res["blocks"]["blocks.0"]
    assert b0["macs_per_token"] == 4 * 16 * 16 + 2 * 16 * 64 + 16 * 16  # att 4 C^2, ffn
    assert b0["weight_memory_bits"] == b0["macs_per_token"] * wb + (4 * 16 + 16 + 64 + 16) * 15


def test_verilog_is_refused_and_inputs_are_checked(tmp_path):
    art = fpga.compile(to_graph(model(L=1, C=8)), tmp_path / "a", calibration_inputs=tokens(20, 1))
    with pytest.raises(ValueError, match="SpikeGPT artifact runs on onnxruntime only"):
        fpga.run(art, tokens(5, 1), engine="verilog")
    bad = tokens(5, 1)
    bad[1, 0, :] = 0
    with pytest.raises(ValueError, match="one-hot tokens"):
        fpga.run(art, bad)


def test_cli_export_run_verify(tmp_path, capsys):
    m = model(V=256, L=1, C=8)
    ckpt = save_checkpoint(tmp_path / "s.safetensors", m, name=m.name, config=m.config_dict())
    ids = np.random.default_rng(0).integers(0, 256, (20, 2))
    np.savez(tmp_path / "tok.npz", tokens=ids)
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "art"),
                 "--input", str(tmp_path / "tok.npz")]) == 0
    assert "spikegpt_step.onnx" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "art"), "--input", str(tmp_path / "tok.npz"),
                 "--out", str(tmp_path / "y.npz")]) == 0
    assert "onnxruntime" in capsys.readouterr().out
    with np.load(tmp_path / "y.npz") as f:
        assert f["output"].shape == (20, 2, 256)
    assert main(["verify", str(ckpt), "--formats", "int8", "--targets", "fpga",
                 "--input", str(tmp_path / "tok.npz"), "--out", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "target fpga: 20 steps x 2 samples, IDENTICAL" in out
    assert "format int8: 20 steps x 2 samples" in out  # the per-LIF mismatch report vs float
    assert json.loads((tmp_path / "v.json").read_text())["targets"][0]["identical"]
    # a bad token file: one line, exit 2
    np.savez(tmp_path / "bad.npz", tokens=np.full((5, 1), 300))
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "b"),
                 "--input", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuro: error:") and "token ids" in err[0]
    assert not (tmp_path / "b").exists()


def test_hand_built_graph_with_spikes_into_a_linear(tmp_path):
    """Branches SpikeGPT itself does not take: a Linear reading LIF spikes (``in_frac = 0``), a
    Linear summing two inputs, an LIF without input decay and with a subtractive reset."""
    from neuro.graph import Graph, simulate
    from neuro.graph import lm_nodes as LM
    from neuro.graph import nodes as N

    rng = np.random.default_rng(5)
    V, C = 6, 8
    nodes = {"input": N.Input(shape=(V,)),
             "emb": LM.Embedding(weight=rng.normal(0, 1, (V, C)).astype(np.float32)),
             "ln": LM.LayerNorm(weight=np.ones(C, np.float32), bias=np.zeros(C, np.float32)),
             "fc1": N.Linear(weight=rng.normal(0, 0.8, (C, C)).astype(np.float32)),
             "lif": N.LIF(beta=0.75, threshold=0.5, reset="subtract"),
             "fc2": N.Linear(weight=rng.normal(0, 1, (C, C)).astype(np.float32)),
             "fc3": N.Linear(weight=rng.normal(0, 0.5, (4, C)).astype(np.float32)),
             "add": LM.Add(), "output": N.Output()}
    edges = [("input", "emb"), ("emb", "ln"), ("ln", "fc1"), ("fc1", "lif"), ("lif", "fc2"),
             ("fc2", "add"), ("ln", "add"), ("add", "fc3"), ("emb", "fc3"), ("fc3", "output")]
    g = Graph(nodes, edges, metadata={"input": "one-hot tokens"}).validate()
    x = tokens(300, 2, V=V)
    chk = check_target(fpga, g, x, tmp_path / "a")
    assert chk.comparison.identical, chk.comparison.table()
    assert chk.comparison.rows[0]["reference"] > 300  # the LIF fires (measured 756 spikes)
    q = chk.graph
    F = q.metadata["spikegpt_int"]["frac_bits"]
    rf, ri = simulate(g, x, record=True), simulate(q, x, record=True)
    agree = float((rf["lif"].numpy() == ri["lif"].numpy()).mean())
    err = np.abs(rf["output"].numpy() - ri["output"].numpy() / 2.0 ** F)
    assert agree > 0.99, agree  # int8 weights: a few spikes flip (measured 0.9965)
    # measured: mean error 0.041 of logits up to 10.5
    assert err.mean() < 0.01 * np.abs(rf["output"].numpy()).max(), (agree, err.mean())
