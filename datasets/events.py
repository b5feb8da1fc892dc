"""Offline event-sensor stand-ins that go through the published-format readers.

**Static task** (:func:`digits_nmnist_task`): scikit-learn's bundled 8 x 8 digits (1,797 images,
10 classes) recorded by a simulated event camera during three saccades, written as N-MNIST
``.bin`` files (``Train/<digit>/*.bin``, ``Test/<digit>/*.bin``) and read back with
:func:`neuro.datasets.nmnist.load_nmnist`. Per sample:

* the image (values 0..16, scaled to [0, 1]) is upsampled ``scale`` times (bilinear) and centred on
  the 34 x 34 sensor;
* the sensor moves along a triangle (three straight saccades of ``saccade_ms`` each, cosine speed
  profile), amplitude ``amplitude`` pixels (x0.9..1.1 per sample), as in N-MNIST;
* every ``step_ms`` (2 ms) each pixel compares its log intensity ``L = log(eps + I)`` with its reference level:
  ``n = floor(|L - L_ref| / C_pixel)`` events of the sign of the change are emitted (timestamps
  spread uniformly inside the step) and ``L_ref`` moves by ``n C_pixel``. The per-pixel
  contrast threshold is ``C_pixel = contrast * (1 + 0.1 N(0, 1))`` (sensor mismatch);
* background activity: Poisson noise events at ``noise_hz`` per pixel, random polarity.

**Temporal task** (:func:`audio_event_task`): spoken-word-like event streams on a 64-channel
"cochlea", written in the N-TIDIGITS HDF5 layout and read back with
:func:`neuro.datasets.ntidigits.load_ntidigits`. A word is a sequence of ``n_phonemes`` phonemes;
a phoneme is two formant bands (channel centres, Gaussian spread 1.5 channels) firing Poisson events
at ``rate_hz`` at the band centre. **Every word uses the same phonemes, in a different order**
(distinct permutations), so the event count of every channel has the same distribution in every
class: only the *order* tells the words apart. A readout on event counts of the raw input is at
chance; a reservoir whose state at the time of one phoneme still depends on the previous ones (its
memory) makes the order visible to the same count readout. Per-utterance variation: tempo
x0.85..1.15, phoneme durations x0.85..1.15, a common shift of all formants by -2..2 channels, onset
0..``max_onset_ms``, background noise at ``noise_hz`` per channel. Keys follow N-TIDIGITS
(``"<gender>-<speaker>-<take>-<digit>"``) with classes ``z, 1..9, o``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from neuro.safeio import read_json

from .nmnist import EVENT_DTYPE, SENSOR, load_nmnist, write_nmnist_folder
from .ntidigits import CLASSES, N_CHANNELS, load_ntidigits, write_ntidigits
from .synthetic import SpikeDataset

# ------------------------------------------------------------------------------ static: digits


def _upsample(images: np.ndarray, scale: float) -> np.ndarray:
    """Bilinear upsampling of ``[S, h, w]`` images by ``scale`` (pixel centres aligned)."""
    s, h, w = images.shape
    H, W = int(round(h * scale)), int(round(w * scale))
    ys = np.clip((np.arange(H) + 0.5) / scale - 0.5, 0, h - 1)
    xs = np.clip((np.arange(W) + 0.5) / scale - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = images[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + images[:, y0][:, :, x1] * (1 - fy) * fx
    b = images[:, y1][:, :, x0] * fy * (1 - fx) + images[:, y1][:, :, x1] * fy * fx
    return a + b


def _shifted(canvas: Any, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bilinear translation of ``canvas`` (a ``[S, 1, H, W]`` tensor) by per-sample ``(dx, dy)``
    pixels with zero fill: ``out(y, x) = in(y - dy, x - dx)``; returns ``[S, H, W]`` numpy."""
    import torch
    import torch.nn.functional as F

    S, _, H, W = canvas.shape
    theta = torch.zeros(S, 2, 3, dtype=canvas.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = torch.from_numpy(-2 * np.broadcast_to(dx, S) / (W - 1))
    theta[:, 1, 2] = torch.from_numpy(-2 * np.broadcast_to(dy, S) / (H - 1))
    grid = F.affine_grid(theta, [S, 1, H, W], align_corners=True)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0].numpy()


def saccade_events(images: np.ndarray, *, seed: int = 0, sensor: tuple[int, int] = SENSOR,
                   scale: float = 1.5, amplitude: float = 2.5, saccade_ms: int = 100,
                   contrast: float = 0.15, noise_hz: float = 0.2, step_ms: int = 2) -> list[np.ndarray]:
    """Event recordings (structured arrays ``x, y, p, t``) of ``images [S, h, w]`` in [0, 1].

    The image warping runs in torch on one thread (small batched ops are much slower with
    several threads on a busy machine); the caller's thread count is restored afterwards.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _saccade_events(images, seed, sensor, scale, amplitude, saccade_ms, contrast,
                               noise_hz, step_ms)
    finally:
        torch.set_num_threads(threads)


def _saccade_events(images: np.ndarray, seed: int, sensor: tuple[int, int], scale: float,
                    amplitude: float, saccade_ms: int, contrast: float, noise_hz: float,
                    step_ms: int) -> list[np.ndarray]:
    if images.ndim != 3:
        raise ValueError(f"images must be [S, h, w], got shape {images.shape}")
    if not (contrast > 0 and amplitude >= 0 and saccade_ms > 0 and scale > 0 and noise_hz >= 0
            and step_ms > 0 and saccade_ms % step_ms == 0):
        raise ValueError("saccade_events: contrast, scale, saccade_ms and step_ms must be positive "
                         "(step_ms dividing saccade_ms), amplitude and noise_hz non-negative")
    rng = np.random.default_rng(seed)
    S: int = images.shape[0]
    W, H = sensor
    up = _upsample(images.astype(np.float64), scale)
    h, w = up.shape[1:]
    if h > H or w > W:
        raise ValueError(f"scale {scale} makes {h} x {w} images, larger than the {W} x {H} sensor")
    import torch

    canvas_np = np.zeros((S, 1, H, W))
    oy, ox = (H - h) // 2, (W - w) // 2
    canvas_np[:, 0, oy:oy + h, ox:ox + w] = up
    canvas = torch.from_numpy(canvas_np).float()
    # triangle path (three saccades), centred on the start position
    amp = amplitude * rng.uniform(0.9, 1.1, S)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 0.0]])
    corners -= corners[:3].mean(0)
    n_ms = 3 * saccade_ms
    tt = np.arange(0, n_ms + 1, step_ms)
    leg = np.minimum(tt // saccade_ms, 2)
    u = (tt - leg * saccade_ms) / saccade_ms
    u = np.where(tt == n_ms, 1.0, u)
    ease = 0.5 - 0.5 * np.cos(np.pi * u)
    path = corners[leg] + (corners[leg + 1] - corners[leg]) * ease[:, None]  # [n_ms + 1, 2]
    eps = 0.1
    thr = contrast * (1 + 0.1 * rng.standard_normal((S, H, W)))
    thr = np.maximum(thr, 0.2 * contrast)
    ref = np.log(eps + _shifted(canvas, amp * path[0, 0], amp * path[0, 1]))
    chunks: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for k in range(1, len(tt)):
        level = np.log(eps + _shifted(canvas, amp * path[k, 0], amp * path[k, 1]))
        d = level - ref
        n = np.floor(np.abs(d) / thr).astype(np.int64)
        ref = ref + np.sign(d) * n * thr
        s_idx, y_idx, x_idx = np.nonzero(n)
        if not len(s_idx):
            continue
        per = n[s_idx, y_idx, x_idx]
        pol = (d[s_idx, y_idx, x_idx] > 0).astype(np.int8)
        rep = np.repeat(np.arange(len(per)), per)
        times = tt[k - 1] * 1000 + rng.integers(0, step_ms * 1000, len(rep))
        ev = np.empty(len(rep), EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"], ev["t"] = x_idx[rep], y_idx[rep], pol[rep], times
        chunks.append(ev)
        owners.append(s_idx[rep])
    n_noise = rng.poisson(noise_hz * W * H * n_ms / 1000, S)
    noise = np.empty(int(n_noise.sum()), EVENT_DTYPE)
    noise["x"], noise["y"] = rng.integers(0, W, len(noise)), rng.integers(0, H, len(noise))
    noise["p"], noise["t"] = rng.integers(0, 2, len(noise)), rng.integers(0, n_ms * 1000, len(noise))
    ev = np.concatenate(chunks + [noise])
    owner = np.concatenate(owners + [np.repeat(np.arange(S), n_noise)])
    order = np.lexsort((ev["t"], owner))  # by sample, then time (stable for equal times)
    ev, owner = ev[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(S + 1))
    return [ev[bounds[s]:bounds[s + 1]] for s in range(S)]


def write_digits_nmnist(root: str | Path, *, test_fraction: float = 0.2, max_samples: int | None = None,
                        seed: int = 0, **kwargs: Any) -> Path:
    """Write the saccade recordings of sklearn's digits in the N-MNIST layout under ``root``.

    The split is a seeded shuffle (``test_fraction`` to ``Test/``). A file ``COMPLETE`` holding the
    parameters is written last, so an interrupted run is never mistaken for a finished one.
    """
    from sklearn.datasets import load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    digits = load_digits()
    images, labels = digits.images / 16.0, digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    if max_samples is not None:
        order = order[:max_samples]
    n_test = max(1, int(round(test_fraction * len(order))))
    root = Path(root)
    for split, idx in (("test", order[:n_test]), ("train", order[n_test:])):
        events = saccade_events(images[idx], seed=seed + (1 if split == "train" else 2), **kwargs)
        write_nmnist_folder(root, split, events, labels[idx])
    params = {"test_fraction": test_fraction, "max_samples": max_samples, "seed": seed, **kwargs}
    from neuro.atomic import atomic_write

    atomic_write(root / "COMPLETE", lambda tmp: Path(tmp).write_text(json.dumps(params, sort_keys=True)))
    return root


def _task_dir(kind: str, params: dict[str, Any], root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    from .shd import default_cache_dir

    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return default_cache_dir() / f"{kind}-{key}"


def digits_nmnist_task(root: str | Path | None = None, *, max_samples: int | None = None,
                       seed: int = 0, n_steps: int = 50, dt_us: int = 6000,
                       crop: tuple[int, int] | None = (16, 16), polarity: str = "on",
                       binary: bool = True, **kwargs: Any) -> tuple[SpikeDataset, SpikeDataset]:
    """``(train, test)`` of the static stand-in, written once (to ``root`` or the cache) and read
    through the N-MNIST reader with the given frame parameters (defaults as :func:`load_nmnist`)."""
    params = {"max_samples": max_samples, "seed": seed, **kwargs}
    root = _task_dir("digits-nmnist", params, root)
    done = root / "COMPLETE"
    expected = {"test_fraction": 0.2, **params}
    if not done.is_file():
        if (root / "Train").exists() or (root / "Test").exists():
            raise ValueError(f"{root}: holds Train/ or Test/ but no COMPLETE marker (an interrupted "
                             "or foreign folder); use an empty folder for the stand-in")
        write_digits_nmnist(root, max_samples=max_samples, seed=seed, **kwargs)
    elif read_json(done) != expected:
        raise ValueError(f"{root}: holds a digits stand-in written with other parameters "
                         f"({done.read_text()}); use another folder")
    frames: dict[str, Any] = dict(n_steps=n_steps, dt_us=dt_us, crop=crop, polarity=polarity, binary=binary, cache=False)
    return load_nmnist(root, "train", **frames), load_nmnist(root, "test", **frames)


# ------------------------------------------------------------------------------ temporal: audio


def word_orders(n_classes: int, n_phonemes: int, seed: int = 0) -> np.ndarray:
    """``[n_classes, n_phonemes]``: distinct permutations of ``range(n_phonemes)``, one per class."""
    perms = list(itertools.permutations(range(n_phonemes)))
    if n_classes > len(perms):
        raise ValueError(f"{n_phonemes} phonemes give only {len(perms)} orders, need n_classes={n_classes}")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(perms), n_classes, replace=False)
    return np.array([perms[i] for i in pick], np.int64)


def audio_events(labels: np.ndarray, *, n_phonemes: int = 4, phoneme_ms: float = 40.0,
                 rate_hz: float = 400.0, noise_hz: float = 5.0, max_onset_ms: float = 40.0,
                 task_seed: int = 0, seed: int = 1, n_channels: int = N_CHANNELS
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Event times (seconds) and channels of one utterance per label (see the module docstring)."""
    if not (phoneme_ms > 0 and rate_hz > 0 and noise_hz >= 0 and max_onset_ms >= 0):
        raise ValueError("audio_events: phoneme_ms and rate_hz must be positive, noise_hz and "
                         "max_onset_ms non-negative")
    n_classes = int(labels.max()) + 1 if len(labels) else 1
    trng = np.random.default_rng(task_seed)
    orders = word_orders(max(n_classes, len(CLASSES)), n_phonemes, task_seed)
    # formant pairs: well-separated centres, one low and one high band per phoneme
    lows = trng.permutation(np.linspace(6, n_channels // 2 - 4, n_phonemes))
    highs = trng.permutation(np.linspace(n_channels // 2 + 4, n_channels - 7, n_phonemes))
    formants = np.stack([lows, highs], 1)  # [P, 2]
    rng = np.random.default_rng(seed)
    ch = np.arange(n_channels)
    times_out, chans_out = [], []
    for lab in labels:
        tempo = rng.uniform(0.85, 1.15)
        shift = rng.integers(-2, 3)
        t0 = rng.uniform(0, max_onset_ms) / 1000
        ts, cs = [], []
        for ph in orders[lab]:
            dur = phoneme_ms / 1000 * tempo * rng.uniform(0.85, 1.15)
            prof = np.exp(-0.5 * ((ch[None, :] - formants[ph][:, None] - shift) / 1.5) ** 2).sum(0)
            counts = rng.poisson(rate_hz * dur * prof)
            c = np.repeat(ch, counts)
            ts.append(t0 + rng.uniform(0, dur, len(c)))
            cs.append(c)
            t0 += dur
        total = t0 + 0.02
        n_noise = rng.poisson(noise_hz * n_channels * total)
        ts.append(rng.uniform(0, total, n_noise))
        cs.append(rng.integers(0, n_channels, n_noise))
        t, c = np.concatenate(ts), np.concatenate(cs)
        order = np.argsort(t, kind="stable")
        times_out.append(t[order])
        chans_out.append(c[order].astype(np.int64))
    return times_out, chans_out


def write_audio_ntidigits(path: str | Path, *, n_train: int = 1100, n_test: int = 550,
                          n_classes: int = 11, seed: int = 0, **kwargs: Any) -> Path:
    """Write the temporal stand-in as an N-TIDIGITS file (both splits, isolated digits)."""
    if not 2 <= n_classes <= len(CLASSES):
        raise ValueError(f"n_classes must lie in 2..{len(CLASSES)}, got {n_classes}")
    rng = np.random.default_rng(seed)
    splits: dict[str, Any] = {}  # split -> (keys, times, channels)
    for split, n, s in (("train", n_train, seed + 1), ("test", n_test, seed + 2)):
        labels = np.arange(n) % n_classes
        rng.shuffle(labels)
        times, chans = audio_events(labels, seed=s, task_seed=seed, **kwargs)
        keys = [f"{'man' if i % 2 else 'woman'}-s{i:05d}-a-{CLASSES[lab]}" for i, lab in enumerate(labels)]
        splits[split] = (keys, times, chans)
    return write_ntidigits(path, splits)


def audio_event_task(path: str | Path | None = None, *, n_train: int = 1100, n_test: int = 550,
                     n_classes: int = 11, seed: int = 0, n_steps: int = 50, dt: float = 0.005,
                     binary: bool = True, **kwargs: Any) -> tuple[SpikeDataset, SpikeDataset]:
    """``(train, test)`` of the temporal stand-in, written once as an N-TIDIGITS file (``path`` or
    the cache) and read through the N-TIDIGITS reader (frames of ``dt`` seconds)."""
    params = {"n_train": n_train, "n_test": n_test, "n_classes": n_classes, "seed": seed, **kwargs}
    if path is None:
        path = _task_dir("audio-ntidigits", params, None) / "n-tidigits.hdf5"
    path = Path(path)
    if not path.is_file():
        write_audio_ntidigits(path, n_train=n_train, n_test=n_test, n_classes=n_classes, seed=seed, **kwargs)
    train = load_ntidigits(path, "train", n_steps=n_steps, dt=dt, binary=binary)
    test = load_ntidigits(path, "test", n_steps=n_steps, dt=dt, binary=binary)
    # the file's label space has 11 classes; keep the ones this task uses
    return (SpikeDataset(train.spikes, train.labels, n_classes),
            SpikeDataset(test.spikes, test.labels, n_classes))


__all__ = ["audio_event_task", "audio_events", "digits_nmnist_task", "saccade_events",
           "word_orders", "write_audio_ntidigits", "write_digits_nmnist"]
