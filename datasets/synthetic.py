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
        if 0 in self.spikes.shape:  # an empty split would divide by zero in every metric
            raise ValueError(f"SpikeDataset: empty (shape [N, T, C] = {list(self.spikes.shape)}; "
                             "every split needs at least one sample, one step and one channel)")

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


def delay_pattern_task(
    n_train: int = 2000,
    n_test: int = 1000,
    *,
    n_pairs: int = 8,
    n_classes: int = 4,
    max_interval: int = 8,
    n_steps: int = 30,
    noise_rate: float = 0.01,
    task_seed: int = 0,
    seed: int = 1,
) -> tuple[SpikeDataset, SpikeDataset]:
    """A task where only spike *timing between channels* tells the classes apart.

    ``2 n_pairs`` channels form pairs ``(a_m, b_m)``. Class ``c`` fixes an interval
    ``delta[c, m]`` in ``0..max_interval`` steps for every pair. A sample fires every ``a_m`` once
    at a random onset and ``b_m`` exactly ``delta[c, m]`` steps later, plus Poisson noise. Channels
    and spike counts are the same for every class, and onsets are random, so a network of
    near-memoryless neurons can only tell classes apart by coincidences, i.e. by delaying ``a_m``
    by ``delta`` so that it meets ``b_m``: the setting in which learned synaptic delays help.
    """
    if max_interval >= n_steps:
        raise ValueError("delay_pattern_task: max_interval must be shorter than n_steps")
    trng = np.random.default_rng(task_seed)
    delta = trng.integers(0, max_interval + 1, size=(n_classes, n_pairs))
    rng = np.random.default_rng(seed)
    C = 2 * n_pairs

    def sample(n: int) -> SpikeDataset:
        labels = rng.integers(0, n_classes, size=n)
        spikes = (rng.random((n, n_steps, C)) < noise_rate).astype(np.uint8)
        onsets = rng.integers(0, n_steps - max_interval, size=(n, n_pairs))
        rows = np.arange(n)[:, None]
        pairs = np.arange(n_pairs)[None, :]
        spikes[rows, onsets, 2 * pairs] = 1
        spikes[rows, onsets + delta[labels], 2 * pairs + 1] = 1
        return SpikeDataset(spikes, labels.astype(np.int64), n_classes)

    return sample(n_train), sample(n_test)
