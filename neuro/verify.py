"""Run a model on hardware targets and say, per target, what the run shows (``neuro verify``,
``neuro demo``).

Every requested target gets a row, whatever happens to the others: it ran and kept its promise
(IDENTICAL to its integer reference, or AGREES within a float target's stated agreement), it ran
and DIFFERS, or it was NOT RUN (the target cannot represent the model, or its simulator is
missing), with the reason. Next to the verdict each row shows the agreement with the float
model (``neuro.hardware.agreement``), and a warning when the target's spike count departs from
the float model's by more than ``SPIKE_LOSS_WARNING``. Given class labels (``labels`` [B] in the
spike file) and the model's decision rule (``FamilyModel.decide``), each row also shows the task
accuracy of that target's decisions next to the float model's (:func:`decisions`).

Exit status of ``neuro verify`` (:func:`exit_status`): 0 every target ran and kept its promise,
1 a target's values differ from its reference, 3 a target could not run (and none differed);
2 is a usage error, as for every command.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_DIFFERS, EXIT_NOT_RUN = 0, 1, 3


@dataclass
class TargetRow:
    """One target's outcome (module docstring)."""

    target: str
    status: str                 # "IDENTICAL" | "AGREES" | "DIFFERS" | "NOT RUN"
    fmt: str = "-"
    reason: str = ""
    seconds: float = 0.0
    check: Any = None           # hardware.base.TargetCheck when it ran
    float_agreement: Any = None  # hardware.agreement.FloatAgreement when it ran
    format_scores: dict[str, float] | None = None
    accuracy: float | None = None        # the target's decisions on the labels
    float_accuracy: float | None = None  # the float model's, on the same samples

    @property
    def ran(self) -> bool:
        return self.status != "NOT RUN"

    def line(self) -> str:
        if not self.ran:
            return f"  {self.target:10s} {'-':9s} NOT RUN: {self.reason}"
        spikes = self.check.comparison.spike_count()
        task = ("" if self.accuracy is None else f"; task accuracy {self.accuracy:.3f} "
                f"(float model {self.float_accuracy:.3f})")
        return (f"  {self.target:10s} {self.fmt:9s} {self.status} to its reference "
                f"({spikes} spikes, {self.seconds:.1f} s); {self.float_agreement.summary()}{task}")

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"target": self.target, "status": self.status, "format": self.fmt,
                             "reason": self.reason, "seconds": self.seconds}
        if self.check is not None:
            d.update(self.check.comparison.as_dict())
        if self.float_agreement is not None:
            d["float"] = self.float_agreement.as_dict()
        if self.format_scores:
            d["format_agreement"] = self.format_scores
        if self.accuracy is not None:
            d["accuracy"], d["float_accuracy"] = self.accuracy, self.float_accuracy
        return d


Decide = Callable[[Any], Any]  # torch Tensor [T, B, ...] (float units) -> class labels [B]


def decisions(decide: Decide, graph: Any, outputs: dict[str, Any]) -> np.ndarray:
    """Class labels ``[B]`` that ``decide`` (a model's ``FamilyModel.decide``) draws from a run's
    first Output. A quantized ``graph``'s non-spiking readout is in integer state units: it is
    divided by its population's scale ``S`` (``graph.metadata["scales"]``) first, so a rule that
    is not scale-free (a softmax) sees float units; spikes are taken as they are."""
    import torch

    from .graph.populations import partition

    out = graph.outputs()[0]
    val = np.asarray(outputs[out], np.float64)
    src = partition(graph).outputs.get(out)
    scales = graph.metadata.get("scales", {})
    if src is not None and src in scales and not graph.nodes[src].spiking:
        val = val / float(scales[src])
    if val.ndim == 2:
        val = val[:, None]
    return np.asarray(decide(torch.from_numpy(val).float())).reshape(-1).astype(np.int64)


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``pred == labels`` (both ``[B]``)."""
    return float(np.mean(np.asarray(pred) == np.asarray(labels)))


def run_target(name: str, graph: Any, x: np.ndarray, *, out: Path | None = None,
               fmt: str | None = None, say: Callable[[str], None] = print,
               labels: np.ndarray | None = None, decide: Decide | None = None) -> TargetRow:
    """Run ``graph`` on target ``name`` and compare; never raises for a target that cannot run
    (the row says why). Without ``fmt`` a target with several number formats gets the cheapest
    one that follows the float model (``agreement.choose_format``), announced through ``say``.
    With ``labels`` ``[B]`` and ``decide``: the task accuracy of the target's decisions and of
    the float model's (:func:`decisions`)."""
    from .hardware import get_backend
    from .hardware.agreement import choose_format, float_agreement
    from .hardware.base import check_target, group_problems
    from .progress import heartbeat

    try:
        backend = get_backend(name)
    except ImportError as exc:
        return TargetRow(name, "NOT RUN", reason=str(exc).splitlines()[0])
    problems = backend.supports(graph, fmt)
    if problems:
        return TargetRow(name, "NOT RUN", reason="cannot run this model: "
                         + "; ".join(group_problems(problems)))
    scores = None
    if fmt is None and len(getattr(backend, "formats", ())) > 1:
        fmt, scores = choose_format(graph, tuple(backend.formats), x)
        say(f"  {name}: format {fmt} chosen by spike agreement with the float model ("
            + ", ".join(f"{f} {a:.3f}" for f, a in scores.items()) + ")")
    t0 = time.perf_counter()
    xs = np.shape(x)
    try:
        with heartbeat(f"{name}: compiling and running {xs[0]} steps x "
                       f"{xs[1] if len(xs) == 3 else 1} samples"):
            check = check_target(backend, graph, x, out, fmt=fmt)
    except (OSError, ValueError) as exc:  # simulator missing or failing, format refusing
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return TargetRow(name, "NOT RUN", fmt=fmt or "-", reason=msg)
    comp = check.comparison
    status = "IDENTICAL" if comp.identical else ("AGREES" if comp.ok else "DIFFERS")
    used = check.graph.metadata.get("format", {}).get("name", "float32")
    row = TargetRow(name, status, used, seconds=time.perf_counter() - t0, check=check,
                    float_agreement=float_agreement(graph, check.result, x),
                    format_scores=scores)
    if labels is not None and decide is not None:
        from .graph import simulate

        xb = np.asarray(x, np.float32)
        xb = xb[:, None] if xb.ndim == 2 else xb
        ref = {k: v.numpy() for k, v in simulate(graph, xb).items()}
        row.float_accuracy = accuracy(decisions(decide, graph, ref), labels)
        row.accuracy = accuracy(decisions(decide, check.graph, check.result.outputs), labels)
    return row


def run_targets(graph: Any, x: np.ndarray, targets: list[str], *, out: Path | None = None,
                formats: dict[str, str] | None = None,
                say: Callable[[str], None] = print, labels: np.ndarray | None = None,
                decide: Decide | None = None) -> list[TargetRow]:
    """:func:`run_target` for each of ``targets`` in order, each row printed as it completes,
    then the warnings (spike counts that depart from the float model's)."""
    rows = []
    for name in targets:
        row = run_target(name, graph, x, out=None if out is None else out / name,
                         fmt=(formats or {}).get(name), say=say, labels=labels, decide=decide)
        say(row.line())
        if row.check is not None and not row.check.comparison.ok:
            say(row.check.comparison.table())
        rows.append(row)
    for row in rows:
        warning = row.float_agreement.warning(row.target, row.fmt) if row.float_agreement else None
        if warning:
            say(f"  warning: {warning}")
    return rows


def exit_status(rows: list[TargetRow]) -> int:
    """1 if any target differs from its reference, else 3 if any could not run, else 0."""
    if any(r.status == "DIFFERS" for r in rows):
        return EXIT_DIFFERS
    if any(not r.ran for r in rows):
        return EXIT_NOT_RUN
    return EXIT_OK


__all__ = ["EXIT_DIFFERS", "EXIT_NOT_RUN", "EXIT_OK", "Decide", "TargetRow", "accuracy",
           "decisions", "exit_status", "run_target", "run_targets"]
