"""tonic events -> neuro spikes, checked against tonic's own ToFrame (tonic 1.7, installed by
``make test``)."""
import numpy as np
import pytest
import tonic
import tonic.transforms as T

from neuro.datasets import from_tonic, tonic_dataset


def _camera_events(n=400, seed=0, size=(5, 4, 2)):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
    ev["x"], ev["y"] = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    ev["p"], ev["t"] = rng.integers(0, size[2], n), np.sort(rng.integers(0, 50_000, n))
    return ev


def test_counts_equal_tonic_to_frame():
    ev, size = _camera_events(), (5, 4, 2)
    frames = T.ToFrame(size, time_window=1000, start_time=0, end_time=50_000)(ev.copy())
    ours = from_tonic(ev, size, dt=1e-3, n_steps=50, counts=True)
    assert frames.shape == (50, 2, 4, 5) and ours.shape == (50, 40)
    assert np.array_equal(ours, frames.reshape(50, -1))
    spikes = from_tonic(ev, size, dt=1e-3, n_steps=50)
    assert spikes.dtype == np.uint8 and np.array_equal(spikes, (frames.reshape(50, -1) > 0))


def test_audio_events_and_a_dataset():
    rng = np.random.default_rng(1)
    ev = np.zeros(300, dtype=[("t", np.float64), ("x", np.int16), ("p", np.int8)])
    ev["x"], ev["t"] = rng.integers(0, 700, 300), np.sort(rng.uniform(0, 1e6, 300))
    frames = T.ToFrame(tonic.datasets.SHD.sensor_size, time_window=10_000, start_time=0,
                       end_time=1e6)(ev.copy())
    ours = from_tonic(ev, tonic.datasets.SHD.sensor_size, dt=0.01, n_steps=100, counts=True)
    assert np.array_equal(ours, frames.reshape(100, -1))
    data = [(ev, 3), (ev[:10], 5)]
    spikes, labels = tonic_dataset(data, dt=0.01, n_steps=100, sensor_size=(700, 1, 1))
    assert spikes.shape == (100, 2, 700) and labels.tolist() == [3, 5]
    assert np.array_equal(spikes[:, 1], from_tonic(ev[:10], (700, 1, 1), dt=0.01, n_steps=100))
    assert spikes[:, 0].sum() == (frames > 0).sum() and spikes[:, 1].sum() == 10


@pytest.mark.parametrize("bad,match", [
    (lambda e: e[["x", "t"]], r"missing \['p'\]"),
    (lambda e: e, r"field 'x' ranges over \[0, 4\], outside the sensor's 3"),
])
def test_errors_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        from_tonic(bad(_camera_events()), (3, 4, 2), dt=1e-3)


def test_cli_runs_a_checkpoint_on_tonic_events(tmp_path, capsys):
    import torch

    from neuro.checkpoint import save_checkpoint
    from neuro.cli import main
    from neuro.models import SpikingMLP, SpikingMLPConfig

    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[40, 6, 3], reset="zero"))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    ev = _camera_events()
    np.save(tmp_path / "ev.npy", ev)
    assert main(["run", str(ckpt), "--input", str(tmp_path / "ev.npy")]) == 2
    assert "pass --dt SECONDS and --sensor W,H,P" in capsys.readouterr().err
    assert main(["run", str(ckpt), "--input", str(tmp_path / "ev.npy"), "--dt", "1e-3",
                 "--sensor", "5,4,2", "--out", str(tmp_path / "o.npz")]) == 0
    assert "on (50, 40) input" in capsys.readouterr().out
    assert main(["run", str(ckpt), "--input", str(tmp_path / "ev.npy"), "--dt", "1e-3",
                 "--sensor", "3,4,2"]) == 2
    assert "field 'x' ranges over" in capsys.readouterr().err
