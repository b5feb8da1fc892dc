"""``neuro demo``: every model family trained offline, run on every hardware target, compared
with the reference executor, and priced by the energy report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import nn


def run_demo(out: Path, *, seed: int = 0, epochs: int = 8, samples: int = 16) -> bool:
    """Every family with a demo: train it offline, run it on every target, compare the spikes
    with the reference executor, write the energy report (``<out>/<family>/``). True when every
    target kept its promise."""
    from . import __version__, kernels
    from .atomic import atomic_dir
    from .energy.cli import run as energy_run
    from .energy.cli import summary as energy_summary
    from .models import FAMILIES
    from .models.base import save_trained

    print(f"neuro {__version__} demo (kernels: {kernels.backend()})")
    print(f"output: {out} (written to a temporary folder, renamed into place when the demo "
          "completes; an interrupted demo leaves nothing there)")
    ok = True
    with atomic_dir(out, replace=_replaceable) as tmp:
        for family in FAMILIES.values():
            if family.demo is None:
                continue
            fam_out = tmp / family.name
            print(f"\n== {family.name} ==")
            trained = family.demo(seed=seed, epochs=epochs, samples=samples)
            print(trained.summary)
            path = save_trained(fam_out / "model.safetensors", trained)
            print(f"checkpoint: {out / path.relative_to(tmp)}")
            if trained.test_inputs is not None:
                ok = run_on_every_target(trained.model, trained.test_inputs, fam_out) and ok
            lines = energy_summary(energy_run(path, None, fam_out / "energy")["json"])
            print("\n".join(line.replace(str(tmp), str(out)) for line in lines))  # final paths
        (tmp / COMPLETE).write_text(json.dumps({"complete": True, "all_targets_ok": ok,
                                                 "seed": seed, "epochs": epochs}) + "\n")
    return ok


#: written last into a finished demo folder (a folder without it is not a demo output)
COMPLETE = "demo.json"


def _replaceable(existing: Path) -> bool:
    """An existing ``--out`` is replaced only when it is empty or a finished demo output."""
    if any(existing.iterdir()) and not (existing / COMPLETE).is_file():
        raise ValueError(f"{existing}: exists, is not empty and is not a neuro demo output "
                         "(refusing to replace it)")
    return True


def run_on_every_target(model: nn.Module, x: np.ndarray, out: Path) -> bool:
    """Run ``model`` on every hardware target and compare with the reference executor; True when
    every target that can run it keeps its promise (bit-exact, or its stated agreement)."""
    import time

    from .graph import from_module
    from .hardware import TARGETS, get_backend
    from .hardware.base import check_target

    graph = from_module(model)
    print(f"hardware targets: {x.shape[1]} test samples x {x.shape[0]} steps on each, compared "
          "with the reference executor")
    ok = True
    for target in TARGETS:
        try:
            backend = get_backend(target)
        except (ValueError, ImportError) as exc:
            print(f"  {target:10s} not run: {exc}")
            continue
        problems = backend.supports(graph)
        if problems:
            print(f"  {target:10s} cannot run the model: " + "; ".join(problems))
            continue
        t0 = time.perf_counter()
        try:
            check = check_target(backend, graph, x, out / target)
        except OSError as exc:  # the target's simulator is not installed (Lava) or failed
            print(f"  {target:10s} not run: {str(exc).splitlines()[0]}")
            ok = False
            continue
        comp = check.comparison
        fmt = check.graph.metadata.get("format", {}).get("name", "float32")
        print(f"  {target:10s} {fmt:9s} {comp.verdict} spikes to the reference "
              f"({comp.spike_count()} spikes, {time.perf_counter() - t0:.1f} s) -> {check.artifact}")
        if not comp.ok:
            ok = False
            print(comp.table())
    return ok


__all__ = ["run_demo", "run_on_every_target"]
