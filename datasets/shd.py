"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) readers.

Cramer, Stradmann, Schemmel, Zenke (2020), "The Heidelberg spiking data sets for the systematic
evaluation of spiking neural networks", IEEE TNNLS, doi:10.1109/TNNLS.2020.3044364.

**Format.** One HDF5 file per split (``shd_train.h5``, ``shd_test.h5``, ``ssc_train.h5``,
``ssc_valid.h5``, ``ssc_test.h5``; published gzipped as ``*.h5.gz``). The reader uses three datasets
and ignores the rest (``extra/``: speaker, keys, meta_info):

- ``spikes/times``: ragged (HDF5 vlen) array, one float array per sample: spike times in **seconds**,
  sorted ascending, all >= 0.
- ``spikes/units``: ragged integer array (uint16), one per sample, same lengths as ``spikes/times``:
  the channel of each spike, ``0 <= unit < 700``.
- ``labels``: integer class per sample (SHD 20 classes, SSC 35 classes).

**Binning** (:func:`bin_spikes`). Frame index ``floor(t / dt)`` (float64 arithmetic, ``dt`` in
seconds, 0.01 = 10 ms frames). With ``max_time`` given there are ``T = ceil(max_time / dt)`` frames
and spikes at or beyond ``max_time`` are dropped; with ``max_time=None``, ``T = floor(t_max / dt) + 1``
where ``t_max`` is the last spike of the whole set, so no spike is dropped.

**Grouping.** Channel ``unit // group``: the 700 channels are summed in adjacent groups of ``group``
(5 gives 140 inputs, as in DCLS-Delays). Values are spike **counts** per frame and group (uint8, or
uint16 when a count exceeds 255), not 0/1.

**Cache layout.** The cache directory is ``cache_dir``, else ``$NEURO_DATA``, else
``~/.cache/neuro/data``::

    <cache>/shd_train.h5                         raw files (downloaded ones are gunzipped here)
    <cache>/binned/shd_train-dt0.01-group5-max1.0.npz   binned arrays for one parameter set

A binned ``.npz`` records the raw file it came from (path, size, mtime) and is rebuilt when that
changes. ``data=PATH`` (the CLI's ``--data PATH``) names a file or a directory holding
``<name>.h5`` or ``<name>.h5.gz`` (a ``.gz`` is decompressed to a temporary file for reading);
binned arrays still go to the cache directory.

**Download and checksums.** ``download=True`` fetches ``<name>.h5.gz`` from :data:`BASE_URL` with
``urllib``, checks its MD5 against :data:`MD5` and gunzips it into the cache atomically (temporary
file + rename). A mismatch discards the download. Where :data:`MD5` holds ``None`` (no published
value could be confirmed), the hash is printed and the file is refused unless
``allow_unverified=True``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuro.safeio import bounded_copy, check_hdf5_dataset, hdf5_file

from .io import read_binned_cache, write_binned_cache
from .synthetic import SpikeDataset

N_UNITS = 700
N_CLASSES = {"shd": 20, "ssc": 35}
SPLITS = {"shd": ("train", "test"), "ssc": ("train", "valid", "test")}
BASE_URL = "https://zenkelab.org/datasets/"
# MD5 of the published .h5.gz files (https://zenkelab.org/datasets/md5sums.txt). The SHD values
# agree across several independent public loaders (some use the older compneuro.net mirror); they
# were not fetched from the server here. The SSC values could not be confirmed, so they are None
# (one public repository records 555645b13e15fe270fbfe39cb763f805 for ssc_valid.h5.gz).
MD5: dict[str, str | None] = {
    "shd_train.h5.gz": "d47c9825dee33347913e8ce0f2be08b0",
    "shd_test.h5.gz": "3062a80ec0c5719404d5b02e166543b1",
    "ssc_train.h5.gz": None,
    "ssc_valid.h5.gz": None,
    "ssc_test.h5.gz": None,
}
_KEYS = ("spikes/times", "spikes/units", "labels")
_CHUNK = 256  # samples per vectorised block (bounds the temporary memory)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "reading SHD/SSC files needs h5py: pip install 'neuro[datasets]' (or pip install h5py)"
        ) from None
    return h5py


def default_cache_dir() -> Path:
    """``$NEURO_DATA`` if set, else ``~/.cache/neuro/data``."""
    env = os.environ.get("NEURO_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuro" / "data"


# ---------------------------------------------------------------------------------------- reading
def read_heidelberg(
    path: str | Path, *, n_classes: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Read and validate one SHD/SSC file (``.h5`` or ``.h5.gz``).

    Returns ``(times, units, labels)``: per-sample arrays of spike times (seconds) and channels,
    and labels int64 ``[N]``. Any departure from the published layout (missing key, unit outside
    ``[0, 700)``, negative, non-finite or decreasing times, times/units length mismatch, label
    outside ``[0, n_classes)``, truncated or corrupt file) raises ``ValueError`` naming the file and
    the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    h5py = _h5py()
    if path.suffix == ".gz":
        with tempfile.TemporaryDirectory(prefix="neuro-h5-") as tmp:
            plain = Path(tmp) / path.stem
            try:
                with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                    bounded_copy(src, dst, path.stat().st_size, str(path))
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{path}: not a readable gzip file ({exc})") from None
            return _read_h5(h5py, plain, path, n_classes)
    return _read_h5(h5py, path, path, n_classes)


def _read_h5(
    h5py: Any, src: Path, name: Path, n_classes: int | None
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    with hdf5_file(src, str(name)) as f:  # h5py's errors on a corrupt file: one ValueError
        arrays = {}
        for key in _KEYS:
            try:
                ds = f.get(key)
            except (KeyError, TypeError, ValueError):  # e.g. "spikes" is a dataset, not a group
                ds = None
            if not isinstance(ds, h5py.Dataset):
                raise ValueError(
                    f"{name}: missing key {key!r} (the published layout has {', '.join(_KEYS)})"
                )
            ragged = key != "labels"
            base = h5py.check_vlen_dtype(ds.dtype) if ragged else ds.dtype
            if ds.ndim != 1 or base is None:
                what = "a 1-D ragged (vlen) array" if ragged else "a 1-D integer array"
                raise ValueError(f"{name}: {key} must be {what}, got shape {ds.shape} {ds.dtype}")
            want = "f" if key == "spikes/times" else "iu"
            if np.dtype(base).kind not in want:
                kind = "float" if want == "f" else "integer"
                raise ValueError(f"{name}: {key} must hold {kind} values, got {base}")
            check_hdf5_dataset(ds, str(name))  # declared (lazy) shape before reading
            try:
                arrays[key] = ds[()]
            except (OSError, RuntimeError, ValueError) as exc:
                raise ValueError(f"{name}: {key}: cannot read, truncated or corrupt ({exc})") from None
    times, units = list(arrays["spikes/times"]), list(arrays["spikes/units"])
    labels = np.asarray(arrays["labels"]).astype(np.int64)
    n = len(times)
    for key, count in (("spikes/units", len(units)), ("labels", len(labels))):
        if count != n:
            raise ValueError(f"{name}: {key} has {count} samples but spikes/times has {n}")
    _check_events(times, units, N_UNITS, str(name))
    bad = (labels < 0) | (labels >= (n_classes if n_classes is not None else np.inf))
    if bad.any():
        i = int(np.argmax(bad))
        hi = f", {n_classes})" if n_classes is not None else ", ...)"
        raise ValueError(f"{name}: labels[{i}] = {labels[i]} is outside [0{hi}")
    return times, units, labels


def _check_events(times: Sequence[np.ndarray], units: Sequence[np.ndarray], n_channels: int,
                  name: str) -> None:
    """Vectorised checks over blocks of samples; the message names the first bad sample."""
    for a in range(0, len(times), _CHUNK):
        t_block, u_block = times[a : a + _CHUNK], units[a : a + _CHUNK]
        lt = np.array([np.size(x) for x in t_block], dtype=np.int64)
        lu = np.array([np.size(x) for x in u_block], dtype=np.int64)
        if (lt != lu).any():
            i = int(np.argmax(lt != lu))
            raise ValueError(
                f"{name}: spikes/times[{a + i}] has {lt[i]} spikes but spikes/units[{a + i}] has {lu[i]}"
            )
        if lt.sum() == 0:
            continue
        ends = np.cumsum(lt)

        def sample(j: int, ends: np.ndarray = ends, a: int = a) -> int:
            return a + int(np.searchsorted(ends, j, side="right"))

        with np.errstate(invalid="ignore", over="ignore"):  # corrupt values are reported below
            t = np.concatenate([np.ravel(x) for x in t_block]).astype(np.float64)
            u = np.concatenate([np.ravel(x) for x in u_block]).astype(np.int64)
        bad = ~np.isfinite(t) | (t < 0)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(
                f"{name}: spikes/times[{sample(j)}] holds time {t[j]}; times must be finite seconds >= 0"
            )
        for bad, rel in ((u >= n_channels, f">= {n_channels}"), (u < 0, "< 0")):
            if bad.any():
                j = int(np.argmax(bad))
                raise ValueError(f"{name}: spikes/units[{sample(j)}] holds unit {u[j]} {rel}")
        down = np.diff(t) < 0
        starts = ends[:-1][(ends[:-1] > 0) & (ends[:-1] < len(t))]
        down[starts - 1] = False  # a new sample may start earlier than the previous one ended
        if down.any():
            j = int(np.argmax(down)) + 1
            raise ValueError(
                f"{name}: spikes/times[{sample(j)}] is not sorted: {t[j]} after {t[j - 1]}"
            )


# ---------------------------------------------------------------------------------------- binning
def _n_frames(dt: float, max_time: float) -> int:
    """``ceil(max_time / dt)``, robust to float noise (``0.07 / 0.01`` gives 7, not 8)."""
    return int(np.ceil(round(max_time / dt, 9)))


def bin_spikes(
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    *,
    dt: float = 0.01,
    n_channels: int = N_UNITS,
    group: int = 5,
    max_time: float | None = None,
) -> np.ndarray:
    """Count spikes per frame and channel group: ``[N, T, n_channels // group]`` uint8 (uint16 if a
    count exceeds 255). Rules in the module docstring; spikes at or beyond ``max_time`` are dropped.
    """
    if dt <= 0 or group < 1 or n_channels % group:
        raise ValueError(
            f"bin_spikes: need dt > 0 and group dividing n_channels, got dt={dt}, group={group}, "
            f"n_channels={n_channels}"
        )
    if len(times) != len(units):
        raise ValueError(f"bin_spikes: {len(times)} time arrays but {len(units)} unit arrays")
    _check_events(times, units, n_channels, "bin_spikes")
    if max_time is None:
        t_max = max((float(np.max(x)) for x in times if np.size(x)), default=0.0)
        n_t = int(np.floor(t_max / dt)) + 1
    else:
        if max_time <= 0:
            raise ValueError(f"bin_spikes: max_time must be > 0, got {max_time}")
        n_t = _n_frames(dt, max_time)
    n, c = len(times), n_channels // group
    out = np.zeros((n, n_t, c), dtype=np.uint8)
    for a in range(0, n, _CHUNK):
        t_block, u_block = times[a : a + _CHUNK], units[a : a + _CHUNK]
        m = len(t_block)
        lengths = np.array([np.size(x) for x in t_block], dtype=np.int64)
        if lengths.sum() == 0:
            continue
        t = np.concatenate([np.ravel(x) for x in t_block]).astype(np.float64)
        ch = np.concatenate([np.ravel(x) for x in u_block]).astype(np.int64) // group
        frame = np.floor(t / dt).astype(np.int64)
        keep = frame < n_t
        if max_time is not None:
            keep &= t < max_time
        s = np.repeat(np.arange(m), lengths)
        flat = (s[keep] * n_t + frame[keep]) * c + ch[keep]
        counts = np.bincount(flat, minlength=m * n_t * c).reshape(m, n_t, c)
        peak = int(counts.max())
        if peak > np.iinfo(np.uint16).max:
            raise ValueError(f"bin_spikes: {peak} spikes in one frame and group; use a smaller dt")
        if peak > np.iinfo(out.dtype).max:
            out = out.astype(np.uint16)
        out[a : a + m] = counts
    return out


# ---------------------------------------------------------------------------------------- loading
def load_shd(
    split: str = "train",
    *,
    data: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = False,
    allow_unverified: bool = False,
    dt: float = 0.01,
    group: int = 5,
    max_time: float | None = 1.0,
) -> SpikeDataset:
    """Spiking Heidelberg Digits, ``split`` in ``train``/``test``: ``[N, T, 700 // group]``, 20 classes."""
    return _load("shd", split, data, cache_dir, download, allow_unverified, dt, group, max_time)


def load_ssc(
    split: str = "train",
    *,
    data: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = False,
    allow_unverified: bool = False,
    dt: float = 0.01,
    group: int = 5,
    max_time: float | None = 1.0,
) -> SpikeDataset:
    """Spiking Speech Commands, ``split`` in ``train``/``valid``/``test``: 35 classes."""
    return _load("ssc", split, data, cache_dir, download, allow_unverified, dt, group, max_time)


def _load(kind: str, split: str, data: str | Path | None, cache_dir: str | Path | None,
          download: bool, allow_unverified: bool, dt: float, group: int,
          max_time: float | None) -> SpikeDataset:
    if split not in SPLITS[kind]:
        raise ValueError(f"load_{kind}: split must be one of {SPLITS[kind]}, got {split!r}")
    name = f"{kind}_{split}.h5"
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    src = _find(kind, name, data, cache, download, allow_unverified)
    st = src.stat()
    tag = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|dt={dt!r}|group={group}|max={max_time!r}"
    max_s = "all" if max_time is None else repr(float(max_time))
    npz = cache / "binned" / f"{kind}_{split}-dt{float(dt)!r}-group{group}-max{max_s}.npz"
    n_classes = N_CLASSES[kind]
    cached = read_binned_cache(npz, tag)
    if cached is not None:
        return SpikeDataset(*cached, n_classes)
    times, units, labels = read_heidelberg(src, n_classes=n_classes)
    spikes = bin_spikes(times, units, dt=dt, group=group, max_time=max_time)
    del times, units
    write_binned_cache(npz, spikes, labels, tag)
    return SpikeDataset(spikes, labels, n_classes)


def _find(kind: str, name: str, data: str | Path | None, cache: Path, download: bool,
          allow_unverified: bool) -> Path:
    if data is not None:
        root = Path(data).expanduser()
        if root.is_file():
            return root
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such file or directory (data=PATH / --data PATH)")
        places = [root]
    else:
        places = [cache]
    for place in places:
        for candidate in (place / name, place / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    if download and data is None:
        return download_file(name, cache, allow_unverified=allow_unverified)
    url = f"{BASE_URL}{name}.gz"
    where = "put the file there" if data is not None else "put the file there or pass data=PATH"
    raise FileNotFoundError(
        f"{kind.upper()} needs {name} (or {name}.gz), not found in {places[0]}: {where} "
        f"(--data PATH on the command line, a file or its directory), or download it: "
        f"load_{kind}(..., download=True) without data= fetches {url} into the cache {cache} "
        f"(or fetch it yourself and gunzip it into {cache})."
    )


def download_file(name: str, cache: str | Path, *, allow_unverified: bool = False,
                  url: str | None = None) -> Path:
    """Fetch ``<name>.gz``, check its MD5 and gunzip it to ``cache/<name>`` atomically."""
    from neuro.atomic import atomic_write

    gz = f"{name}.gz"
    if gz not in MD5:
        raise ValueError(f"download_file: unknown file {gz!r} (known: {sorted(MD5)})")
    url = url or f"{BASE_URL}{gz}"
    expected = MD5[gz]
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=f".{gz}.", suffix=".part", dir=cache)
    try:
        md5, sha256 = hashlib.md5(), hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                md5.update(block)
                sha256.update(block)
                out.write(block)
        digest = md5.hexdigest()
        print(f"{url}: md5 {digest} sha256 {sha256.hexdigest()}", file=sys.stderr)
        if expected is None and not allow_unverified:
            raise ValueError(
                f"{url}: no published checksum is recorded for {gz} (neuro.datasets.shd.MD5); "
                f"downloaded md5 is {digest}. Compare it with {BASE_URL}md5sums.txt and pass "
                f"allow_unverified=True to accept it. The download was discarded."
            )
        if expected is not None and digest != expected:
            raise ValueError(
                f"{url}: checksum mismatch for {gz}: md5 {digest}, expected {expected}. "
                f"The download was discarded."
            )

        def unpack(tmp: str) -> None:
            try:
                with gzip.open(part, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (OSError, EOFError) as exc:
                raise ValueError(f"{url}: not a readable gzip file ({exc})") from None

        return atomic_write(cache / name, unpack)
    finally:
        if os.path.exists(part):
            os.unlink(part)
