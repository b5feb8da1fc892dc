"""N-TIDIGITS HDF5 layout: reading, key parsing, binning, corrupt files."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuro.datasets.ntidigits import (
    CLASSES,
    bin_events,
    load_ntidigits,
    parse_key,
    read_ntidigits,
    write_ntidigits,
)


def _published_layout(path, entries):
    """Write a file the way the published one is laid out (independently of write_ntidigits)."""
    with h5py.File(path, "w") as f:
        for split in ("train", "test"):
            f.create_dataset(f"{split}_labels", data=np.array([k.encode() for k, _, _ in entries]))
            ts, ad = f.create_group(f"{split}_timestamps"), f.create_group(f"{split}_addresses")
            for k, t, a in entries:
                ts.create_dataset(k, data=np.asarray(t, np.float32))
                ad.create_dataset(k, data=np.asarray(a, np.uint8))
    return path


def test_parse_key():
    assert parse_key("man-ae-a-1") == ("1", 1)
    assert parse_key("woman-xy-b-z") == ("z", 0)
    assert parse_key("man-ae-a-o") == ("o", 10)
    assert parse_key("man-ae-a-1z3") == ("1z3", 1)
    with pytest.raises(ValueError, match="key 'man-ae-a-x'"):
        parse_key("man-ae-a-x")
    assert CLASSES.index("o") == 10 and len(CLASSES) == 11


def test_read_published_layout(tmp_path):
    entries = [("man-ae-a-1", [0.015, 0.025, 0.5], [0, 63, 5]),
               ("woman-bc-b-z", [0.1], [7]),
               ("man-ae-a-1o", [0.0, 0.3], [1, 2]),  # a sequence: skipped by default
               ("man-cd-a-o", [], [])]
    path = _published_layout(tmp_path / "n-tidigits.hdf5", entries)
    times, chans, labels, keys = read_ntidigits(path, "train")
    assert keys == ["man-ae-a-1", "woman-bc-b-z", "man-cd-a-o"]
    assert labels.tolist() == [1, 0, 10]
    assert np.allclose(times[0], [0.015, 0.025, 0.5]) and chans[0].tolist() == [0, 63, 5]
    _, _, labels_all, keys_all = read_ntidigits(path, "test", isolated_only=False)
    assert len(keys_all) == 4 and labels_all[2] == 1
    ds = load_ntidigits(path, "train", n_steps=10, dt=0.01, binary=False)
    assert ds.spikes.shape == (3, 10, 64) and ds.n_classes == 11
    assert ds.spikes[0, 1, 0] == 1 and ds.spikes[0, 2, 63] == 1  # frames floor(t / dt)
    assert ds.spikes[0].sum() == 2  # t = 0.5 s is beyond 10 frames of 10 ms


def test_bin_events_counts_and_binary():
    out = bin_events([np.array([0.0, 0.001, 0.0015, 0.02])], [np.array([3, 3, 3, 4])], n_steps=3, dt=0.01)
    assert out[0, 0, 3] == 3 and out[0, 2, 4] == 1
    assert bin_events([np.array([0.0, 0.001])], [np.array([3, 3])], n_steps=1, dt=0.01, binary=True)[0, 0, 3] == 1


def test_write_and_read_back(tmp_path):
    keys = ["man-aa-a-5", "woman-bb-b-9"]
    times = [np.array([0.0, 0.1]), np.array([0.2])]
    chans = [np.array([10, 11]), np.array([12])]
    path = write_ntidigits(tmp_path / "x.hdf5", {"train": (keys, times, chans), "test": (keys, times, chans)})
    t, c, labels, k = read_ntidigits(path, "test")
    assert k == keys and labels.tolist() == [5, 9] and c[1].tolist() == [12]
    with pytest.raises(ValueError, match="split"):
        write_ntidigits(tmp_path / "y.hdf5", {"valid": (keys, times, chans)})
    assert not (tmp_path / "y.hdf5").exists()


@pytest.mark.parametrize("entry, words", [
    (("man-ae-a-1", [0.1, 0.05], [1, 2]), r"train_timestamps/man-ae-a-1: time goes backwards at event 1"),
    (("man-ae-a-1", [0.1, 0.2], [1, 64]), r"train_addresses/man-ae-a-1: event 1 has channel 64"),
    (("man-ae-a-1", [-0.1], [1]), r"times must be finite seconds >= 0"),
    (("man-ae-a-1", [0.1, 0.2], [1]), r"2 timestamps but 1 addresses"),
    (("man-ae-a-q", [0.1], [1]), r"key 'man-ae-a-q'"),
])
def test_corrupt_files_name_the_file_and_key(tmp_path, entry, words):
    path = _published_layout(tmp_path / "bad.hdf5", [entry])
    with pytest.raises(ValueError, match=r"bad\.hdf5.*" + words):
        read_ntidigits(path, "train")


def test_missing_parts(tmp_path):
    path = tmp_path / "partial.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train_labels", data=np.array([b"man-ae-a-1"]))
        f.create_group("train_timestamps")
        f.create_group("train_addresses")
    with pytest.raises(ValueError, match="has no timestamps or addresses"):
        read_ntidigits(path, "train")
    with pytest.raises(ValueError, match="missing 'test_labels'"):
        read_ntidigits(path, "test")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.hdf5: not a readable HDF5 file"):
        read_ntidigits(tmp_path / "junk.hdf5")
    with pytest.raises(FileNotFoundError, match="nothing.hdf5"):
        read_ntidigits(tmp_path / "nothing.hdf5")
