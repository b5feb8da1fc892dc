"""Hardware backends (installs as ``neuro.hardware``): one subpackage per target.

Every backend implements the protocol of :mod:`neuro.hardware.base` (``supports``, ``compile``,
``run``, and ``runs``: whether it runs the quantized graph, compared bit for bit with the integer
reference executor, or the float graph, compared with the float reference executor at the
agreement it states). :data:`TARGETS` is the one list of targets: the command line
(``neuro export/run/verify/energy``), ``neuro demo`` and the tests read it. :func:`get_backend`
imports one lazily, so a backend's heavy dependencies (Lava, onnxruntime) are only needed when
that target is used. Adding a target is one folder and one line below.
"""
from __future__ import annotations

import importlib
from typing import Any

#: target name -> the module implementing it (one line per target)
TARGETS: dict[str, str] = {
    "loihi": "neuro.hardware.loihi",
    "spinnaker": "neuro.hardware.spinnaker",
    "fpga": "neuro.hardware.fpga",
    "nest": "neuro.hardware.nest",
}


def get_backend(name: str) -> Any:
    """The backend module for target ``name`` (a key of :data:`TARGETS`)."""
    if name not in TARGETS:
        raise ValueError(f"unknown hardware target {name!r}; known: {list(TARGETS)}")
    try:
        return importlib.import_module(TARGETS[name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(TARGETS[name]):
            raise ValueError(f"hardware target {name!r} is not available in this release") from None
        raise


__all__ = ["TARGETS", "get_backend"]
