"""N-MNIST binary format: bit layout, round trip, corrupt files, frames, the folder loader."""
from __future__ import annotations

import numpy as np
import pytest

from neuro.datasets.nmnist import (
    EVENT_DTYPE,
    decode_events,
    encode_events,
    events_to_frames,
    load_nmnist,
    read_nmnist_file,
    write_nmnist_file,
    write_nmnist_folder,
)


def _events(x, y, p, t):
    ev = np.empty(len(t), EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p, t
    return ev


def _reference_decode(raw: bytes) -> list[tuple[int, int, int, int]]:
    """The documented 40-bit layout, one big-endian integer per event."""
    out = []
    for i in range(0, len(raw), 5):
        v = int.from_bytes(raw[i:i + 5], "big")
        out.append((v >> 32, (v >> 24) & 0xFF, (v >> 23) & 1, v & 0x7FFFFF))
    return out


def test_known_event_bytes():
    raw = bytes([5, 7, 0x80 | 0x12, 0x34, 0x56,   # x 5, y 7, ON, t 0x123456
                 33, 0, 0x00 | 0x12, 0x34, 0x57])  # x 33, y 0, OFF, t 0x123457
    ev = decode_events(raw)
    assert ev["x"].tolist() == [5, 33] and ev["y"].tolist() == [7, 0]
    assert ev["p"].tolist() == [1, 0] and ev["t"].tolist() == [0x123456, 0x123457]


def test_decode_matches_the_documented_bit_layout():
    rng = np.random.default_rng(0)
    n = 500
    ev = _events(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                 np.sort(rng.integers(0, 1 << 23, n)))
    raw = encode_events(ev)
    assert len(raw) == 5 * n
    ref = _reference_decode(raw)
    dec = decode_events(raw)
    assert [tuple(int(v) for v in r) for r in zip(dec["x"], dec["y"], dec["p"], dec["t"])] == ref
    assert [tuple(int(v) for v in r) for r in zip(ev["x"], ev["y"], ev["p"], ev["t"])] == ref


def test_file_round_trip(tmp_path):
    ev = _events([0, 10, 33], [1, 2, 33], [1, 0, 1], [0, 500, 300_000])
    path = write_nmnist_file(tmp_path / "a" / "00001.bin", ev)
    assert path.stat().st_size == 15
    back = read_nmnist_file(path)
    for k in ("x", "y", "p", "t"):
        assert np.array_equal(back[k], ev[k])
    assert not list((tmp_path / "a").glob(".*"))  # no temporary file left behind


def test_overflow_marker_events():
    raw = encode_events(_events([1], [2], [1], [8000]))
    raw += bytes([0, 240, 0, 0, 0])  # y = 240: timestamp overflow marker, not a pixel
    raw += encode_events(_events([3], [4], [0], [100]))
    ev = decode_events(raw)
    assert ev["t"].tolist() == [8000, 100 + (1 << 13)] and ev["x"].tolist() == [1, 3]


def test_corrupt_files_name_the_file(tmp_path):
    bad = tmp_path / "short.bin"
    bad.write_bytes(bytes(12))
    with pytest.raises(ValueError, match=r"short\.bin.*not a multiple of 5"):
        read_nmnist_file(bad)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes([34, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"outside\.bin.*x = 34, outside the 34 x 34 sensor"):
        read_nmnist_file(outside)
    outside.write_bytes(bytes([3, 200, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"y = 200"):
        read_nmnist_file(outside)
    back = tmp_path / "back.bin"
    back.write_bytes(bytes([1, 1, 0, 0, 9, 1, 1, 0, 0, 5]))
    with pytest.raises(ValueError, match=r"back\.bin.*time goes backwards at event 1"):
        read_nmnist_file(back)
    with pytest.raises(ValueError, match="not decrease"):
        write_nmnist_file(tmp_path / "w.bin", _events([1, 1], [1, 1], [0, 0], [9, 5]))
    assert not (tmp_path / "w.bin").exists()


def test_frames_crop_polarity_and_bins():
    # sensor 34 x 34, crop 4 x 4 -> window x, y in [15, 19)
    ev = _events([15, 18, 15, 0, 16], [15, 18, 15, 0, 17], [1, 0, 1, 1, 1], [0, 999, 1000, 10, 5000])
    on = events_to_frames(ev, n_steps=3, dt_us=1000, crop=(4, 4), polarity="on")
    assert on.shape == (3, 16)
    assert on[0, 0] == 1 and on[1, 0] == 1  # (15,15) at t=0 and t=1000
    assert on.sum() == 2  # (16,17) at t=5000 is beyond 3 frames; (0,0) outside the crop
    both = events_to_frames(ev, n_steps=3, dt_us=1000, crop=(4, 4), polarity="both")
    assert both.shape == (3, 32) and both[0, 16 + 0] == 1 and both[0, 3 * 4 + 3] == 1  # OFF at (18,18)
    merged = events_to_frames(ev, n_steps=6, dt_us=1000, crop=(4, 4), polarity="merge")
    assert merged.sum() == 4 and merged[5, 2 * 4 + 1] == 1
    dup = _events([15] * 3, [15] * 3, [1] * 3, [1, 2, 3])
    assert events_to_frames(dup, n_steps=1, dt_us=1000, crop=(4, 4), polarity="on")[0, 0] == 3
    assert events_to_frames(dup, n_steps=1, dt_us=1000, crop=(4, 4), polarity="on", binary=True)[0, 0] == 1
    with pytest.raises(ValueError, match="polarity"):
        events_to_frames(ev, n_steps=3, dt_us=1000, polarity="up")
    with pytest.raises(ValueError, match="crop"):
        events_to_frames(ev, n_steps=3, dt_us=1000, crop=(40, 4))


def test_load_folder_and_cache(tmp_path):
    rng = np.random.default_rng(1)
    samples, labels = [], []
    for i in range(12):
        n = 50
        samples.append(_events(rng.integers(9, 25, n), rng.integers(9, 25, n), rng.integers(0, 2, n),
                               np.sort(rng.integers(0, 300_000, n))))
        labels.append(i % 10)
    write_nmnist_folder(tmp_path / "nm", "train", samples, labels)
    write_nmnist_folder(tmp_path / "nm", "test", samples[:4], labels[:4])
    ds = load_nmnist(tmp_path / "nm", "train", cache_dir=tmp_path / "cache")
    assert ds.spikes.shape == (12, 50, 256) and ds.n_classes == 10
    assert sorted(ds.labels.tolist()) == sorted(labels)
    cached = list((tmp_path / "cache" / "binned").glob("nmnist_train-*.npz"))
    assert len(cached) == 1
    again = load_nmnist(tmp_path / "nm", "train", cache_dir=tmp_path / "cache")
    assert np.array_equal(again.spikes, ds.spikes)
    # a changed file invalidates the cache
    first = sorted((tmp_path / "nm" / "Train" / "0").glob("*.bin"))[0]
    write_nmnist_file(first, samples[0][:10])
    changed = load_nmnist(tmp_path / "nm", "train", cache_dir=tmp_path / "cache")
    assert changed.spikes.sum() < ds.spikes.sum()
    sub = load_nmnist(tmp_path / "nm", "train", max_samples=5, cache=False)
    assert len(sub) == 5
    with pytest.raises(FileNotFoundError, match="Train"):
        load_nmnist(tmp_path / "missing", "train")
    with pytest.raises(ValueError, match="split"):
        load_nmnist(tmp_path / "nm", "valid")
