"""``neuro export/run/verify`` with ``--target fpga``: exit status, one-line errors, nothing
written on failure."""
import json

import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.datasets import save_spikes
from neuro.graph import GraphModel
from neuro.graph.quantize import quantize
from neuro.models import DelaySNN, DelaySNNConfig


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=12, n_hidden=16, n_layers=1, n_outputs=4, max_delay=5,
                                dropout=0.0, tau=2.0, right_padding=0))
    with torch.no_grad():
        for layer in m.delayed_layers():
            layer.weight.mul_(2.0)
    m.eval()
    return save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())


def test_export_run_verify(ckpt, tmp_path, capsys):
    x = (np.random.default_rng(0).random((50, 12)) < 0.2).astype(np.uint8)
    save_spikes(tmp_path / "x.npz", x)
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "art"),
                 "--format", "int8-m12", "--input", str(tmp_path / "x.npz")]) == 0
    out = capsys.readouterr().out
    assert "step.onnx" in out and "resources.json" in out and "verilog/neuro_net.v" in out
    assert main(["run", str(tmp_path / "art"), "--input", str(tmp_path / "x.npz"),
                 "--out", str(tmp_path / "y.npz")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "weight_memory_bits" in out
    with np.load(tmp_path / "y.npz") as f:
        assert f["spikes"].shape == (50, 16) and f["output"].shape == (50, 4)
    assert main(["verify", str(ckpt), "--formats", "int8", "--targets", "fpga",
                 "--out", str(tmp_path / "v.json")]) == 0
    assert "target fpga: 100 steps x 8 samples, IDENTICAL" in capsys.readouterr().out
    assert json.loads((tmp_path / "v.json").read_text())["targets"][0]["identical"]


def test_bad_format_and_narrow_weights(ckpt, tmp_path, capsys, networks):
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "a"),
                 "--format", "int4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "target fpga takes --format int8|int16|int8-m12|int16-m12" in err[0]
    g, x = networks["feedforward"](T=20)
    q = quantize(g, "int8", calibration_inputs=x)
    q.nodes["0"].weight = q.nodes["0"].weight.copy()
    q.nodes["0"].weight[1, 2] = -1000
    gm = GraphModel(q)
    bad = save_checkpoint(tmp_path / "q.safetensors", gm, name="graph", config=gm.config_dict())
    assert main(["export", str(bad), "--target", "fpga", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "node '0' (Linear): field 'weight' needs 11 bits" in err
    assert err.strip().splitlines()[-1].startswith("neuro: error: target fpga cannot run")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "q.safetensors"]


def test_info_describes_the_artifact(ckpt, tmp_path, capsys):
    assert main(["export", str(ckpt), "--target", "fpga", "--out", str(tmp_path / "art")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "art"), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["kind"] == "artifact" and desc["target"] == "fpga"
    assert desc["target_info"]["resources"]["weight_memory_bits"] > 0


def test_node_without_integer_form(tmp_path, capsys):
    from neuro.graph import Graph
    from neuro.graph import nodes as N

    g = Graph({"in": N.Input(shape=(4,)), "lin": N.Linear(weight=np.ones((3, 4), np.float32)),
               "n": N.LIF(beta=0.9, decay_input=True, reset="zero"),
               "th": N.Threshold(threshold=np.float32(0.5)), "out": N.Output()},
              [("in", "n"), ("n", "lin"), ("lin", "th"), ("th", "out")]).validate()
    gm = GraphModel(g)
    ck = save_checkpoint(tmp_path / "g.safetensors", gm, name="graph", config=gm.config_dict())
    assert main(["export", str(ck), "--target", "fpga", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "node 'th' (Threshold) has no integer form on target fpga" in err
    assert "node 'n' (LIF): field 'decay_input' has no integer form here" in err  # no synapse in front
    assert not (tmp_path / "o").exists()
