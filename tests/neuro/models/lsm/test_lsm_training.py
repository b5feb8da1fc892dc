"""LSM training: readouts on reservoir features, the raw-input baseline, the command-line entry."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.checkpoint import load_checkpoint, save_checkpoint
from neuro.datasets import SpikeDataset, spike_pattern_task
from neuro.datasets.ntidigits import CLASSES, write_ntidigits
from neuro.graph import from_module, simulate
from neuro.models.base import TrainRequest
from neuro.models.lsm import FAMILY, LSM, LSMClassifier, LSMConfig
from neuro.models.lsm.training import train_lsm


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def _task():
    return spike_pattern_task(300, 150, n_channels=24, n_steps=30, n_classes=4, task_seed=1, seed=2)


def _model(train: SpikeDataset, **kw) -> LSM:
    return LSM(LSMConfig(n_inputs=train.n_channels, size=80, n_outputs=train.n_classes,
                         n_steps=train.n_steps, input_scale=2.0, **kw))


def test_ridge_readout_is_stored_in_the_model():
    train, test = _task()
    model, res = train_lsm(_model(train), train, test, log=lambda s: None)
    assert isinstance(model, LSM)
    assert res.test_accuracy > 0.6  # 4 classes
    assert res.raw_test_accuracy is not None and res.alpha is not None
    assert 0 < res.reservoir["mean_rate"] < 0.5
    x = torch.from_numpy(test.spikes).transpose(0, 1).float()
    acc = float((model.logits(x).argmax(1).numpy() == test.labels).mean())
    assert torch.equal(model.decide(simulate(from_module(model), x)["output"]), model.predict(x))
    assert acc == pytest.approx(res.test_accuracy, abs=0.02)  # float32 module vs float64 ridge


@pytest.mark.parametrize("readout", ["mlp", "contrastive"])
def test_projection_readouts(readout, tmp_path):
    train, test = _task()
    model, res = train_lsm(_model(train), train, test, readout=readout, hidden=(32,), epochs=15,
                           lr=3e-3, raw_baseline=False, log=lambda s: None)
    assert isinstance(model, LSMClassifier)
    assert res.test_accuracy > 0.5 and res.loss[-1] < res.loss[0]
    path = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name, config=model.config_dict())
    loaded, meta = load_checkpoint(path)
    assert meta["model"] == "lsm-projection"
    x = torch.from_numpy(test.spikes[:20]).transpose(0, 1).float()
    with torch.no_grad():
        assert torch.allclose(loaded.logits(x), model.logits(x))
    # the reservoir lowers; its graph output is the spike train the host-side head reads
    with loaded.export_view() as view:
        g = from_module(view)
    assert torch.equal(simulate(g, x)["output"], model.lsm.reservoir_spikes(x))
    # the decision rule on a target's output (the graph's spikes) is the model's own predict
    assert torch.equal(loaded.decide(simulate(g, x)["output"]), model.predict(x))


def test_train_lsm_bad_arguments():
    train, test = _task()
    with pytest.raises(ValueError, match="readout"):
        train_lsm(_model(train), train, test, readout="svm")
    wrong = LSM(LSMConfig(n_inputs=train.n_channels, size=20, n_outputs=7))
    with pytest.raises(ValueError, match="n_outputs"):
        train_lsm(wrong, train, test)
    wrong = LSM(LSMConfig(n_inputs=5, size=20, n_outputs=4))
    with pytest.raises(ValueError, match="n_inputs"):
        train_lsm(wrong, train, test)


def _tiny_ntidigits(path, n=60, seed=0):
    rng = np.random.default_rng(seed)
    splits = {}
    for split in ("train", "test"):
        keys, times, chans = [], [], []
        for i in range(n):
            c = i % 3  # three classes with distinct channel bands
            k = int(rng.integers(20, 60))
            times.append(np.sort(rng.uniform(0, 0.2, k)))
            chans.append(rng.integers(c * 20, c * 20 + 10, k))
            keys.append(f"man-s{i:03d}-a-{CLASSES[c]}")
        splits[split] = (keys, times, chans)
    return write_ntidigits(path, splits)


def run_train_lsm(*, data, config, epochs, out, log, seed=0):
    """``neuro train lsm`` as the family table runs it: train, then write the checkpoint."""
    return FAMILY.run(TrainRequest(data=data, config=config, epochs=epochs, seed=seed, out=out, log=log))


def test_run_train_lsm_on_an_ntidigits_file(tmp_path):
    data = _tiny_ntidigits(tmp_path / "n-tidigits.hdf5")
    path = run_train_lsm(data=data, config={"n_steps": 20, "dt": 0.01, "size": 50, "input_scale": 2.0},
                         epochs=None, out=tmp_path / "out", log=lambda s: None)
    model, meta = load_checkpoint(path)
    assert meta["model"] == "lsm" and meta["config"]["n_inputs"] == 64 and meta["config"]["n_outputs"] == 11
    assert meta["info"]["test_accuracy"] > 0.6  # three separable classes of the eleven


def test_run_train_lsm_offline_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURO_DATA", str(tmp_path / "cache"))
    path = run_train_lsm(data=None, config={"task": "digits", "max_samples": 80, "size": 40},
                         epochs=None, out=tmp_path / "out", log=lambda s: None)
    _, meta = load_checkpoint(path)
    assert meta["config"]["n_inputs"] == 256 and "digits" in meta["info"]["data"]
    assert any((tmp_path / "cache").glob("digits-nmnist-*/Train/*/*.bin"))


def test_run_train_lsm_bad_config(tmp_path):
    data = _tiny_ntidigits(tmp_path / "n-tidigits.hdf5", n=9)
    with pytest.raises(ValueError, match="unknown keys \\['radius'\\]"):
        run_train_lsm(data=data, config={"radius": 2}, epochs=None, out=tmp_path / "o", log=lambda s: None)
    with pytest.raises(ValueError, match="spectral_radius"):
        run_train_lsm(data=data, config={"spectral_radius": -1}, epochs=None, out=tmp_path / "o",
                      log=lambda s: None)
    with pytest.raises(ValueError, match="no such file"):
        run_train_lsm(data=tmp_path / "missing", config={}, epochs=None, out=tmp_path / "o", log=lambda s: None)
    assert not (tmp_path / "o").exists()
