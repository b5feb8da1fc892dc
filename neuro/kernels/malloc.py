"""Keep freed tensor memory in the process (glibc ``malloc``) so that big buffers are reused.

A training step allocates and frees the same large buffers every step (the ``[T, B x width]``
membranes and spikes of the fused LIF, the synapse outputs, the gradients: each 10-100 MB).
glibc serves blocks above its mmap threshold with fresh ``mmap`` s and returns freed memory at the
top of the heap above its trim threshold to the system, so each step touches its big buffers as
new pages again: one page fault per 4 KiB. On the 2-core VM of the benchmarks a fault costs
~3 us of process time (and more wall time, taken by the hypervisor), i.e. 40 ms of a 190 ms step
at 256 x 2, T=100, B=128 (9,600 faults per step).

:func:`tune` (called once when the C++ kernels load) sets ``M_MMAP_THRESHOLD`` to 32 MiB (glibc's
maximum: smaller blocks come from the heap and are reused) and ``M_TRIM_THRESHOLD`` to 256 MiB
(up to that much freed memory stays mapped for the next step). The cost is resident memory: up to
256 MiB of freed heap is kept instead of returned. Nothing is changed when ``NEURO_MALLOC_TUNE=0``,
when the user set any ``MALLOC_*_`` variable (their choice wins), or when the C library is not glibc.

Blocks of 32 MiB and more still come from ``mmap`` every time (glibc caps the threshold there), and
a training step at width 1024, B = 128, T = 100 allocates a dozen of them (52 MiB each) per step.
:func:`tune` therefore also sets torch's ``THP_MEM_ALLOC_ENABLE=1`` (unless the environment sets it):
torch then aligns its large CPU allocations to 2 MiB and ``madvise`` s them as transparent huge
pages (where the kernel's THP mode is ``madvise`` or ``always``), one fault per 2 MiB instead of
per 4 KiB. Measured on the 2-core Zen 3 VM: 20 allocations of 64 MiB filled once, 327,745 -> 10,925
page faults and 1.52 -> 0.66 s of CPU; one training step of 700 -> 1024 x 4 -> 35, T = 100,
B = 128, 3.83 -> 2.44 s. torch reads the variable once, at its first large allocation: it is set
when ``neuro.kernels`` is imported (:func:`prefer_huge_pages`; building a neuro model imports it,
usually before the data is made) and applies to the whole process from then on; a process that
made a large tensor before has fixed torch's choice, and the setting has no effect there.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

#: glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

_state: dict[str, bool | str] = {}


def _allowed() -> str:
    """Why the process-wide settings must not be changed ("" when they may)."""
    if os.environ.get("NEURO_MALLOC_TUNE", "1") == "0":
        return "NEURO_MALLOC_TUNE=0"
    if any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return "MALLOC_*_ set in the environment"
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return "not glibc"
    return ""


def prefer_huge_pages() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` for torch (module docstring) unless the environment sets it
    or tuning is off; return whether the variable is ``1`` now."""
    if not _allowed():
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    return os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"


def tune() -> bool:
    """Apply the settings above once per process; return whether they are in effect."""
    if "ok" in _state:
        return bool(_state["ok"])
    _state["ok"] = False
    why = _allowed()
    if why:
        _state["why"] = why
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError) as exc:
            _state["why"] = f"no mallopt ({exc})"
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            _state["ok"] = (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
            _state["why"] = "" if _state["ok"] else "mallopt refused"
            prefer_huge_pages()
    return bool(_state["ok"])


def status() -> str:
    """``"tuned"`` or why not (``"not tried"`` before the kernels loaded)."""
    if "ok" not in _state:
        return "not tried"
    return "tuned" if _state["ok"] else f"not tuned ({_state['why']})"


__all__ = ["prefer_huge_pages", "status", "tune"]
