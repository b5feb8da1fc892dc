"""Offline synthetic spike-pattern classification (no download, deterministic).

Each class is a fixed template of ``n_events`` spikes (channel, time) drawn once from
``task_seed``. A sample of a class is its template with every event jittered by up to ``jitter``
steps and dropped with probability ``p_drop``, plus background Poisson noise at ``noise_rate``
spikes per channel per step. Templates of different classes overlap in channels, so the classes
differ in which channels fire *when*; a network must integrate over time to tell them apart.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class SpikeDataset:
    """``spikes`` uint8 ``[N, T, C]`` and ``labels`` int64 ``[N]``."""

    spikes: np.ndarray
    labels: np.ndarray
    n_classes: int

    def __post_init__(self) -> None:
        if self.spikes.ndim != 3:
            raise ValueError(f"SpikeDataset.spikes must be [N, T, C], got shape {self.spikes.shape}")
        if self.labels.shape != (self.spikes.shape[0],):
            raise ValueError(
                f"SpikeDataset.labels must be [N] with N={self.spikes.shape[0]}, got {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.spikes.shape[1])

    @property
    def n_channels(self) -> int:
        return int(self.spikes.shape[2])

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(x[T, B, C] float32, y[B] int64)``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        spikes = torch.from_numpy(self.spikes)
        labels = torch.from_numpy(self.labels)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield spikes[idx].transpose(0, 1).float().contiguous(), labels[idx]


def spike_pattern_task(
    n_train: int = 4000,
    n_test: int = 1000,
    *,
    n_channels: int = 40,
    n_steps: int = 50,
    n_classes: int = 10,
    n_events: int = 20,
    jitter: int = 2,
    p_drop: float = 0.2,
    noise_rate: float = 0.02,
    task_seed: int = 0,
    seed: int = 1,
) -> tuple[SpikeDataset, SpikeDataset]:
    """Return ``(train, test)`` sets of the task described in the module docstring."""
    if min(n_train, n_test, n_channels, n_steps, n_classes, n_events) <= 0:
        raise ValueError("spike_pattern_task: every size must be positive")
    trng = np.random.default_rng(task_seed)
    chans = trng.integers(0, n_channels, size=(n_classes, n_events))
    times = trng.integers(0, n_steps, size=(n_classes, n_events))
    rng = np.random.default_rng(seed)

    def sample(n: int) -> SpikeDataset:
        labels = rng.integers(0, n_classes, size=n)
        spikes = (rng.random((n, n_steps, n_channels)) < noise_rate).astype(np.uint8)
        for i, c in enumerate(labels):
            keep = rng.random(n_events) >= p_drop
            t = np.clip(times[c] + rng.integers(-jitter, jitter + 1, size=n_events), 0, n_steps - 1)
            spikes[i, t[keep], chans[c][keep]] = 1
        return SpikeDataset(spikes, labels.astype(np.int64), n_classes)

    return sample(n_train), sample(n_test)
