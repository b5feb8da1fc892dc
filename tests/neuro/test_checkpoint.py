import json
import os

import pytest
import torch
from safetensors.torch import save_file

from neuro.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from neuro.models import SpikingMLP, SpikingMLPConfig


def _model():
    return SpikingMLP(SpikingMLPConfig(layers=[10, 8, 3]))


def test_roundtrip_gives_identical_outputs(tmp_path):
    m = _model()
    path = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict(),
                           info={"acc": 0.5})
    m2, meta = load_checkpoint(path)
    assert meta["config"]["layers"] == [10, 8, 3] and meta["info"]["acc"] == 0.5
    x = (torch.rand(20, 2, 10) < 0.3).float()
    assert torch.equal(m(x)[0], m2(x)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left


def test_failed_write_leaves_nothing(tmp_path):
    m = _model()
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_rejects_corrupt_foreign_and_pickle_files(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00" * 5 + b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        read_checkpoint(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="not a neuro checkpoint"):
        read_checkpoint(foreign)
    pickled = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickled)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        read_checkpoint(pickled)
    with pytest.raises(ValueError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.safetensors")


def test_rejects_nan_and_mismatched_tensors(tmp_path):
    m = _model()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["0.weight"][0, 0] = float("nan")
    meta = {"neuro_format": "1", "model": m.name, "config": json.dumps(m.config_dict())}
    save_file(sd, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="'0.weight' holds NaN"):
        load_checkpoint(tmp_path / "nan.safetensors")
    cfg = dict(m.config_dict(), layers=[10, 9, 3])
    save_file(m.state_dict(), str(tmp_path / "shape.safetensors"),
              metadata={**meta, "config": json.dumps(cfg)})
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(tmp_path / "shape.safetensors")
    save_file(m.state_dict(), str(tmp_path / "unknown.safetensors"),
              metadata={**meta, "model": "resnet"})
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        load_checkpoint(tmp_path / "unknown.safetensors")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert os.path.exists(tmp_path / "nan.safetensors")
