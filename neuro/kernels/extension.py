"""Build-on-first-use loader shared by every C++ extension of neuro (the core kernels in
``neuro.kernels``, the DCLS kernels, the SpiNNaker simulator's engine): each part owns its source
file and calls :func:`load_extension` with it.

An extension is compiled with ``torch.utils.cpp_extension`` (needs a C++ compiler and ninja, which
is a dependency of neuro) into a cache directory keyed by the source hash, the compiler flags, the
torch version and the CPU, so a second process loads it in milliseconds.

OpenMP: ``at::parallel_for`` is an inline template that is only parallel when the extension itself
is compiled with ``-fopenmp`` (``_OPENMP`` defined); otherwise it runs the whole range on the
calling thread. When torch was built with OpenMP (``torch.backends.openmp.is_available()``), the
extensions are compiled and linked with ``-fopenmp``: the ``libgomp.so.1`` they need is the one
torch has already loaded (same soname), so ``torch.set_num_threads`` governs them too. Every
kernel splits its work so that each output element is computed by one thread in a fixed order:
results do not depend on the thread count. When it cannot be built, :func:`load_extension`
warns once and returns False; the caller then uses its own implementation of the same
computation (torch for the kernels, numpy for the SpiNNaker engine), which gives the same results.

Shared headers: ``neuro/kernels/csrc`` is on every extension's include path (``#include
"blas.h"``: :mod:`neuro.kernels.blas`), and its ``*.h`` files are part of every cache key, so an
edited header rebuilds every extension.

Each part that owns an extension also exposes ``build() -> bool`` and ``build_error() -> str |
None``; ``python -m neuro.kernels.build`` calls them for the modules it lists.

Environment:
    NEURO_EXT_DIR       cache directory (default ``~/.cache/neuro/ext``)
    NEURO_DISABLE_EXT   set to 1 to never build or load the extension
    NEURO_EXT_OPENMP    set to 0 to compile without OpenMP (``at::parallel_for`` then runs on
                        the calling thread only)
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path

import torch

_states: dict[str, dict[str, object]] = {}

#: headers shared by every extension (on the include path, hashed into every cache key)
SHARED_INCLUDE = Path(__file__).with_name("csrc")


def _compiler_flags() -> tuple[list[str], list[str]]:
    """(extra_cflags, extra_ldflags) for every extension."""
    # -fno-trapping-math (as torch itself is built): lets GCC if-convert and vectorize loops with
    # a float comparison (the LIF threshold); it changes no rounding, results stay bit for bit.
    cflags = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math"]
    ldflags: list[str] = []
    if platform.machine() in ("x86_64", "AMD64"):
        cflags.append("-march=native")
    if torch.backends.openmp.is_available() and os.environ.get("NEURO_EXT_OPENMP", "1") != "0":
        cflags.append("-fopenmp")
        ldflags.append("-fopenmp")
    return cflags, ldflags


def _cache_dir(name: str, source: Path, flags: list[str]) -> Path:
    root = os.environ.get("NEURO_EXT_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "neuro", "ext"
    )
    key = hashlib.sha256()
    key.update(source.read_bytes())
    for header in sorted(SHARED_INCLUDE.glob("*.h")):  # an edited shared header rebuilds
        key.update(header.name.encode() + header.read_bytes())
    key.update(str(source.resolve()).encode())  # ninja rebuilds when the same build dir sees another path
    key.update(" ".join(flags).encode())  # e.g. -fopenmp: a build without it must not be reused
    key.update(torch.__version__.encode())
    key.update(platform.machine().encode())
    try:  # -march=native: a different CPU must not reuse the binary
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            key.update(next((ln for ln in f if ln.startswith("flags")), "").encode())
    except OSError:
        pass
    path = Path(root) / f"{name}_{key.hexdigest()[:16]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _put_ninja_on_path() -> None:
    try:
        import ninja  # the PyPI package ships the binary

        bin_dir = getattr(ninja, "BIN_DIR", None)
    except ImportError:
        bin_dir = None
    dirs = [d for d in (bin_dir, os.path.dirname(sys.executable)) if d]
    os.environ["PATH"] = os.pathsep.join(dirs + [os.environ.get("PATH", "")])


def load_extension(name: str, source: Path, probe: str) -> bool:
    """Build (if needed) and load the C++ file ``source`` registering ``TORCH_LIBRARY(name, m)``;
    return whether ``torch.ops.<name>.<probe>`` exists. Tried once per process."""
    state = _states.setdefault(name, {"tried": False, "ok": False, "error": None})
    if state["tried"]:
        return bool(state["ok"])
    state["tried"] = True
    if os.environ.get("NEURO_DISABLE_EXT") == "1":
        state["error"] = "disabled by NEURO_DISABLE_EXT=1"
        return False
    try:
        from torch.utils import cpp_extension

        _put_ninja_on_path()
        cflags, ldflags = _compiler_flags()
        cpp_extension.load(
            name=name,
            sources=[str(source)],
            extra_cflags=cflags,
            extra_ldflags=ldflags,
            extra_include_paths=[str(SHARED_INCLUDE)],
            build_directory=str(_cache_dir(name, source, cflags + ldflags)),
            is_python_module=False,
            verbose=False,
        )
        state["ok"] = hasattr(torch.ops, name) and hasattr(getattr(torch.ops, name), probe)
    except Exception as exc:  # no compiler, no ninja, read-only cache, ...
        state["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        warnings.warn(
            f"neuro: the C++ kernels {name!r} could not be built "
            f"({state['error']}); using the slower implementation",
            RuntimeWarning,
            stacklevel=2,
        )
    return bool(state["ok"])


def extension_error(name: str) -> str | None:
    """Why extension ``name`` is not available (None when it is, or was never tried)."""
    return _states.get(name, {}).get("error")  # type: ignore[return-value]


__all__ = ["SHARED_INCLUDE", "extension_error", "load_extension"]
