"""Spike files used by the command line: ``.npz`` with ``spikes`` shaped ``[T, N]`` or ``[T, B, N]``.

Values must be finite and 0/1 (or small non-negative counts); anything else is rejected with a
``ValueError`` naming the file, the key and the problem.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np


def load_spikes(path: str | Path, key: str = "spikes") -> np.ndarray:
    """Read ``key`` from an ``.npz`` file and check it is a ``[T, N]`` or ``[T, B, N]`` spike array."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a plain .npy array, not an .npz archive")
            files = list(f.files)
            arr = f[key] if key in files else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        reason = "not a zip archive" if "pickle" in str(exc) else str(exc)
        raise ValueError(f"{path}: not a readable .npz file ({reason})") from None
    if arr is None:
        raise ValueError(f"{path}: no array {key!r} (found {sorted(files)})")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{path}: {key!r} must be numeric, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{path}: {key!r} must be [T, N] or [T, B, N], got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{path}: {key!r} holds NaN or infinite values")
    if (arr < 0).any():
        raise ValueError(f"{path}: {key!r} holds negative values; spikes are 0/1 counts")
    return arr


def load_npz_array(path: str | Path, key: str) -> np.ndarray:
    """Array ``key`` of the ``.npz`` file ``path`` (no pickles); a ``ValueError`` naming the file
    and the key when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a plain .npy array, not an .npz archive")
            if key not in f.files:
                raise ValueError(f"no array {key!r} (found {sorted(f.files)})")
            return np.asarray(f[key])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None


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
    if not npz.is_file():
        return None
    try:
        with np.load(npz, allow_pickle=False) as f:
            if str(f["source"]) == tag:
                return f["spikes"], f["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError):
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
