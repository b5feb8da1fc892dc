"""``python -m neuro.kernels.build``: build the C++ kernels now (the set-up runs this once).

Builds the core kernels (``neuro_ops``), the DCLS training kernels (``neuro_dcls``) and the
SpiNNaker simulator's engine, so that no first training step or first run pays the compile time.
"""
from __future__ import annotations

import sys

from . import _ext, dcls


def main() -> int:
    from neuro.hardware.spinnaker import engine

    built = {"neuro_ops": _ext.load(), "neuro_dcls": dcls.load(),
             "spinnaker": engine.cpp_available()}
    if all(built.values()):
        print("neuro: C++ kernels ready (" + ", ".join(built) + ")")
        return 0
    missing = ", ".join(k for k, ok in built.items() if not ok)
    print(f"neuro: C++ kernels unavailable: {missing} ({_ext.error() or _ext.error('neuro_dcls')}); "
          "the torch/numpy implementations will be used", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
