"""``neuro export --target nest``, ``neuro run ARTIFACT``, ``neuro verify --targets nest`` (the CLI
reads ``TARGETS``; no NEST-specific code in it)."""
import json

import numpy as np
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.models import SpikingMLP, SpikingMLPConfig


def test_export_run_verify(tmp_path, capsys):
    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(5)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    x = (np.random.default_rng(0).random((40, 2, 12)) < 0.3).astype(np.int8)
    np.savez(tmp_path / "s.npz", spikes=x)
    art = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "nest", "--out", str(art)]) == 0
    assert "nest/run_pynn.py" in capsys.readouterr().out
    assert json.loads((art / "manifest.json").read_text())["target"] == "nest"
    assert main(["run", str(art), "--input", str(tmp_path / "s.npz"), "--out", str(tmp_path / "o.npz")]) == 0
    with np.load(tmp_path / "o.npz") as f:
        assert any(f[k].shape[:2] == (40, 2) for k in f.files)
    capsys.readouterr()
    assert main(["verify", str(ckpt), "--targets", "nest"]) == 0
    assert "target nest" in capsys.readouterr().out
    # a subtractive-reset model (SpikingMLP's default) runs through the NESTML model
    m2 = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="subtract"))
    with torch.no_grad():
        m2[0].weight.mul_(5)
    ck2 = save_checkpoint(tmp_path / "m2.safetensors", m2, name=m2.name, config=m2.config_dict())
    assert main(["export", str(ck2), "--target", "nest", "--out", str(tmp_path / "a2")]) == 0
    assert "nest/neuro_lif_subtract_neuron.nestml" in capsys.readouterr().out
    assert main(["verify", str(ck2), "--targets", "nest"]) == 0
    assert "target nest" in capsys.readouterr().out
