"""Event data from ``tonic`` (the loader most SNN users already have) as neuro spike arrays.

tonic gives a recording as a numpy structured array with fields ``x``, ``t``, ``p`` and, for
cameras, ``y`` (``t`` in microseconds), and a sensor size ``(W, H, P)``. :func:`from_tonic` bins
it into time-first spikes ``[T, N]`` with ``N = P * H * W`` channels, channel
``p * H * W + y * W + x`` (tonic's ``ToFrame`` layout ``[T, P, H, W]``, flattened), bin ``k``
holding the events with ``k * dt <= t - t_start < (k + 1) * dt``. :func:`tonic_dataset` does the
same for every sample of a tonic dataset (or any sequence of ``(events, label)``) and stacks them
``[T, B, N]`` with the labels ``[B]``; ``np.savez(path, spikes=..., labels=...)`` makes the spike
file every ``neuro`` command reads. tonic itself is not needed to call these functions.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _sensor(sensor_size: Sequence[int], has_y: bool) -> tuple[int, int, int]:
    if len(sensor_size) != 3 or any(int(s) <= 0 for s in sensor_size):
        raise ValueError(f"sensor_size must be (W, H, P) with positive sizes, got {tuple(sensor_size)}")
    w, h, p = (int(s) for s in sensor_size)
    if not has_y and h != 1:
        raise ValueError(f"events without a 'y' field need sensor height 1, got sensor_size {(w, h, p)}")
    return w, h, p


def from_tonic(events: np.ndarray, sensor_size: Sequence[int], *, dt: float,
               n_steps: int | None = None, t_start: float = 0.0, counts: bool = False) -> np.ndarray:
    """Bin one tonic recording into spikes ``[T, P * H * W]`` (module docstring).

    ``dt`` and ``t_start`` in seconds (tonic's ``t`` is in microseconds); ``n_steps``: T (events
    after it are dropped; default: up to the last event). ``counts``: keep event counts per bin
    (uint16) instead of 0/1 spikes (uint8). Raises ``ValueError`` naming the field or value."""
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in ("x", "t", "p") if f not in names]
    if missing:
        raise ValueError(f"tonic events need fields x, t, p (and y for cameras); missing {missing}, "
                         f"got fields {list(names)}")
    if not dt > 0:
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    w, h, p = _sensor(sensor_size, "y" in names)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64) if "y" in names else np.zeros_like(x)
    pol = events["p"].astype(np.int64)
    if p == 1:
        pol = np.zeros_like(pol)  # single-polarity sensors: every event is channel group 0
    for field, v, size in (("x", x, w), ("y", y, h), ("p", pol, p)):
        if v.size and (v.min() < 0 or v.max() >= size):
            raise ValueError(f"tonic events: field {field!r} ranges over [{v.min()}, {v.max()}], "
                             f"outside the sensor's {size}")
    dt_us = dt * 1e6
    step = np.floor((events["t"].astype(np.float64) - t_start * 1e6) / dt_us).astype(np.int64)
    if n_steps is None:
        n_steps = int(step.max()) + 1 if step.size else 0
    keep = (step >= 0) & (step < n_steps)
    out = np.zeros((n_steps, p * h * w), np.uint16 if counts else np.uint8)
    channel = (pol * h + y) * w + x
    if counts:
        np.add.at(out, (step[keep], channel[keep]), 1)
    else:
        out[step[keep], channel[keep]] = 1
    return out


def tonic_dataset(dataset: Any, *, dt: float, n_steps: int, sensor_size: Sequence[int] | None = None,
                  max_samples: int | None = None, counts: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(spikes [T, B, N], labels [B])`` from a tonic dataset or a sequence of ``(events,
    label)`` pairs; ``sensor_size`` defaults to the dataset's ``sensor_size`` attribute."""
    size = sensor_size if sensor_size is not None else getattr(dataset, "sensor_size", None)
    if size is None:
        raise ValueError("sensor_size: the dataset has no sensor_size attribute; pass (W, H, P)")
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    if n == 0:
        raise ValueError("the dataset holds no samples")
    xs, labels = [], []
    for i in range(n):
        events, label = dataset[i]
        xs.append(from_tonic(events, size, dt=dt, n_steps=n_steps, counts=counts))
        labels.append(int(np.asarray(label)))
    return np.stack(xs, axis=1), np.asarray(labels, np.int64)


__all__ = ["from_tonic", "tonic_dataset"]
