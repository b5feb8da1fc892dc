"""Offline stand-ins: saccade recordings of sklearn digits (N-MNIST files) and the temporal
audio-like task (N-TIDIGITS file); both go through the published-format readers."""
from __future__ import annotations

import numpy as np
import pytest

from neuro.datasets.events import (
    audio_event_task,
    audio_events,
    digits_nmnist_task,
    saccade_events,
    word_orders,
    write_digits_nmnist,
)
from neuro.datasets.nmnist import list_split, read_nmnist_file
from neuro.datasets.ntidigits import read_ntidigits


def test_saccade_events_follow_the_image():
    img = np.zeros((1, 8, 8))
    img[0, 2:6, 2:6] = 1.0  # a bright square
    blank = np.zeros((1, 8, 8))
    (ev,) = saccade_events(img, seed=0, noise_hz=0.0)
    (ev2,) = saccade_events(img, seed=0, noise_hz=0.0)
    assert np.array_equal(ev, ev2)  # seeded
    assert len(ev) > 200
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() < 300_000
    assert set(np.unique(ev["p"])) == {0, 1}
    # the square (scale 1.5 -> 6 x 6, centred on 34 x 34) moves by ~2.5 px: events stay near it
    assert ev["x"].min() >= 10 and ev["x"].max() <= 23 and ev["y"].min() >= 10 and ev["y"].max() <= 23
    # the path is closed: brightness returns, so ON and OFF counts are similar
    assert 0.35 < ev["p"].mean() < 0.65
    (noise,) = saccade_events(blank, seed=1, noise_hz=2.0)
    assert abs(len(noise) - 2.0 * 34 * 34 * 0.3) < 5 * np.sqrt(2.0 * 34 * 34 * 0.3)
    with pytest.raises(ValueError, match="contrast"):
        saccade_events(img, contrast=0.0)


def test_digits_written_in_the_nmnist_layout(tmp_path):
    root = write_digits_nmnist(tmp_path / "d", max_samples=30, seed=0)
    files, labels = list_split(root, "train")
    test_files, _ = list_split(root, "test")
    assert len(files) + len(test_files) == 30 and len(test_files) == 6
    ev = read_nmnist_file(files[0])
    assert len(ev) > 100 and ev["x"].max() < 34
    assert (root / "COMPLETE").is_file()
    train, test = digits_nmnist_task(root, max_samples=30, seed=0)
    assert train.spikes.shape == (24, 50, 256) and test.spikes.shape == (6, 50, 256)
    assert train.spikes.max() == 1 and 0.01 < train.spikes.mean() < 0.3
    with pytest.raises(ValueError, match="other parameters"):
        digits_nmnist_task(root, max_samples=31, seed=0)


def test_word_orders_are_distinct_permutations():
    orders = word_orders(11, 4, seed=0)
    assert len({tuple(o) for o in orders}) == 11
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    with pytest.raises(ValueError, match="only 6 orders"):
        word_orders(11, 3)


def test_audio_classes_differ_only_in_order():
    labels = np.repeat(np.arange(3), 300)
    times, chans = audio_events(labels, seed=3, noise_hz=0.0)
    hist = np.stack([np.bincount(c, minlength=64) for c in chans]).astype(float)
    means = np.stack([hist[labels == k].mean(0) for k in range(3)])
    sem = hist.std(0).max() / np.sqrt(300)
    # same expected channel counts in every class (within sampling error) ...
    assert np.abs(means - means.mean(0)).max() < 5 * sem + 0.5
    # ... but the mean time at which each channel fires differs between classes
    def mean_time(k):
        out = np.zeros(64)
        for t, c in zip([times[i] for i in np.nonzero(labels == k)[0]], [chans[i] for i in np.nonzero(labels == k)[0]]):
            out += np.bincount(c, weights=t, minlength=64)
        return out / np.maximum(hist[labels == k].sum(0), 1)
    assert np.abs(mean_time(0) - mean_time(1)).max() > 0.03  # tens of milliseconds


def test_audio_task_through_the_ntidigits_reader(tmp_path):
    path = tmp_path / "audio.hdf5"
    train, test = audio_event_task(path, n_train=66, n_test=33, seed=0)
    assert path.is_file()
    _, _, labels, keys = read_ntidigits(path, "train")
    assert len(keys) == 66 and np.bincount(labels).tolist() == [6] * 11
    assert train.spikes.shape == (66, 50, 64) and test.spikes.shape == (33, 50, 64)
    assert train.n_classes == 11 and 0.01 < train.spikes.mean() < 0.5
    again, _ = audio_event_task(path, n_train=66, n_test=33, seed=0)
    assert np.array_equal(again.spikes, train.spikes)
