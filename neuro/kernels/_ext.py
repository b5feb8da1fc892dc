"""Build-on-first-use loader for the C++ kernels in ``csrc/neuro_ops.cpp``.

The extension is compiled with ``torch.utils.cpp_extension`` (needs a C++ compiler and ninja, which
is a dependency of neuro) into a cache directory keyed by the source hash, the torch version and the
CPU, so a second process loads it in milliseconds. When it cannot be built, neuro warns once and
uses the device-generic torch implementation of the same forward/backward, which gives the same
results (``neuro.kernels.backend()`` says which one is active).

Environment:
    NEURO_EXT_DIR       cache directory (default ``~/.cache/neuro/ext``)
    NEURO_DISABLE_EXT   set to 1 to never build or load the extension
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path

import torch

_SOURCE = Path(__file__).with_name("csrc") / "neuro_ops.cpp"
_state: dict[str, object] = {"tried": False, "ok": False, "error": None}


def _cache_dir() -> Path:
    root = os.environ.get("NEURO_EXT_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "neuro", "ext"
    )
    key = hashlib.sha256()
    key.update(_SOURCE.read_bytes())
    key.update(torch.__version__.encode())
    key.update(platform.machine().encode())
    try:  # -march=native: a different CPU must not reuse the binary
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            key.update(next((ln for ln in f if ln.startswith("flags")), "").encode())
    except OSError:
        pass
    path = Path(root) / f"neuro_ops_{key.hexdigest()[:16]}"
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


def load() -> bool:
    """Build (if needed) and load the extension; return whether ``torch.ops.neuro_ops`` exists."""
    if _state["tried"]:
        return bool(_state["ok"])
    _state["tried"] = True
    if os.environ.get("NEURO_DISABLE_EXT") == "1":
        _state["error"] = "disabled by NEURO_DISABLE_EXT=1"
        return False
    try:
        from torch.utils import cpp_extension

        _put_ninja_on_path()
        flags = ["-O3", "-ffp-contract=off", "-fno-fast-math"]
        if platform.machine() in ("x86_64", "AMD64"):
            flags.append("-march=native")
        cpp_extension.load(
            name="neuro_ops",
            sources=[str(_SOURCE)],
            extra_cflags=flags,
            build_directory=str(_cache_dir()),
            is_python_module=False,
            verbose=False,
        )
        _state["ok"] = hasattr(torch.ops, "neuro_ops") and hasattr(
            torch.ops.neuro_ops, "lif_forward"
        )
    except Exception as exc:  # no compiler, no ninja, read-only cache, ...
        _state["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        warnings.warn(
            "neuro: the C++ kernels could not be built "
            f"({_state['error']}); using the slower torch implementation",
            RuntimeWarning,
            stacklevel=2,
        )
    return bool(_state["ok"])


def error() -> str | None:
    """Why the extension is not available (None when it is, or was never tried)."""
    return _state["error"]  # type: ignore[return-value]
