"""``neuro demo``: every model family trained offline, run on every hardware target, compared
with the reference executor, and priced by the energy report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn


def run_demo(out: Path, *, seed: int = 0, epochs: int = 8, samples: int = 16,
             families: list[str] | None = None) -> bool:
    """Every family with a demo (or those named in ``families``): train it offline, write the
    checkpoint and a sample input (``spikes.npz``: held-out test samples, ``[T, B, N]`` 0/1; a
    language model's ``tokens.npz``: held-out token ids ``[T, B]``), run it on every target,
    compare with the reference executor and the float model, write the energy report
    (``<out>/<family>/``); then the summary table across the families (printed, ``summary.md``,
    and ``demo.json``'s ``families``). True when every target kept its promise (a target that
    refuses a model by ``supports()`` keeps it)."""
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
    table: list[dict[str, Any]] = []
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
            rows: list[Any] = []
            data = None
            lm = is_language_model(trained.model)
            if trained.test_inputs is not None:
                x = trained.test_inputs
                labels = trained.test_labels
                if lm:
                    data = save_tokens(fam_out / "tokens.npz", x)
                    print(f"sample input: {out / data.relative_to(tmp)} (key 'tokens', [T, B] = "
                          f"{list(x.shape[:2])} token ids; `neuro energy {final} --data "
                          f"{out / data.relative_to(tmp)}`)")
                else:
                    extra = {} if labels is None else {"labels": np.asarray(labels, np.int64)}
                    data = save_spikes(fam_out / "spikes.npz", x.astype(np.uint8), **extra)
                    final_sample = out / data.relative_to(tmp)
                    print(f"sample input: {final_sample} (key 'spikes', [T, B, N] = "
                          f"{list(x.shape)}"
                          + ("" if labels is None else f", 'labels' [B] = [{len(labels)}]")
                          + f"; `neuro run {final} --input {final_sample}`)")
                    data = None  # the energy report uses the checkpoint's own test split
                rows = run_on_every_target(trained.model, x, fam_out, labels=labels)
                ok = all(_kept(r) for r in rows) and ok
            written = energy_run(path, data, fam_out / "energy")
            _final_paths(written.values(), tmp, out)
            report = written["json"]
            lines = energy_summary(report)
            print("\n".join(line.replace(str(tmp), str(out)) for line in lines))  # final paths
            table.append(family_summary(family.name, trained, rows, report, per_token=lm))
        if table:
            text = summary_table(table)
            print("\n" + text)
            (tmp / "summary.md").write_text(text + "\n", encoding="utf-8")
        (tmp / COMPLETE).write_text(json.dumps({"complete": True, "all_targets_ok": ok,
                                                 "seed": seed, "epochs": epochs,
                                                 "families": table}, indent=1) + "\n")
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
                        labels: np.ndarray | None = None) -> list[Any]:
    """Run ``model`` on every hardware target and compare with the reference executor and with
    the float model (``neuro.verify``); one ``TargetRow`` per target. A target that cannot
    represent the model is listed with its reason; one whose simulator is missing is a failure
    (:func:`_kept`). With ``labels`` [B] each row also gives the task accuracy of the target's
    decisions next to the float model's."""
    from .graph import from_module
    from .hardware import TARGETS
    from .verify import run_targets

    graph = from_module(model)
    print(f"hardware targets: {x.shape[1]} test samples x {x.shape[0]} steps on each, compared "
          "with the reference executor (integer targets: bit for bit) and with the float model")
    decide = getattr(model, "decide", None)
    return run_targets(graph, x, list(TARGETS), out=out, labels=labels,
                       decide=decide if callable(decide) else None)


def _final_paths(files: Any, tmp: Path, out: Path) -> None:
    """The report files name the checkpoint and data where the demo wrote them, in its temporary
    folder; rewrite those paths to where they are once the demo completes (``out``)."""
    for f in files:
        text = Path(f).read_text(encoding="utf-8")
        if str(tmp) in text:
            Path(f).write_text(text.replace(str(tmp), str(out)), encoding="utf-8")


def _kept(row: Any) -> bool:
    """A target kept its promise: it ran and is identical (or agrees), or it refused the model
    by ``supports()`` (not a failure: the row names why)."""
    return row.check.comparison.ok if row.ran else row.reason.startswith("cannot run")


def is_language_model(model: nn.Module) -> bool:
    """Whether ``model`` lowers to a graph whose input is one-hot tokens (SpikeGPT, EGRU LM)."""
    from .graph import from_module

    return from_module(model).metadata.get("input") == "one-hot tokens"


def save_tokens(path: Path, one_hot: np.ndarray) -> Path:
    """Token ids ``[T, B]`` (int64, key ``tokens``) of one-hot inputs ``[T, B, V]``: the input
    file of ``neuro energy --data`` for a language model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, tokens=np.asarray(one_hot).argmax(-1).astype(np.int64))
    return path


def family_summary(name: str, trained: Any, rows: list[Any], report_json: Path, *,
                   per_token: bool = False) -> dict[str, Any]:
    """One family's row of the demo's summary: task, score, activity sparsity (the energy
    report's count on the same data), the verdict per target, and the dynamic energy per sample
    (per token when ``per_token``: a language model, one step per token) per cost-table
    target."""
    doc = json.loads(Path(report_json).read_text(encoding="utf-8"))
    steps = int(doc["data"]["steps"])
    energy = {key: t["energy_per_sample_J"]["dynamic"] / (steps if per_token else 1)
              for key, t in doc["targets"].items()}
    verdicts = {r.target: r.status if r.ran else ("refused" if r.reason.startswith("cannot run")
                                                   else "NOT RUN") for r in rows}
    from .energy.costs import load_cost_table

    table = load_cost_table(None)
    hardware = {key: (table.targets[key].backend if key in table.targets else None) or key
                for key in energy}  # the cost target's simulator (spinnaker1 -> spinnaker)
    return {"family": name, "task": trained.task,
            "score": None if trained.score is None else {"metric": trained.score[0],
                                                         "value": trained.score[1]},
            "activity_sparsity": doc["counts"]["activation_sparsity"],
            "targets": verdicts, "unit": "token" if per_token else "sample",
            "dynamic_energy_J": energy, "baseline": doc["baseline"],
            "energy_for_refused_targets": sorted(k for k, h in hardware.items()
                                                 if verdicts.get(h) in ("refused", "NOT RUN"))}


def summary_table(families: list[dict[str, Any]]) -> str:
    """The demo's closing table (Markdown): per family, the task score, sparsity and verdict
    per target, then the dynamic energy estimate per sample or token per cost-table target."""
    from .energy.report import fmt_j

    targets = sorted({t for f in families for t in f["targets"]}, key=_target_order)
    head = ["family", "task", "score", "activity sparsity"] + targets
    lines = ["## neuro demo: summary", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for f in families:
        score = "-" if f["score"] is None else f"{f['score']['metric']} {f['score']['value']:.3g}"
        cells = [f["family"], f["task"] or "-", score, f"{f['activity_sparsity']:.3f}"]
        cells += [f["targets"].get(t, "-") for t in targets]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "IDENTICAL: bit for bit equal to the integer reference executor; AGREES: a "
              "float target within its stated agreement; refused: the target cannot represent "
              "the model (`neuro verify` prints why). Scores: held-out accuracy, bits per byte "
              "(bpc, lower is better) or perplexity (lower is better) of the float model.", ""]
    keys = list(dict.fromkeys(k for f in families for k in f["dynamic_energy_J"]))
    lines += ["Dynamic energy estimate per sample (per token for the language models), from the "
              "cost tables (estimates, see each family's energy/report.html):", "",
              "| family | per | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for f in families:
        refused = set(f.get("energy_for_refused_targets", ()))
        cells = [(fmt_j(f["dynamic_energy_J"][k]) + (" *" if k in refused else ""))
                 if k in f["dynamic_energy_J"] else "-" for k in keys]
        lines.append(f"| {f['family']} | {f['unit']} | " + " | ".join(cells) + " |")
    if any(f.get("energy_for_refused_targets") for f in families):
        lines += ["", "\\* the chip's cost figures applied to the model's counted activity; that "
                  "target refused the model above, so the figure prices a mapping that does not "
                  "exist yet."]
    return "\n".join(lines)


def _target_order(name: str) -> int:
    from .hardware import TARGETS

    order = list(TARGETS)
    return order.index(name) if name in order else len(order)


__all__ = ["family_summary", "is_language_model", "run_demo", "run_on_every_target", "save_tokens",
           "summary_table"]
