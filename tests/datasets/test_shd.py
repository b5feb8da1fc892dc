"""SHD/SSC readers on small files written in the published HDF5 layout (no network)."""
import gzip
import hashlib
import io
import math
import os
from pathlib import Path

import h5py  # installed by the set-up (neuro[datasets]); a missing h5py fails, never skips
import numpy as np
import pytest

from neuro.datasets import bin_spikes, load_shd, load_ssc, read_heidelberg, shd  # noqa: E402


def make_samples(n: int = 6, n_classes: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = int(rng.integers(40, 300))
        t = rng.uniform(0.0, 1.2, size=k)
        u = rng.integers(0, 700, size=k)
        if i == 1:  # a burst: many spikes in one frame and group, so counts exceed 1
            t = np.concatenate([t, rng.uniform(0.500, 0.509, size=50)])
            u = np.concatenate([u, rng.integers(100, 105, size=50)])
        order = np.argsort(t, kind="stable")
        times.append(t[order].astype(np.float32))
        units.append(u[order].astype(np.uint16))
    times.append(np.zeros(0, np.float32))  # a sample without spikes
    units.append(np.zeros(0, np.uint16))
    labels = rng.integers(0, n_classes, size=n + 1)
    return times, units, labels


def write_h5(path: Path, times, units, labels, *, skip=(), unit_dtype=np.uint16) -> Path:
    """The published layout: vlen float32 spikes/times, vlen uint16 spikes/units, uint16 labels."""
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        if "spikes/times" not in skip:
            ds = spikes.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
            for i, t in enumerate(times):
                ds[i] = np.asarray(t, np.float32)
        if "spikes/units" not in skip:
            ds = spikes.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(unit_dtype))
            for i, u in enumerate(units):
                ds[i] = np.asarray(u, unit_dtype)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        extra = f.create_group("extra")
        extra.create_dataset("speaker", data=np.zeros(len(labels), np.uint16))
        extra.create_dataset("keys", data=np.array([b"zero", b"one"]))
        extra.create_group("meta_info").create_dataset("gender", data=np.array([b"female"]))
    return path


def gzip_file(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def naive_bin(times, units, dt, group, max_time):
    """Reference: a Python loop over every spike."""
    if max_time is None:
        t_max = max((float(t) for ts in times for t in ts), default=0.0)
        n_t = math.floor(t_max / dt) + 1
    else:
        n_t = math.ceil(round(max_time / dt, 9))
    out = np.zeros((len(times), n_t, 700 // group), np.int64)
    for i, (ts, us) in enumerate(zip(times, units)):
        for t, u in zip(ts, us):
            t = float(t)
            frame = math.floor(t / dt)
            if (max_time is not None and t >= max_time) or frame >= n_t:
                continue
            out[i, frame, int(u) // group] += 1
    return out


def test_read_heidelberg_roundtrip(tmp_path):
    times, units, labels = make_samples()
    path = write_h5(tmp_path / "shd_train.h5", times, units, labels)
    t, u, y = read_heidelberg(path, n_classes=20)
    assert len(t) == len(u) == len(times)
    assert all(np.array_equal(a, b) for a, b in zip(t, times))
    assert all(np.array_equal(a, b) for a, b in zip(u, units))
    assert y.dtype == np.int64 and np.array_equal(y, labels)
    t2, _, _ = read_heidelberg(gzip_file(path), n_classes=20)
    assert all(np.array_equal(a, b) for a, b in zip(t2, times))


@pytest.mark.parametrize("dt,group,max_time", [(0.01, 5, 1.0), (0.01, 1, None), (0.025, 7, 0.3),
                                               (0.001, 10, 1.2)])
def test_bin_spikes_matches_naive_loop(dt, group, max_time):
    times, units, _ = make_samples()
    got = bin_spikes(times, units, dt=dt, group=group, max_time=max_time)
    want = naive_bin(times, units, dt, group, max_time)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert np.array_equal(got, want)
    assert want.max() > 1  # the burst gives real counts, not 0/1


def test_grouping_sums_channels():
    times, units, _ = make_samples()
    full = bin_spikes(times, units, group=1, max_time=1.0).astype(np.int64)
    grouped = bin_spikes(times, units, group=5, max_time=1.0)
    assert full.shape[-1] == 700 and grouped.shape == full.shape[:2] + (140,)
    assert np.array_equal(full.reshape(*full.shape[:2], 140, 5).sum(-1), grouped)


def test_binning_edges_and_dtype():
    times = [np.array([0.0, 0.0099, 0.01, 0.9999, 1.0, 1.15], np.float64)]
    units = [np.array([0, 4, 5, 699, 3, 3])]
    x = bin_spikes(times, units, dt=0.01, group=5, max_time=1.0)
    assert x.shape == (1, 100, 140)  # T = ceil(1.0 / 0.01); spikes at or after 1.0 s dropped
    assert x[0, 0, 0] == 2 and x[0, 1, 1] == 1 and x[0, 99, 139] == 1 and x.sum() == 4
    assert bin_spikes(times, units, dt=0.01, max_time=0.07).shape[1] == 7  # not 8 (float noise)
    # max_time=None keeps every spike: T = floor(t_max / dt) + 1
    y = bin_spikes([np.array([0.5])], [np.array([0])], dt=0.01)
    assert y.shape[1] == 51 and y[0, 50, 0] == 1
    many = bin_spikes([np.full(300, 0.2)], [np.full(300, 7)], max_time=1.0)
    assert many.dtype == np.uint16 and many[0, 20, 1] == 300
    with pytest.raises(ValueError, match="group"):
        bin_spikes(times, units, group=3)
    with pytest.raises(ValueError, match="unit 700 >= 700"):
        bin_spikes([np.array([0.1])], [np.array([700])])


def test_load_shd_shapes_and_cache(tmp_path, monkeypatch):
    times, units, labels = make_samples()
    data = tmp_path / "data"
    data.mkdir()
    write_h5(data / "shd_train.h5", times, units, labels)
    cache = tmp_path / "cache"
    ds = load_shd(data=data, cache_dir=cache)
    assert ds.spikes.shape == (len(times), 100, 140) and ds.spikes.dtype == np.uint8
    assert ds.n_classes == 20 and ds.labels.dtype == np.int64
    assert np.array_equal(ds.labels, labels)
    assert np.array_equal(ds.spikes, naive_bin(times, units, 0.01, 5, 1.0))
    x, y = next(ds.batches(4))
    assert x.shape == (100, 4, 140) and x.dtype.is_floating_point and y.shape == (4,)
    cached = list((cache / "binned").glob("*.npz"))
    assert [p.name for p in cached] == ["shd_train-dt0.01-group5-max1.0.npz"]

    def boom(*args, **kwargs):
        raise AssertionError("the second load must come from the .npz cache")

    monkeypatch.setattr(shd, "read_heidelberg", boom)
    again = load_shd(data=data, cache_dir=cache)
    assert np.array_equal(again.spikes, ds.spikes) and np.array_equal(again.labels, ds.labels)
    # a changed source file invalidates the cache
    st = (data / "shd_train.h5").stat()
    os.utime(data / "shd_train.h5", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="npz cache"):
        load_shd(data=data, cache_dir=cache)


def test_load_from_gz_file_and_env_cache(tmp_path, monkeypatch):
    times, units, labels = make_samples(n_classes=35)
    plain = write_h5(tmp_path / "ssc_valid.h5", times, units, labels)
    gz_dir = tmp_path / "gz"
    gz_dir.mkdir()
    gzip_file(plain).rename(gz_dir / "ssc_valid.h5.gz")
    a = load_ssc("valid", data=gz_dir, cache_dir=tmp_path / "c1", group=10, max_time=None)
    b = load_ssc("valid", data=plain, cache_dir=tmp_path / "c2", group=10, max_time=None)
    assert a.n_classes == 35 and a.spikes.shape[2] == 70
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.labels, labels)
    monkeypatch.setenv("NEURO_DATA", str(gz_dir))
    c = load_ssc("valid", group=10, max_time=None)
    assert np.array_equal(c.spikes, a.spikes)
    assert (gz_dir / "binned").is_dir()


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_shd("test", cache_dir=tmp_path)
    msg = str(err.value)
    assert "shd_test.h5" in msg and str(tmp_path) in msg and "download=True" in msg
    assert "https://zenkelab.org/datasets/shd_test.h5.gz" in msg and "--data" in msg
    with pytest.raises(ValueError, match="split"):
        load_ssc("dev", cache_dir=tmp_path)


def _bad(case: str, path: Path) -> Path:
    times, units, labels = make_samples(n=5)
    unit_dtype = np.uint16
    skip: tuple[str, ...] = ()
    if case in ("spikes/times", "spikes/units", "labels"):
        skip = (case,)
    elif case == "negative time":
        times[2] = times[2].copy()
        times[2][0] = -0.5
    elif case == "nan time":
        times[2] = times[2].copy()
        times[2][3] = np.nan
    elif case == "unsorted":
        times[1] = times[1][::-1].copy()
    elif case == "unit >= 700":
        units[3] = units[3].copy()
        units[3][5] = 731
    elif case == "unit < 0":
        unit_dtype = np.int32
        units[0] = units[0].astype(np.int32)
        units[0][1] = -1
    elif case == "length mismatch":
        units[1] = units[1][:-1]
    elif case == "label range":
        labels[4] = 20
    elif case == "label count":
        labels = labels[:3]
    return write_h5(path, times, units, labels, skip=skip, unit_dtype=unit_dtype)


@pytest.mark.parametrize("case,pattern", [
    ("spikes/times", r"missing key 'spikes/times'"),
    ("spikes/units", r"missing key 'spikes/units'"),
    ("labels", r"missing key 'labels'"),
    ("negative time", r"spikes/times\[2\] holds time -0.5"),
    ("nan time", r"spikes/times\[2\] holds time nan"),
    ("unsorted", r"spikes/times\[1\] is not sorted"),
    ("unit >= 700", r"spikes/units\[3\] holds unit 731 >= 700"),
    ("unit < 0", r"spikes/units\[0\] holds unit -1 < 0"),
    ("length mismatch", r"spikes/times\[1\] has \d+ spikes but spikes/units\[1\] has"),
    ("label range", r"labels\[4\] = 20 is outside \[0, 20\)"),
    ("label count", r"labels has 3 samples but spikes/times has 6"),
])
def test_bad_input_names_file_and_key(tmp_path, case, pattern):
    path = _bad(case, tmp_path / "shd_train.h5")
    with pytest.raises(ValueError, match=pattern) as err:
        read_heidelberg(path, n_classes=20)
    assert str(path) in str(err.value)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=pattern):
        load_shd(data=path, cache_dir=cache)
    assert not (cache / "binned").exists() or not any((cache / "binned").iterdir())


def test_truncated_and_corrupt_files(tmp_path):
    times, units, labels = make_samples()
    path = write_h5(tmp_path / "shd_test.h5", times, units, labels)
    gz = gzip_file(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable HDF5 file") as err:
        read_heidelberg(path)
    assert "shd_test.h5" in str(err.value)
    gz.write_bytes(gz.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"shd_test\.h5\.gz: not a readable gzip file"):
        read_heidelberg(gz)
    junk = tmp_path / "ssc_test.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match=r"ssc_test\.h5: not a readable HDF5 file"):
        load_ssc("test", data=junk, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"labels\[\d+\] = \d+ is outside \[0, 35\)"):
        write_h5(tmp_path / "ssc_valid.h5", times, units, np.full(len(labels), 35))
        load_ssc("valid", data=tmp_path, cache_dir=tmp_path / "c")


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Patch urlopen to serve a gzipped fixture file; records the URLs asked for."""
    times, units, labels = make_samples()
    src = write_h5(tmp_path / "fixture.h5", times, units, labels)
    payload = gzip.compress(src.read_bytes())
    urls: list[str] = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(shd.urllib.request, "urlopen", fake_urlopen)
    return payload, urls, labels


def test_download_checksum_mismatch_leaves_nothing(tmp_path, served):
    _, urls, _ = served
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch for shd_train.h5.gz"):
        load_shd(cache_dir=cache, download=True)
    assert urls == ["https://zenkelab.org/datasets/shd_train.h5.gz"]
    assert list(cache.iterdir()) == []


def test_download_verified(tmp_path, served, monkeypatch):
    payload, _, labels = served
    monkeypatch.setitem(shd.MD5, "shd_train.h5.gz", hashlib.md5(payload).hexdigest())
    cache = tmp_path / "cache"
    ds = load_shd(cache_dir=cache, download=True)
    assert np.array_equal(ds.labels, labels)
    assert sorted(p.name for p in cache.iterdir()) == ["binned", "shd_train.h5"]
    assert (cache / "shd_train.h5").read_bytes() == gzip.decompress(payload)


def test_download_without_published_checksum(tmp_path, served, capsys):
    payload, _, labels = served
    assert shd.MD5["ssc_test.h5.gz"] is None
    cache = tmp_path / "cache"
    digest = hashlib.md5(payload).hexdigest()
    with pytest.raises(ValueError, match="allow_unverified=True"):
        load_ssc("test", cache_dir=cache, download=True)
    assert digest in capsys.readouterr().err
    assert list(cache.iterdir()) == []
    ds = load_ssc("test", cache_dir=cache, download=True, allow_unverified=True)
    assert np.array_equal(ds.labels, labels)


def test_published_checksum_table():
    assert set(shd.MD5) == {f"{k}_{s}.h5.gz" for k, splits in shd.SPLITS.items() for s in splits}
    for value in shd.MD5.values():
        assert value is None or (len(value) == 32 and int(value, 16) >= 0)
