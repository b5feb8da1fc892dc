"""Spike files used by the command line: ``.npz`` with ``spikes`` shaped ``[T, N]`` or ``[T, B, N]``.

Values must be exactly 0 or 1 (any bool, integer or real float dtype); anything else is rejected
with a ``ValueError`` naming the file, the key and the problem.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def load_spikes(path: str | Path, key: str = "spikes") -> np.ndarray:
    """Read ``key`` from an ``.npz`` file and check it is a ``[T, N]`` or ``[T, B, N]`` spike
    array of exact 0/1 values (:func:`neuro.validate.check_spikes`: dtype, finite, ``T, B, N >=
    1``, size limits). The container is read by :func:`neuro.safeio.read_npz` (corrupt, hostile
    or oversized files give one ``ValueError`` naming the file)."""
    from neuro.safeio import read_npz
    from neuro.validate import check_spikes

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    arr = read_npz(path, [key])[key]
    check_spikes(arr, f"{path}: {key!r}")
    return arr


def load_labels(path: str | Path, batch: int, key: str = "labels") -> np.ndarray | None:
    """The optional class labels of a spike file: ``key`` of the ``.npz``, int64 ``[B]`` (one
    non-negative class per sample of ``spikes [T, B, N]``); None when the file has none.
    ``ValueError`` naming the file, key and shape when they do not fit."""
    from neuro.safeio import read_npz

    got = read_npz(Path(path), [key], required=False)
    if key not in got:
        return None
    y = np.asarray(got[key])
    if y.ndim != 1 or y.shape[0] != batch:
        raise ValueError(f"{path}: {key!r} must be [B] = [{batch}] (one class per sample of "
                         f"'spikes'), got shape {list(y.shape)}")
    if y.dtype.kind not in "iub" or (y.size and int(y.min()) < 0):
        raise ValueError(f"{path}: {key!r} must hold non-negative integer classes, got "
                         f"dtype {y.dtype}" + (f", min {y.min()}" if y.size else ""))
    return y.astype(np.int64)


def load_npz_array(path: str | Path, key: str) -> np.ndarray:
    """Array ``key`` of the ``.npz`` file ``path``, read by :func:`neuro.safeio.read_npz` (no
    pickles; corrupt, hostile or oversized files give one ``ValueError`` naming the file)."""
    from neuro.safeio import read_npz

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return np.asarray(read_npz(path, [key])[key])


def save_spikes(path: str | Path, spikes: np.ndarray, **extra: np.ndarray) -> Path:
    """Write ``spikes`` (and extra arrays) to ``path`` atomically."""
    from neuro.atomic import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, spikes=np.asarray(spikes), **extra)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle

    return atomic_write(path, write)


def read_binned_cache(npz: Path, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(spikes, labels)`` from a binned-dataset cache file whose ``source`` equals ``tag`` (what
    the arrays were binned from, with which settings); None when missing, unreadable or stale."""
    from neuro.safeio import read_npz

    if not npz.is_file():
        return None
    try:  # any corruption (bad zip, zlib error, truncation, wrong keys) means "rebuild it"
        f = read_npz(npz, ["source", "spikes", "labels"])
        if f["source"].shape == () and str(f["source"]) == tag and f["spikes"].ndim == 3 \
                and f["labels"].ndim == 1 and len(f["labels"]) == len(f["spikes"]):
            return f["spikes"], f["labels"].astype(np.int64)
    except ValueError:
        pass  # unreadable or stale: the caller rebuilds it
    return None


def write_binned_cache(npz: Path, spikes: np.ndarray, labels: np.ndarray, tag: str) -> None:
    """Cache binned arrays atomically; a failure to write only warns (the data is in memory)."""
    from neuro.atomic import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, spikes=spikes, labels=labels, source=np.array(tag))

    try:
        atomic_write(npz, write)
    except OSError as exc:
        warnings.warn(f"{npz}: could not cache the binned arrays ({exc})", stacklevel=3)


def default_spikes(n_in: tuple[int, ...], *, steps: int = 100, batch: int = 8, rate: float = 0.1,
                   seed: int = 0) -> tuple[np.ndarray, str]:
    """``(x [steps, batch, *n_in] float32, description)``: Bernoulli(``rate``) spikes from
    ``seed``, the input ``neuro export/verify/energy`` use when none is given."""
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch, *n_in)) < rate).astype(np.float32)
    return x, f"random Bernoulli({rate:g}) spikes, T={steps}, B={batch}, seed {seed}"
