"""DVS128 Gesture (Amir et al., CVPR 2017) in its published form, and an offline stand-in.

Published layout (``DvsGesture/``): ``userNN_<lighting>.aedat`` recordings (AEDAT 3.1), for each a
``userNN_<lighting>_labels.csv`` (header ``class,startTime_usec,endTime_usec``; classes 1..11), and
``trials_to_train.txt`` / ``trials_to_test.txt`` listing the ``.aedat`` files of each split.

AEDAT 3.1 (iniVation/jAER): text header lines starting with ``#``, the first ``#!AER-DAT3.1``, the
last ``#!END-HEADER`` (each ``\\r\\n``-terminated), then event packets, little-endian: a 28-byte
header ``int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset, int32
eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid`` and ``eventCapacity *
eventSize`` bytes of events. Polarity events (type 1, size 8): ``uint32 data`` (bit 0 valid, bit 1
polarity, bits 2..16 y, bits 17..31 x) and ``int32 timestamp`` (microseconds; the full time is
``eventTSOverflow << 31 | timestamp``). Other packet types (special events, frames, IMU) are skipped.
The reader checks the header, every packet header (size, offsets, counts within the file) and the
coordinates (``x, y < 128``) and raises ``ValueError`` naming the file and byte offset otherwise.

Frames: each labelled gesture ``[start, end)`` is cut into 25 ms bins; both polarities are summed
into one channel (polarity merged, as in the EGRU paper), optionally pooled ``pool x pool``:
``[T, 1, 128 / pool, 128 / pool]`` float32 counts. :func:`load_split` caches the frames of a split
as one ``.pt`` file per recording next to a cache key (bin, pool, file size and mtime).

Stand-in (:func:`write_standin`): the same files, written with the same AEDAT 3.1 writer and read
back through the same reader: 11 classes of a moving Gaussian blob of events, differing in the
trajectory (circles both ways, lines in eight directions, a standing flicker), with per-recording
jitter of speed, size, centre and background noise.
"""
from __future__ import annotations

import csv
import math
import struct
from pathlib import Path

import numpy as np
import torch

SENSOR = 128
N_CLASSES = 11
MAGIC = b"#!AER-DAT3.1"
END = b"#!END-HEADER"
_PACKET = struct.Struct("<hhiiiiii")
POLARITY = 1


# -- AEDAT 3.1 ------------------------------------------------------------------------------
def read_aedat(path: str | Path) -> np.ndarray:
    """Polarity events of an AEDAT 3.1 file: structured array ``t`` (int64 us), ``x``, ``y``,
    ``p`` (uint8), in file order (only valid events)."""
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path}: not an AEDAT 3.1 file (first line must be {MAGIC.decode()})")
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"{path}: header has no {END.decode()} line")
        line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if not line.startswith(b"#"):
            raise ValueError(f"{path}: header line at byte {pos} does not start with '#'")
        if line == END:
            break
    chunks: list[np.ndarray] = []
    dt = np.dtype([("data", "<u4"), ("ts", "<i4")])
    while pos < len(data):
        if pos + _PACKET.size > len(data):
            raise ValueError(f"{path}: truncated packet header at byte {pos}")
        etype, _src, esize, tsoff, tsover, cap, num, valid = _PACKET.unpack_from(data, pos)
        body = pos + _PACKET.size
        if esize <= 0 or cap < 0 or not 0 <= valid <= num <= cap:
            raise ValueError(f"{path}: bad packet header at byte {pos} (size {esize}, capacity "
                             f"{cap}, number {num}, valid {valid})")
        end = body + cap * esize
        if end > len(data):
            raise ValueError(f"{path}: packet at byte {pos} runs past the end of the file")
        if etype == POLARITY:
            if esize != 8 or tsoff != 4:
                raise ValueError(f"{path}: polarity packet at byte {pos} has event size {esize} "
                                 f"and timestamp offset {tsoff} (expected 8 and 4)")
            ev = np.frombuffer(data, dt, count=num, offset=body)
            ev = ev[(ev["data"] & 1) == 1]
            x = (ev["data"] >> 17) & 0x7FFF
            y = (ev["data"] >> 2) & 0x7FFF
            if len(ev) and (x.max() >= SENSOR or y.max() >= SENSOR):
                raise ValueError(f"{path}: polarity packet at byte {pos} has coordinates outside "
                                 f"{SENSOR}x{SENSOR}")
            out = np.empty(len(ev), dtype=[("t", "<i8"), ("x", "u1"), ("y", "u1"), ("p", "u1")])
            out["t"] = (np.int64(tsover) << 31) | ev["ts"].astype(np.int64)
            out["x"], out["y"], out["p"] = x, y, (ev["data"] >> 1) & 1
            chunks.append(out)
        pos = end
    if not chunks:
        return np.empty(0, dtype=[("t", "<i8"), ("x", "u1"), ("y", "u1"), ("p", "u1")])
    return np.concatenate(chunks)


def write_aedat(path: str | Path, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                packet: int = 4096) -> None:
    """Write polarity events as AEDAT 3.1 (the layout :func:`read_aedat` reads)."""
    t = np.asarray(t, dtype=np.int64)
    header = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
              b"#Start-Time: neuro stand-in\r\n#!END-HEADER\r\n")
    data = (1 | (np.asarray(p, np.uint32) & 1) << 1 | (np.asarray(y, np.uint32) << 2)
            | (np.asarray(x, np.uint32) << 17)).astype("<u4")
    with open(path, "wb") as f:
        f.write(header)
        for s in range(0, len(t), packet):
            tt = t[s:s + packet]
            over = int(tt[0] >> 31)
            if int(tt[-1] >> 31) != over:
                raise ValueError("write_aedat: a packet spans a timestamp overflow")
            n = len(tt)
            f.write(_PACKET.pack(POLARITY, 1, 8, 4, over, n, n, n))
            rec = np.empty(n, dtype=[("data", "<u4"), ("ts", "<i4")])
            rec["data"], rec["ts"] = data[s:s + packet], (tt & 0x7FFFFFFF).astype(np.int32)
            f.write(rec.tobytes())


def read_labels(path: str | Path) -> list[tuple[int, int, int]]:
    """``(class 0..10, start_us, end_us)`` rows of a ``_labels.csv``."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        head = [h.strip() for h in next(r)]
        if head[:3] != ["class", "startTime_usec", "endTime_usec"]:
            raise ValueError(f"{path}: header must be class,startTime_usec,endTime_usec")
        for line in r:
            if not line or not line[0].strip():
                continue
            c, s, e = (int(v) for v in line[:3])
            if not 1 <= c <= N_CLASSES or e <= s:
                raise ValueError(f"{path}: bad row {line}")
            rows.append((c - 1, s, e))
    return rows


# -- frames ---------------------------------------------------------------------------------
def to_frames(ev: np.ndarray, start: int, end: int, bin_us: int = 25_000, pool: int = 1) -> torch.Tensor:
    """Events in ``[start, end)`` binned into ``bin_us`` frames, polarities summed:
    ``[T, 1, 128 // pool, 128 // pool]`` float32."""
    n_bins = max(1, math.ceil((end - start) / bin_us))
    side = SENSOR // pool
    sel = ev[(ev["t"] >= start) & (ev["t"] < end)]
    k = (sel["t"] - start) // bin_us
    flat = (k * side + sel["y"].astype(np.int64) // pool) * side + sel["x"].astype(np.int64) // pool
    counts = np.bincount(flat, minlength=n_bins * side * side).astype(np.float32)
    return torch.from_numpy(counts.reshape(n_bins, 1, side, side))


def split_files(root: str | Path, split: str) -> list[Path]:
    root = Path(root)
    lst = root / f"trials_to_{split}.txt"
    if not lst.exists():
        raise FileNotFoundError(f"{lst} missing (DVS128 Gesture layout: trials_to_train.txt, "
                                "trials_to_test.txt)")
    return [root / ln.strip() for ln in lst.read_text().splitlines() if ln.strip()]


def load_split(root: str | Path, split: str = "train", bin_us: int = 25_000, pool: int = 1,
               cache: bool = True) -> list[tuple[torch.Tensor, int]]:
    """``(frames [T, 1, S, S], class)`` for every labelled gesture of the split's recordings."""
    out: list[tuple[torch.Tensor, int]] = []
    for f in split_files(root, split):
        labels = f.with_name(f.stem + "_labels.csv")
        st = f.stat()
        key = f"{bin_us}-{pool}-{st.st_size}-{st.st_mtime_ns}"
        cpath = f.with_name(f".{f.stem}.frames-{bin_us}-{pool}.pt")
        if cache and cpath.exists():
            saved = torch.load(cpath)
            if saved.get("key") == key:
                out.extend(saved["items"])
                continue
        ev = read_aedat(f)
        items = [(to_frames(ev, s, e, bin_us, pool), c) for c, s, e in read_labels(labels)]
        if cache:
            torch.save({"key": key, "items": items}, cpath)
        out.extend(items)
    return out


# -- stand-in -------------------------------------------------------------------------------
def _trajectory(cls: int, u: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blob centre for phase ``u`` in [0, 1) of class ``cls`` (pixels)."""
    cx, cy = 64 + rng.normal(0, 4), 64 + rng.normal(0, 4)
    if cls in (0, 1):  # circles, clockwise / counter-clockwise
        a = 2 * math.pi * u * (1 if cls == 0 else -1)
        return cx + 35 * np.cos(a), cy + 35 * np.sin(a)
    if cls == 10:  # standing flicker
        return cx + 3 * np.sin(40 * u), cy + 0 * u
    ang = (cls - 2) * math.pi / 4  # eight straight sweeps
    s = 80 * (u - 0.5)
    return cx + s * math.cos(ang), cy + s * math.sin(ang)


def write_standin(root: str | Path, n_users: int = 4, per_class: int = 1, gesture_ms: int = 600,
                  rate_per_ms: int = 60, seed: int = 0, test_users: int = 1) -> Path:
    """Write a DVS128-Gesture-shaped folder of synthetic recordings (module docstring)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for user in range(1, n_users + 1):
        name = f"user{user:02d}_standin"
        ts, xs, ys, ps, rows = [], [], [], [], []
        t0 = 1000
        order = [c for c in range(N_CLASSES) for _ in range(per_class)]
        rng.shuffle(order)
        for cls in order:
            n_ms = int(gesture_ms * rng.uniform(0.8, 1.2))
            sigma = rng.uniform(3, 6)
            n = rng.poisson(rate_per_ms * n_ms)
            t = np.sort(rng.integers(0, n_ms * 1000, n))
            cx, cy = _trajectory(cls, t / (n_ms * 1000), np.random.default_rng(user * 100 + cls))
            x = np.clip(rng.normal(cx, sigma), 0, SENSOR - 1).astype(np.int64)
            y = np.clip(rng.normal(cy, sigma), 0, SENSOR - 1).astype(np.int64)
            nb = rng.poisson(rate_per_ms * 0.1 * n_ms)  # background noise
            tn = rng.integers(0, n_ms * 1000, nb)
            order_t = np.argsort(np.concatenate([t, tn]), kind="stable")
            ts.append((t0 + np.concatenate([t, tn]))[order_t])
            xs.append(np.concatenate([x, rng.integers(0, SENSOR, nb)])[order_t])
            ys.append(np.concatenate([y, rng.integers(0, SENSOR, nb)])[order_t])
            ps.append(rng.integers(0, 2, n + nb))
            rows.append((cls + 1, t0, t0 + n_ms * 1000))
            t0 += n_ms * 1000 + 50_000
        write_aedat(root / f"{name}.aedat", np.concatenate(ts), np.concatenate(xs),
                    np.concatenate(ys), np.concatenate(ps))
        with open(root / f"{name}_labels.csv", "w", encoding="utf-8", newline="") as f:
            f.write("class,startTime_usec,endTime_usec\n")
            for c, s, e in rows:
                f.write(f"{c},{s},{e}\n")
        names.append(f"{name}.aedat")
    (root / "trials_to_train.txt").write_text("\n".join(names[:-test_users]) + "\n")
    (root / "trials_to_test.txt").write_text("\n".join(names[-test_users:]) + "\n")
    return root


__all__ = ["N_CLASSES", "SENSOR", "load_split", "read_aedat", "read_labels", "split_files",
           "to_frames", "write_aedat", "write_standin"]
