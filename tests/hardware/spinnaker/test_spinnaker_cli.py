"""``neuro export --target spinnaker``, ``neuro run ARTIFACT``, ``neuro verify --targets spinnaker``:
exit status 0 on success, 2 with the error naming the population and the limit, nothing written."""
import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.hardware.spinnaker import Machine, mapper


@pytest.fixture
def ckpt(tmp_path):
    from neuro.models import SpikingMLP, SpikingMLPConfig

    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(5)
    return save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())


def test_export_run_verify(ckpt, tmp_path, capsys):
    art = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "spinnaker", "--out", str(art)]) == 0
    out = capsys.readouterr().out
    assert "exported" in out and "placement.json" in out and "summary.txt" in out
    x = (np.random.default_rng(0).random((200, 2, 12)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", spikes=x)
    assert main(["run", str(art), "--input", str(tmp_path / "in.npz"), "--out",
                 str(tmp_path / "out.npz")]) == 0
    out = capsys.readouterr().out
    for key in ("statistics:", "packets_sent:", "synaptic_events:", "routing_entries_per_chip:"):
        assert key in out
    with np.load(tmp_path / "out.npz") as f:
        assert f["spikes"].shape == (200, 2, 10) and f["output"].shape == (200, 2, 3)
    assert main(["verify", str(ckpt), "--targets", "spinnaker"]) == 0
    out = capsys.readouterr().out
    assert "target spinnaker" in out and "IDENTICAL" in out


def test_export_that_does_not_fit_writes_nothing(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mapper, "DEFAULT_MACHINE",
                        Machine(width=1, height=1, cores_per_chip=2, neurons_per_core=4))
    art = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "spinnaker", "--out", str(art)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "population 'input' does not fit the machine" in err[0] and "at most 4 neurons per core" in err[0]
    assert err[-1].startswith("neuro: error: target spinnaker cannot run") and "nothing written" in err[-1]
    assert not art.exists()
    # reports the target's problem in its row; exit 3: a requested target could not run
    assert main(["verify", str(ckpt), "--targets", "spinnaker"]) == 3
    assert "spinnaker  -         NOT RUN: cannot run this model: population 'input' does not fit" in \
        capsys.readouterr().out
