"""``python -m neuro.kernels.build``: build every C++ extension now (the set-up runs this once).

Each extension belongs to the part that uses it and is built through the shared loader
(:mod:`neuro.kernels.extension`); this command only walks the list below, importing each module
by name and calling its ``build()`` (and ``build_error()`` when that fails), so that no first
training step or first run pays the compile time. ``neuro.kernels`` itself imports no hardware
backend.
"""
from __future__ import annotations

import importlib
import sys

#: extension label -> the module that owns it (exposes ``build() -> bool``, ``build_error()``)
EXTENSIONS: dict[str, str] = {
    "neuro_ops": "neuro.kernels._ext",                 # fused LIF, event linear, integer neuron
    "neuro_dcls": "neuro.kernels.dcls",                # DCLS training kernels
    "neuro_blas": "neuro.kernels.blas",                # float32 GEMM through OpenBLAS (blas.h)
    "spinnaker": "neuro.hardware.spinnaker.engine",    # the SpiNNaker simulator's engine
    "neuro_wkv": "neuro.models.spikegpt.wkv",          # SpikeGPT's WKV recurrence
    "neuro_spikegpt": "neuro.models.spikegpt.step",    # SpikeGPT's fused streaming step
    "neuro_egru": "neuro.models.egru.kernels",         # EGRU's event-driven cell
}


def main() -> int:
    built: dict[str, bool] = {}
    errors: dict[str, str | None] = {}
    for label, module in EXTENSIONS.items():
        mod = importlib.import_module(module)
        built[label] = bool(mod.build())
        if not built[label]:
            errors[label] = mod.build_error()
    if all(built.values()):
        print("neuro: C++ kernels ready (" + ", ".join(built) + ")")
        return 0
    missing = ", ".join(f"{k} ({why})" for k, why in errors.items())
    print(f"neuro: C++ kernels unavailable: {missing}; the torch/numpy implementations will be used",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
