import numpy as np
import pytest

from neuro.datasets import load_spikes, save_spikes, spike_pattern_task


def test_task_is_deterministic_and_shaped():
    a_tr, a_te = spike_pattern_task(50, 20, seed=3)
    b_tr, _ = spike_pattern_task(50, 20, seed=3)
    assert np.array_equal(a_tr.spikes, b_tr.spikes)
    assert a_tr.spikes.shape == (50, 50, 40) and a_tr.spikes.dtype == np.uint8
    x, y = next(a_tr.batches(8))
    assert x.shape == (50, 8, 40) and y.shape == (8,)
    c_tr, _ = spike_pattern_task(50, 20, seed=4)
    assert not np.array_equal(a_tr.spikes, c_tr.spikes)


def test_classes_share_channels_but_differ_in_timing():
    tr, _ = spike_pattern_task(400, 10, noise_rate=0.0, p_drop=0.0, jitter=0)
    per_class = [tr.spikes[tr.labels == c].mean(0) for c in range(tr.n_classes)]
    # same template for every sample of a class
    assert all(set(np.unique(p)) <= {0.0, 1.0} for p in per_class)
    chans = [set(np.nonzero(p.sum(0))[0]) for p in per_class]
    assert any(chans[0] & c for c in chans[1:])


def test_spike_file_roundtrip(tmp_path):
    arr = (np.random.rand(10, 2, 3) < 0.5).astype(np.uint8)
    save_spikes(tmp_path / "a.npz", arr)
    assert np.array_equal(load_spikes(tmp_path / "a.npz"), arr)
    with pytest.raises(ValueError, match="no array 'spikes'"):
        np.savez(tmp_path / "b.npz", other=arr)
        load_spikes(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_spikes(tmp_path / "c.npz")
