"""DVS128 Gesture reader: AEDAT 3.1 files built byte by byte, header and packet validation, labels,
25 ms polarity-merged frames, the split lists, the cache, and the stand-in read back."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from neuro.datasets import dvs_gesture as dg

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def _packet(etype, events, overflow=0, size=8):
    n = len(events)
    body = b"".join(struct.pack("<Ii", d, ts) for d, ts in events)
    return struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, n, n, n) + body


def _pol(x, y, p, valid=1):
    return valid | (p << 1) | (y << 2) | (x << 17)


def test_reader_decodes_polarity_packets_and_skips_others(tmp_path):
    f = tmp_path / "a.aedat"
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 7, 5)
    f.write_bytes(HEADER + _packet(1, [(_pol(3, 4, 1), 10), (_pol(127, 0, 0), 20),
                                       (_pol(5, 5, 1, valid=0), 30)])
                  + special + _packet(1, [(_pol(1, 2, 0), 40)], overflow=1))
    ev = dg.read_aedat(f)
    assert ev["x"].tolist() == [3, 127, 1] and ev["y"].tolist() == [4, 0, 2]
    assert ev["p"].tolist() == [1, 0, 0]
    assert ev["t"].tolist() == [10, 20, (1 << 31) | 40]


@pytest.mark.parametrize("bad,match", [
    (b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "not an AEDAT 3.1"),
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "END-HEADER"),
    (HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 5, 5, 5), "past the end"),
    (HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 2, 2), "bad packet header"),
    (HEADER + struct.pack("<hhi", 1, 1, 8), "truncated"),
    (HEADER + struct.pack("<hhiiiiii", 1, 1, 6, 4, 0, 1, 1, 1) + b"\0" * 6, "event size"),
])
def test_reader_rejects_malformed_files(tmp_path, bad, match):
    f = tmp_path / "bad.aedat"
    f.write_bytes(bad)
    with pytest.raises(ValueError, match=match):
        dg.read_aedat(f)


def test_write_read_round_trip_and_frames(tmp_path):
    t = np.array([0, 10_000, 24_999, 25_000, 60_000])
    x, y, p = np.array([1, 1, 2, 3, 4]), np.array([0, 0, 5, 6, 7]), np.array([0, 1, 1, 0, 1])
    dg.write_aedat(tmp_path / "r.aedat", t, x, y, p, packet=2)
    ev = dg.read_aedat(tmp_path / "r.aedat")
    assert ev["t"].tolist() == t.tolist() and ev["x"].tolist() == x.tolist()
    fr = dg.to_frames(ev, 0, 75_000)
    assert fr.shape == (3, 1, 128, 128) and fr.sum() == 5
    assert fr[0, 0, 0, 1] == 2  # two polarities merged in one pixel
    assert fr[0, 0, 5, 2] == 1 and fr[1, 0, 6, 3] == 1 and fr[2, 0, 7, 4] == 1
    assert dg.to_frames(ev, 0, 75_000, pool=4).shape == (3, 1, 32, 32)


def test_labels_and_splits(tmp_path):
    (tmp_path / "u_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,10,20\n11,30,90\n")
    assert dg.read_labels(tmp_path / "u_labels.csv") == [(2, 10, 20), (10, 30, 90)]
    (tmp_path / "v_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,10,20\n")
    with pytest.raises(ValueError, match="bad row"):
        dg.read_labels(tmp_path / "v_labels.csv")
    with pytest.raises(FileNotFoundError, match="trials_to_train"):
        dg.split_files(tmp_path, "train")


def test_standin_reads_back_and_classes_differ(tmp_path):
    root = dg.write_standin(tmp_path, n_users=2, gesture_ms=200, rate_per_ms=20, test_users=1)
    train = dg.load_split(root, "train", pool=4)
    test = dg.load_split(root, "test", pool=4)
    assert len(train) == 11 and len(test) == 11
    assert sorted(c for _, c in train) == list(range(11))
    frames, _ = train[0]
    assert frames.shape[1:] == (1, 32, 32) and 6 <= frames.shape[0] <= 10
    assert any(p.name.endswith(".pt") for p in root.iterdir())  # cached
    again = dg.load_split(root, "train", pool=4)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(train, again))
    # trajectories differ: the per-class centroid paths are not all the same
    def path(fr):
        w = fr[:, 0].sum((1, 2)).clamp(min=1)
        xs = (fr[:, 0].sum(1) * torch.arange(32)).sum(1) / w
        return xs
    by = {c: path(fr) for fr, c in train}
    assert (by[2][-1] - by[2][0]).abs() > 8  # a horizontal sweep moves
    assert (by[10][-1] - by[10][0]).abs() < 4  # the flicker stays
