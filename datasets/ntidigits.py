"""N-TIDIGITS reader and writer (the published HDF5 layout) with time binning.

Anumula, Neil, Delbruck, Liu (2018), "Feature representations for neuromorphic audio spike
streams", Front. Neurosci. 12:23. The TIDIGITS spoken digits played to a 64-channel silicon cochlea
(CochleaAMS1b); one file ``n-tidigits.hdf5`` holds both splits.

**Layout** (as read by tonic and torchneuromorphic)::

    <split>_labels              1-D array of byte strings, one key per sample
    <split>_timestamps/<key>    1-D float array: event times in seconds, ascending
    <split>_addresses/<key>     1-D integer array: cochlea channel of each event, 0..63

with ``split`` in ``train``/``test``. A key is ``"<gender>-<speaker>-<take>-<digits>"`` (for
example ``"man-ae-a-1"``); ``digits`` is the spoken sequence with ``z`` = zero and ``o`` = oh.
Isolated digits (one character) give the 11 classes ``z, 1, ..., 9, o`` -> labels ``0..10``;
sequences of several digits are skipped unless ``isolated_only=False`` (then the label is the
first digit).

**Binning.** Frame ``floor(t / dt)`` (``dt`` in seconds), ``n_steps`` frames, events at or after
``n_steps * dt`` dropped (compared in float seconds, so a time of 1e30 s is dropped, never
wrapped into frame 0); values are event counts per frame and channel (``binary=True`` clips to
0/1). The resistive-memory LSM reference uses the 64 channels and 129 steps.

Bad files raise ``ValueError`` naming the file and the key: missing groups or keys, a channel
outside ``[0, 64)``, negative or non-finite times, times going backwards, a length mismatch between
timestamps and addresses, an unknown digit.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuro.safeio import check_hdf5_dataset, hdf5_file

from .synthetic import SpikeDataset

N_CHANNELS = 64
CLASSES = ("z", "1", "2", "3", "4", "5", "6", "7", "8", "9", "o")
SPLITS = ("train", "test")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError("reading N-TIDIGITS needs h5py: pip install 'neuro[datasets]' "
                          "(or pip install h5py)") from None
    return h5py


def parse_key(key: str, *, name: str = "") -> tuple[str, int]:
    """``(digits, label)`` from a sample key; ``label`` is the class of the first digit."""
    parts = key.split("-")
    digits = parts[-1]
    if len(parts) < 2 or not digits or any(d not in CLASSES for d in digits):
        raise ValueError(f"{name}: key {key!r} does not end in '-<digits>' with digits from "
                         f"{''.join(CLASSES)}")
    return digits, CLASSES.index(digits[0])


def read_ntidigits(path: str | Path, split: str = "train", *, isolated_only: bool = True,
                   n_channels: int = N_CHANNELS
                   ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[str]]:
    """Read and validate one split: ``(times [s], channels, labels, keys)`` per sample."""
    if split not in SPLITS:
        raise ValueError(f"N-TIDIGITS split must be one of {SPLITS}, got {split!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (N-TIDIGITS needs n-tidigits.hdf5; "
                                "--data PATH on the command line)")
    h5py = _h5py()
    times: list[np.ndarray] = []
    chans: list[np.ndarray] = []
    labels: list[int] = []
    keys: list[str] = []
    with hdf5_file(path) as f:  # h5py's errors on a corrupt file: one ValueError
        for grp in (f"{split}_labels", f"{split}_timestamps", f"{split}_addresses"):
            if grp not in f:
                raise ValueError(f"{path}: missing {grp!r} (the published layout has "
                                 f"{split}_labels, {split}_timestamps/<key>, {split}_addresses/<key>)")
        lab_ds = f[f"{split}_labels"]
        if not isinstance(lab_ds, h5py.Dataset) or lab_ds.ndim != 1:
            raise ValueError(f"{path}: {split}_labels must be a 1-D array of key strings")
        ts_grp, ad_grp = f[f"{split}_timestamps"], f[f"{split}_addresses"]
        check_hdf5_dataset(lab_ds, str(path))
        for raw in lab_ds[()]:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            digits, label = parse_key(key, name=f"{path}: {split}_labels")
            if isolated_only and len(digits) != 1:
                continue
            where = f"{path}: {split}_timestamps/{key}"
            if key not in ts_grp or key not in ad_grp:
                raise ValueError(f"{where}: key listed in {split}_labels has no timestamps or "
                                 "addresses dataset")
            for ds in (ts_grp[key], ad_grp[key]):
                if not isinstance(ds, h5py.Dataset):
                    raise ValueError(f"{where}: expected a dataset, found a group")
                check_hdf5_dataset(ds, str(path))  # declared size before reading
            t = np.asarray(ts_grp[key][()], np.float64).ravel()
            a = np.asarray(ad_grp[key][()]).ravel()
            if a.size and not np.issubdtype(a.dtype, np.integer):
                if not np.all(a == np.round(a)):
                    raise ValueError(f"{path}: {split}_addresses/{key} holds non-integer channels")
            a = a.astype(np.int64)
            if len(t) != len(a):
                raise ValueError(f"{where}: {len(t)} timestamps but {len(a)} addresses")
            if t.size and (not np.isfinite(t).all() or t.min() < 0):
                raise ValueError(f"{where}: times must be finite seconds >= 0")
            down = np.diff(t) < 0
            if down.any():
                i = int(np.argmax(down)) + 1
                raise ValueError(f"{where}: time goes backwards at event {i} ({t[i]} s after {t[i - 1]} s)")
            bad = (a < 0) | (a >= n_channels)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"{path}: {split}_addresses/{key}: event {i} has channel {a[i]}, "
                                 f"outside [0, {n_channels})")
            times.append(t)
            chans.append(a)
            labels.append(label)
            keys.append(key)
    if not keys:
        raise ValueError(f"{path}: no {'isolated-digit ' if isolated_only else ''}samples in {split}")
    return times, chans, np.asarray(labels, np.int64), keys


def bin_events(times: Sequence[np.ndarray], channels: Sequence[np.ndarray], *, n_steps: int,
               dt: float, n_channels: int = N_CHANNELS, binary: bool = False) -> np.ndarray:
    """Counts per frame and channel: ``[N, n_steps, n_channels]`` uint8 (clipped at 255)."""
    if n_steps <= 0 or not dt > 0:
        raise ValueError(f"n_steps and dt must be positive, got {n_steps}, {dt}")
    out = np.zeros((len(times), n_steps, n_channels), np.uint8)
    for i, (t, a) in enumerate(zip(times, channels)):
        t = np.asarray(t, np.float64)
        keep = (t >= 0) & (t < n_steps * dt)  # in float: 1e30 s must not overflow int64
        frame = np.minimum(np.floor(t[keep] / dt).astype(np.int64), n_steps - 1)
        c = np.bincount(frame * n_channels + np.asarray(a, np.int64)[keep],
                        minlength=n_steps * n_channels).reshape(n_steps, n_channels)
        out[i] = np.minimum(c, 1 if binary else 255)
    return out


def load_ntidigits(path: str | Path, split: str = "train", *, n_steps: int = 129, dt: float = 0.01,
                   binary: bool = True, isolated_only: bool = True) -> SpikeDataset:
    """N-TIDIGITS as frames ``[N, n_steps, 64]``, 11 classes (``z, 1..9, o``)."""
    times, chans, labels, _ = read_ntidigits(path, split, isolated_only=isolated_only)
    return SpikeDataset(bin_events(times, chans, n_steps=n_steps, dt=dt, binary=binary),
                        labels, len(CLASSES))


def write_ntidigits(path: str | Path, splits: dict[str, tuple[Sequence[str], Sequence[np.ndarray],
                                                               Sequence[np.ndarray]]]) -> Path:
    """Write ``{split: (keys, times, channels)}`` in the published layout, atomically."""
    from neuro.atomic import atomic_write

    h5py = _h5py()
    for split, (keys, times, chans) in splits.items():
        if split not in SPLITS:
            raise ValueError(f"N-TIDIGITS split must be one of {SPLITS}, got {split!r}")
        if not (len(keys) == len(times) == len(chans)):
            raise ValueError(f"{split}: {len(keys)} keys, {len(times)} time arrays, "
                             f"{len(chans)} address arrays")
        for k in keys:
            parse_key(k, name=split)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            for split, (keys, times, chans) in splits.items():
                f.create_dataset(f"{split}_labels", data=np.array([k.encode() for k in keys]))
                ts, ad = f.create_group(f"{split}_timestamps"), f.create_group(f"{split}_addresses")
                for k, t, a in zip(keys, times, chans):
                    ts.create_dataset(k, data=np.asarray(t, np.float64))
                    ad.create_dataset(k, data=np.asarray(a, np.int16))

    return atomic_write(path, write)


__all__ = ["CLASSES", "N_CHANNELS", "bin_events", "load_ntidigits", "parse_key", "read_ntidigits",
           "write_ntidigits"]
