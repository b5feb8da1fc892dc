"""``neuro demo``: every model family trained offline, run on every hardware target, compared
with the reference executor, and priced by the energy report."""
from __future__ import annotations

import json
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
    from .atomic import atomic_dir
    from .datasets import save_spikes
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
            if family.demo is None or (families is not None and family.name not in families):
                continue
            fam_out = tmp / family.name
            print(f"\n== {family.name} ==")
            trained = family.demo(seed=seed, epochs=epochs, samples=samples)
            print(trained.summary)
            path = save_trained(fam_out / "model.safetensors", trained)
            final = out / path.relative_to(tmp)
            print(f"checkpoint: {final}")
            if trained.test_inputs is not None:
                labels = trained.test_labels
                extra = {} if labels is None else {"labels": np.asarray(labels, np.int64)}
                sample = save_spikes(fam_out / "spikes.npz", trained.test_inputs.astype(np.uint8),
                                     **extra)
                final_sample = out / sample.relative_to(tmp)
                print(f"sample input: {final_sample} (key 'spikes', [T, B, N] = "
                      f"{list(trained.test_inputs.shape)}"
                      + ("" if labels is None else f", 'labels' [B] = [{len(labels)}]")
                      + f"; `neuro run {final} --input {final_sample}`)")
                ok = run_on_every_target(trained.model, trained.test_inputs, fam_out,
                                         labels=labels) and ok
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


def run_on_every_target(model: nn.Module, x: np.ndarray, out: Path,
                        labels: np.ndarray | None = None) -> bool:
    """Run ``model`` on every hardware target and compare with the reference executor and with
    the float model (``neuro.verify``); True when every target that can run it keeps its promise
    (bit-exact, or its stated agreement). A target that cannot represent the model is listed
    with its reason; one whose simulator is missing counts as a failure. With ``labels`` [B]
    each row also gives the task accuracy of the target's decisions next to the float model's."""
    from .graph import from_module
    from .hardware import TARGETS
    from .verify import run_targets

    graph = from_module(model)
    print(f"hardware targets: {x.shape[1]} test samples x {x.shape[0]} steps on each, compared "
          "with the reference executor (integer targets: bit for bit) and with the float model")
    decide = getattr(model, "decide", None)
    rows = run_targets(graph, x, list(TARGETS), out=out, labels=labels,
                       decide=decide if callable(decide) else None)
    return all(r.check.comparison.ok if r.ran else r.reason.startswith("cannot run")
               for r in rows)


__all__ = ["run_demo", "run_on_every_target"]
