"""``neuro demo``: every model family trained offline, run on every hardware target, compared
with the reference executor, and priced by the energy report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn


def run_demo(out: Path, *, seed: int = 0, epochs: int = 8, samples: int = 16,
             families: list[str] | None = None) -> bool:
    """Every family with a demo (or those named in ``families``): train it offline, write the
    checkpoint and a sample input ``spikes.npz`` (its held-out test samples, ``[T, B, N]`` 0/1),
    run it on every target, compare the spikes with the reference executor, write the energy
    report (``<out>/<family>/``). True when every target kept its promise."""
    from . import __version__, kernels
    from .datasets import save_spikes
    from .energy.cli import run as energy_run
    from .energy.cli import summary as energy_summary
    from .models import FAMILIES
    from .models.base import save_trained

    print(f"neuro {__version__} demo (kernels: {kernels.backend()})")
    ok = True
    for family in FAMILIES.values():
        if family.demo is None or (families is not None and family.name not in families):
            continue
        fam_out = out / family.name
        print(f"\n== {family.name} ==")
        trained = family.demo(seed=seed, epochs=epochs, samples=samples)
        print(trained.summary)
        path = save_trained(fam_out / "model.safetensors", trained)
        print(f"checkpoint: {path}")
        if trained.test_inputs is not None:
            sample = save_spikes(fam_out / "spikes.npz", trained.test_inputs.astype(np.uint8))
            print(f"sample input: {sample} (key 'spikes', [T, B, N] = "
                  f"{list(trained.test_inputs.shape)}; `neuro run {path} --input {sample}`)")
            ok = run_on_every_target(trained.model, trained.test_inputs, fam_out) and ok
        print("\n".join(energy_summary(energy_run(path, None, fam_out / "energy")["json"])))
    return ok


def run_on_every_target(model: nn.Module, x: np.ndarray, out: Path) -> bool:
    """Run ``model`` on every hardware target and compare with the reference executor and with
    the float model (``neuro.verify``); True when every target that can run it keeps its promise
    (bit-exact, or its stated agreement). A target that cannot represent the model is listed
    with its reason; one whose simulator is missing counts as a failure."""
    from .graph import from_module
    from .hardware import TARGETS
    from .verify import run_targets

    graph = from_module(model)
    print(f"hardware targets: {x.shape[1]} test samples x {x.shape[0]} steps on each, compared "
          "with the reference executor (integer targets: bit for bit) and with the float model")
    rows = run_targets(graph, x, list(TARGETS), out=out)
    return all(r.check.comparison.ok if r.ran else r.reason.startswith("cannot run")
               for r in rows)


__all__ = ["run_demo", "run_on_every_target"]
