"""Hardware backends (installs as ``neuro.hardware``): one subpackage per target.

Every backend implements the protocol of :mod:`neuro.hardware.base` (``supports``, ``compile``,
``run``) on the graph IR; :func:`get_backend` imports one lazily by name, so a backend's heavy
dependencies (Lava, onnxruntime) are only needed when that target is used.
"""
from __future__ import annotations

import importlib
from typing import Any

TARGETS = ("loihi", "spinnaker", "fpga")


def get_backend(name: str) -> Any:
    """The backend module for target ``name`` (``loihi``, ``spinnaker``, ``fpga``)."""
    if name not in TARGETS:
        raise ValueError(f"unknown hardware target {name!r}; known: {list(TARGETS)}")
    try:
        return importlib.import_module(f"neuro.hardware.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"neuro.hardware.{name}"):
            raise ValueError(f"hardware target {name!r} is not available in this release") from None
        raise


__all__ = ["TARGETS", "get_backend"]
