"""Size limits checked before neuro allocates memory for what a file declares.

A file states how large its contents are (an ``.npy`` header's shape, a zip member's
uncompressed size, an HDF5 dataset's shape, a config's layer width, a JSON file's length). neuro
compares that declared size with a limit *before* allocating or inflating anything, so a tiny
hostile file cannot exhaust memory. Each limit has a default and an environment variable that
overrides it (a positive integer; ``k``/``M``/``G`` suffixes are powers of 1024):

=============================  ===========  ===============================================
variable                       default      what it bounds
=============================  ===========  ===============================================
``NEURO_MAX_ARRAY_BYTES``      4 GiB (*)    one array read from a file (npz member, HDF5
                                            dataset, safetensors tensor, config layer)
``NEURO_MAX_ELEMENTS``         2**30        elements of one array (as above)
``NEURO_MAX_INFLATE_RATIO``    1000         uncompressed / compressed size of a zip member
                                            or gzip file (beyond the first MiB)
``NEURO_MAX_JSON_BYTES``       64 MiB       one JSON/TOML text (graph, manifest, config, costs)
``NEURO_MAX_JSON_DEPTH``       64           nesting depth of JSON values and NIR groups
``NEURO_MAX_MODEL_BYTES``      16 GiB (*)   the memory a model config declares (parameters,
                                            buffers and what building/running one sample
                                            needs), checked before the model is built
=============================  ===========  ===============================================

(*) or less: a quarter of the address-space limit (``ulimit -v``) or half of the available
memory, whichever is smaller (:func:`memory_budget`).

A value over a limit raises :class:`LimitError` (a ``ValueError``: the CLI prints one line and
exits 2) naming the file, what was declared, the limit and the variable that raises it.
"""
from __future__ import annotations

import math
import os

DEFAULTS: dict[str, int] = {
    "NEURO_MAX_ARRAY_BYTES": 4 << 30,
    "NEURO_MAX_ELEMENTS": 1 << 30,
    "NEURO_MAX_INFLATE_RATIO": 1_000,
    "NEURO_MAX_JSON_BYTES": 64 << 20,
    "NEURO_MAX_JSON_DEPTH": 64,
    "NEURO_MAX_MODEL_BYTES": 16 << 30,
}
_BUDGETED = ("NEURO_MAX_ARRAY_BYTES", "NEURO_MAX_MODEL_BYTES")  # capped by memory_budget()
_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class LimitError(ValueError):
    """A declared size is over a ``NEURO_MAX_*`` limit."""


def memory_budget() -> int | None:
    """A quarter of the address space this process may use (``RLIMIT_AS``) or half of the
    memory the system has available, whichever is smaller; None when neither is known."""
    found = []
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            found.append(soft // 4)
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024 // 2)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return min(found) if found else None


def limit(name: str) -> int:
    """The current value of limit ``name`` (a key of :data:`DEFAULTS`), read from the
    environment each time (so tests and users can change it without re-importing).
    ``NEURO_MAX_ARRAY_BYTES`` and ``NEURO_MAX_MODEL_BYTES`` default to the smaller of their
    :data:`DEFAULTS` entry and :func:`memory_budget`."""
    default = DEFAULTS[name]
    if name in _BUDGETED:
        budget = memory_budget()
        default = min(default, budget) if budget else default
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    scale = _SUFFIX.get(text[-1].lower(), 1)
    digits = text[:-1] if scale != 1 else text
    try:
        value = int(digits) * scale
    except ValueError:
        raise LimitError(f"{name}={text!r}: expected a positive integer (suffix k, M or G "
                         "allowed)") from None
    if value <= 0:
        raise LimitError(f"{name}={text!r}: expected a positive integer")
    return value


def check_array_size(where: str, shape: tuple[int, ...], itemsize: int) -> None:
    """Raise :class:`LimitError` when an array of ``shape`` and ``itemsize`` bytes per element
    (as a file declares it) would be over ``NEURO_MAX_ELEMENTS`` or ``NEURO_MAX_ARRAY_BYTES``."""
    if any(int(d) < 0 for d in shape):
        raise LimitError(f"{where}: negative dimension in declared shape {tuple(shape)}")
    n = math.prod(int(d) for d in shape)
    if n > limit("NEURO_MAX_ELEMENTS"):
        raise LimitError(f"{where}: declares shape {tuple(shape)} ({n} elements), over the limit "
                         f"of {limit('NEURO_MAX_ELEMENTS')} (raise NEURO_MAX_ELEMENTS to allow it)")
    nbytes = n * int(itemsize)
    if nbytes > limit("NEURO_MAX_ARRAY_BYTES"):
        raise LimitError(f"{where}: declares {nbytes} bytes (shape {tuple(shape)}), over the "
                         f"limit of {limit('NEURO_MAX_ARRAY_BYTES')} bytes (raise "
                         "NEURO_MAX_ARRAY_BYTES to allow it)")


def check_model_size(where: str, nbytes: int, detail: str = "") -> None:
    """Raise :class:`LimitError` when a model config declares ``nbytes`` of memory (its
    parameters, buffers and working arrays, computed from the config alone) over
    ``NEURO_MAX_MODEL_BYTES``; ``detail`` says where the bytes come from."""
    top = limit("NEURO_MAX_MODEL_BYTES")
    if nbytes > top:
        more = f" ({detail})" if detail else ""
        raise LimitError(f"{where}: the model would need {_human(nbytes)}{more}, over the limit "
                         f"of {_human(top)} (raise NEURO_MAX_MODEL_BYTES to allow it)")


def _human(n: int) -> str:
    """``n`` bytes with a binary unit: ``"3.7 TiB"``."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


__all__ = ["DEFAULTS", "LimitError", "check_array_size", "check_model_size", "limit",
           "memory_budget"]
