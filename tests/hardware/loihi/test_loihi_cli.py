"""``neuro export --target loihi``, ``neuro run ARTIFACT``, ``neuro verify --targets loihi``."""
import json

import numpy as np
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.graph.intsim import simulate_int
from neuro.hardware.base import as_int_spikes, load_artifact_graph
from neuro.models import SpikingMLP, SpikingMLPConfig


def _checkpoint(tmp_path, reset="zero"):
    """A SpikingMLP 12 -> 10 -> 3 with biases (their start is aligned with each layer's lag)."""
    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset=reset))
    with torch.no_grad():
        m[0].weight.mul_(5)
    return save_checkpoint(tmp_path / f"m-{reset}.safetensors", m, name=m.name,
                           config=m.config_dict())


def test_export_run_verify(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "loihi", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exported" in text and "lava/network.json" in text
    # its biases are not multiples of 64 (netx fixes bias_exp = 6): no netx file, and why
    info = json.loads((out / "manifest.json").read_text())["target_info"]
    assert info["netx"].startswith("not written: the bias of '1'") and not (out / "netx").exists()
    x = (np.random.default_rng(1).random((200, 12)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", spikes=x)
    assert main(["run", str(out), "--input", str(tmp_path / "in.npz"), "--out",
                 str(tmp_path / "out.npz")]) == 0
    text = capsys.readouterr().out
    assert "ran loihi artifact" in text and "Loihi2SimCfg(fixed_pt)" in text
    q = load_artifact_graph(out)
    ref = simulate_int(q, as_int_spikes(q, x))
    with np.load(tmp_path / "out.npz") as f:
        assert np.array_equal(f["output"], ref["output"][:, 0])
        assert f["spikes"].shape == (200, 10) and f["spikes"].any()
    assert main(["verify", str(ckpt), "--formats", "loihi2", "--targets", "loihi"]) == 0
    text = capsys.readouterr().out
    assert "target loihi: 100 steps x 8 samples, IDENTICAL to the reference executor" in text


def test_export_unsupported_lists_problems_writes_nothing(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, reset="subtract")
    out = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "loihi", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field 'reset' 'subtract'" in err[0]
    assert err[0].startswith("neuro: error: target loihi cannot run") and "1 problem(s)" in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name]
    assert main(["export", str(_checkpoint(tmp_path)), "--target", "loihi", "--format", "int8",
                 "--out", str(out)]) == 2
    assert "takes --format loihi2" in capsys.readouterr().err and not out.exists()
