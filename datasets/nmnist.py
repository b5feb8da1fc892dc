"""N-MNIST reader and writer (the published binary event format) with frame/bin transforms.

Orchard, Jayawant, Cohen, Thakor (2015), "Converting static image datasets to spiking neuromorphic
datasets using saccades", Front. Neurosci. 9:437. An ATIS sensor (34 x 34 pixels) records each MNIST
digit during three saccades of about 100 ms each.

**File format.** One ``.bin`` file per sample, a flat list of events, 5 bytes (40 bits) each,
big-endian bit numbering as in the dataset's documentation::

    bits 39-32  x address (pixels, 0..33)
    bits 31-24  y address (pixels, 0..33)
    bit  23     polarity (1 = ON: brightness increase, 0 = OFF)
    bits 22-0   timestamp in microseconds (23 bits, up to 8.39 s)

An event whose y byte is 240 is a timestamp-overflow marker, not a pixel event: every later
timestamp is increased by 2^13 us (the rule of the dataset's reference reader ``eventvision.py``,
also used by tonic). N-MNIST recordings (about 0.3 s) never need it.

**Layout.** ``<root>/Train/<digit>/<id>.bin`` and ``<root>/Test/<digit>/<id>.bin`` (the published
``Train.zip``/``Test.zip`` extracted), 60,000 / 10,000 samples, labels from the folder names.

**Frames** (:func:`events_to_frames`). Frame index ``t // dt_us`` (integer microseconds), ``n_steps``
frames; events at or after ``n_steps * dt_us`` are dropped. ``crop=(h, w)`` keeps the centred
window ``x in [x0, x0 + w)``, ``y in [y0, y0 + h)`` with ``x0 = (34 - w) // 2``. ``polarity``:
``"on"``, ``"off"`` (one channel), ``"both"`` (channel = polarity * h * w + pixel, OFF first) or
``"merge"`` (both polarities in one channel). The channel of pixel (x, y) is ``y * w + x``
(row-major image order). Values are event counts per frame and channel (``binary=True`` clips to
0/1, which makes frames valid spike inputs for the integer targets).

Bad files raise ``ValueError`` naming the file: a length that is not a multiple of 5 bytes, a
coordinate outside the sensor, a timestamp that goes backwards.
"""
from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuro.safeio import regular_files

from .io import read_binned_cache, write_binned_cache
from .synthetic import SpikeDataset

SENSOR = (34, 34)  # (width, height) in pixels
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
MAX_TIME_US = (1 << 23) - 1
SPLITS = {"train": "Train", "test": "Test"}
POLARITIES = ("on", "off", "both", "merge")
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", np.int8), ("t", np.int64)])


def read_nmnist_file(path: str | Path, *, sensor: tuple[int, int] = SENSOR) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file: a structured array of ``x, y, p, t`` (t in microseconds)."""
    from neuro.limits import check_array_size

    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block forever
            raise ValueError(f"{path}: not a regular file")
        check_array_size(str(path), (st.st_size, 5), 8)  # decoding holds 5 int64 per byte
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    return decode_events(raw, name=str(path), sensor=sensor)


def decode_events(raw: np.ndarray | bytes, *, name: str = "<bytes>",
                  sensor: tuple[int, int] = SENSOR) -> np.ndarray:
    """Decode N-MNIST bytes (see the module docstring); errors name ``name``."""
    raw = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else raw
    if raw.size % 5:
        raise ValueError(f"{name}: length {raw.size} bytes is not a multiple of 5 "
                         "(N-MNIST events are 40 bits); the file is truncated or not N-MNIST")
    b = raw.reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    overflow = y == OVERFLOW_Y
    if overflow.any():
        t = t + np.cumsum(overflow) * OVERFLOW_US
    keep = ~overflow
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    w, h = sensor
    for coord, lim, axis in ((x, w, "x"), (y, h, "y")):
        bad = coord >= lim
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name}: event {i} has {axis} = {int(coord[i])}, outside the "
                             f"{w} x {h} sensor")
    down = np.diff(t) < 0
    if down.any():
        i = int(np.argmax(down)) + 1
        raise ValueError(f"{name}: time goes backwards at event {i} ({int(t[i])} us after "
                         f"{int(t[i - 1])} us)")
    ev = np.empty(len(t), EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p, t
    return ev


def encode_events(events: np.ndarray, *, name: str = "<events>",
                  sensor: tuple[int, int] = SENSOR) -> bytes:
    """Encode events (fields ``x, y, p, t``) as N-MNIST bytes; checks the same rules as reading."""
    x, y = np.asarray(events["x"], np.int64), np.asarray(events["y"], np.int64)
    p, t = np.asarray(events["p"], np.int64), np.asarray(events["t"], np.int64)
    w, h = sensor
    if len(x) and (x.min() < 0 or y.min() < 0 or x.max() >= w or y.max() >= h):
        raise ValueError(f"{name}: coordinates outside the {w} x {h} sensor")
    if len(t) and (t.min() < 0 or t.max() > MAX_TIME_US):
        raise ValueError(f"{name}: timestamps must lie in [0, {MAX_TIME_US}] us (23 bits)")
    if np.any(np.diff(t) < 0):
        raise ValueError(f"{name}: timestamps must not decrease")
    if not np.isin(p, (0, 1)).all():
        raise ValueError(f"{name}: polarity must be 0 or 1")
    out = np.empty((len(t), 5), np.uint8)
    out[:, 0], out[:, 1] = x, y
    out[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    return out.tobytes()


def write_nmnist_file(path: str | Path, events: np.ndarray, *,
                      sensor: tuple[int, int] = SENSOR) -> Path:
    """Write ``events`` to ``path`` in the N-MNIST format, atomically."""
    from neuro.atomic import atomic_write

    data = encode_events(events, name=str(path), sensor=sensor)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


def _crop_origin(sensor: tuple[int, int], crop: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """``(x0, y0, w, h)`` of the centred crop window (``crop`` is ``(h, w)``)."""
    sw, sh = sensor
    if crop is None:
        return 0, 0, sw, sh
    ch, cw = int(crop[0]), int(crop[1])
    if not (0 < ch <= sh and 0 < cw <= sw):
        raise ValueError(f"crop {tuple(crop)} must fit the {sw} x {sh} sensor")
    return (sw - cw) // 2, (sh - ch) // 2, cw, ch


def n_channels(*, sensor: tuple[int, int] = SENSOR, crop: tuple[int, int] | None = None,
               polarity: str = "both") -> int:
    """Number of input channels :func:`events_to_frames` produces."""
    _, _, w, h = _crop_origin(sensor, crop)
    return (2 if polarity == "both" else 1) * w * h


def events_to_frames(events: np.ndarray, *, n_steps: int, dt_us: int,
                     sensor: tuple[int, int] = SENSOR, crop: tuple[int, int] | None = None,
                     polarity: str = "both", binary: bool = False) -> np.ndarray:
    """Bin events into ``[n_steps, C]`` uint8 counts (rules in the module docstring)."""
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    if n_steps <= 0 or dt_us <= 0:
        raise ValueError(f"n_steps and dt_us must be positive, got {n_steps}, {dt_us}")
    x0, y0, w, h = _crop_origin(sensor, crop)
    x = events["x"].astype(np.int64) - x0
    y = events["y"].astype(np.int64) - y0
    p = events["p"].astype(np.int64)
    frame = events["t"].astype(np.int64) // int(dt_us)
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (frame < n_steps)
    if polarity == "on":
        keep &= p == 1
    elif polarity == "off":
        keep &= p == 0
    ch = y * w + x
    if polarity == "both":
        ch = ch + p * (w * h)
    c = n_channels(sensor=sensor, crop=crop, polarity=polarity)
    counts = np.bincount(frame[keep] * c + ch[keep], minlength=n_steps * c).reshape(n_steps, c)
    if binary:
        counts = np.minimum(counts, 1)
    return np.minimum(counts, 255).astype(np.uint8)


def list_split(root: str | Path, split: str) -> tuple[list[Path], np.ndarray]:
    """``(files, labels)`` of ``<root>/Train`` or ``<root>/Test`` (sorted by label, then name)."""
    if split not in SPLITS:
        raise ValueError(f"N-MNIST split must be one of {sorted(SPLITS)}, got {split!r}")
    root = Path(root).expanduser()
    folder = root / SPLITS[split]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"N-MNIST: no folder {folder}; expected <root>/Train/<digit>/*.bin and "
            f"<root>/Test/<digit>/*.bin (the published Train.zip/Test.zip extracted), "
            "--data PATH on the command line")
    files: list[Path] = []
    labels: list[int] = []
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir():
            continue
        if not (sub.name.isdigit() and 0 <= int(sub.name) <= 9):
            raise ValueError(f"{sub}: class folders must be named 0..9")
        found = regular_files(sub, "*.bin")  # no FIFO is opened; symlink loops are reported
        files += found
        labels += [int(sub.name)] * len(found)
    if not files:
        raise ValueError(f"{folder}: no .bin files in its class folders")
    return files, np.asarray(labels, np.int64)


def load_nmnist(root: str | Path, split: str = "train", *, n_steps: int = 50, dt_us: int = 6000,
                crop: tuple[int, int] | None = (16, 16), polarity: str = "on", binary: bool = True,
                sensor: tuple[int, int] = SENSOR, max_samples: int | None = None,
                cache_dir: str | Path | None = None, cache: bool = True) -> SpikeDataset:
    """N-MNIST (or a folder in its layout) as binned frames ``[N, n_steps, C]``, 10 classes.

    Defaults follow the resistive-memory LSM reference: one polarity, a 16 x 16 centre crop
    (256 channels), 50 steps (``dt_us = 6000``: 0.3 s, the three saccades). ``max_samples`` keeps
    an evenly spaced subset of that many files (for quick runs). Binned arrays are cached in
    ``cache_dir`` (default ``$NEURO_DATA`` or ``~/.cache/neuro/data``) under ``binned/``, keyed by
    the folder, its file count, total size and newest modification time, and the parameters.
    """
    files, labels = list_split(root, split)
    if max_samples is not None:
        if max_samples <= 0:
            raise ValueError(f"max_samples must be positive, got {max_samples}")
        if max_samples < len(files):
            idx = np.linspace(0, len(files) - 1, max_samples).round().astype(np.int64)
            files, labels = [files[i] for i in idx], labels[idx]
    c = n_channels(sensor=sensor, crop=crop, polarity=polarity)
    npz = None
    tag = ""
    if cache:
        from .shd import default_cache_dir

        stats = [f.stat() for f in files]
        tag = (f"{Path(root).resolve()}|{split}|{len(files)}|{sum(s.st_size for s in stats)}|"
               f"{max(s.st_mtime_ns for s in stats)}|{n_steps}|{dt_us}|{crop}|{polarity}|{binary}|"
               f"{sensor}")
        key = hashlib.sha1(tag.encode()).hexdigest()[:10]  # names the file; the tag is checked inside
        base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        npz = base / "binned" / f"nmnist_{split}-{n_steps}x{dt_us}us-{polarity}-{c}ch-{key}.npz"
        cached = read_binned_cache(npz, tag)
        if cached is not None:
            return SpikeDataset(*cached, 10)
    spikes = np.zeros((len(files), n_steps, c), np.uint8)
    for i, f in enumerate(files):
        spikes[i] = events_to_frames(read_nmnist_file(f, sensor=sensor), n_steps=n_steps,
                                     dt_us=dt_us, sensor=sensor, crop=crop, polarity=polarity,
                                     binary=binary)
    if npz is not None:
        write_binned_cache(npz, spikes, labels, tag)
    return SpikeDataset(spikes, labels, 10)


def write_nmnist_folder(root: str | Path, split: str, samples: Sequence[np.ndarray],
                        labels: Sequence[int], *, sensor: tuple[int, int] = SENSOR) -> list[Path]:
    """Write event arrays as ``<root>/<Train|Test>/<label>/<index>.bin`` (the published layout)."""
    if split not in SPLITS:
        raise ValueError(f"N-MNIST split must be one of {sorted(SPLITS)}, got {split!r}")
    if len(samples) != len(labels):
        raise ValueError(f"{len(samples)} samples but {len(labels)} labels")
    out = []
    for i, (ev, lab) in enumerate(zip(samples, labels)):
        if not 0 <= int(lab) <= 9:
            raise ValueError(f"label {lab} of sample {i} is outside 0..9")
        path = Path(root) / SPLITS[split] / str(int(lab)) / f"{i:05d}.bin"
        out.append(write_nmnist_file(path, ev, sensor=sensor))
    return out


__all__ = ["EVENT_DTYPE", "SENSOR", "decode_events", "encode_events", "events_to_frames",
           "list_split", "load_nmnist", "n_channels", "read_nmnist_file", "write_nmnist_file",
           "write_nmnist_folder"]
