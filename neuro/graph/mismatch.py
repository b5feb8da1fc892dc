"""Mismatch report: the float graph vs its quantized twin, layer by layer, on the same input.

For every neuron population: spike agreement (fraction of equal (step, batch, neuron) entries),
the first step at which any spike differs, spike counts, and the membrane RMSE in float units
(integer membrane divided by the population's scale; for EGRU: event agreement and the RMSE of
the graded output ``y``). A non-spiking readout (LI) has no spikes: its row compares decisions
instead (``measure="decisions"``: per sample, the ``argmax`` over outputs of the membrane summed
over time, float vs quantized), next to the membrane RMSE. Users see where a chip's arithmetic departs
from training long before it shows up as lost accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch

from . import nodes as N
from .graph import Graph
from .quantize import quantize
from .simulate import simulate
from .spikegpt_int import is_spikegpt_graph, quantize_spikegpt


@dataclass
class LayerMismatch:
    name: str
    kind: str
    spikes_float: int
    spikes_quantized: int
    agreement: float
    first_divergence: int | None   # step index, None if identical
    membrane_rmse: float            # float units
    measure: str = "spikes"         # what ``agreement`` counts: "spikes" or "decisions" (readouts)


@dataclass
class MismatchReport:
    format: str
    steps: int
    batch: int
    layers: list[LayerMismatch]

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "steps": self.steps, "batch": self.batch,
                "layers": [asdict(r) for r in self.layers]}

    def table(self) -> str:
        head = (f"format {self.format}: {self.steps} steps x {self.batch} samples\n"
                f"  {'layer':14s} {'kind':8s} {'spikes float':>12s} {'quantized':>10s} "
                f"{'agreement':>10s} {'first diff':>10s} {'membrane RMSE':>14s}")
        rows = []
        for r in self.layers:
            counts = (f"{r.spikes_float:12d} {r.spikes_quantized:10d}" if r.measure == "spikes"
                      else f"{'-':>12s} {'-':>10s}")
            first = "-" if r.first_divergence is None else str(r.first_divergence)
            note = "" if r.measure == "spikes" else "  (agreement: readout decisions per sample)"
            rows.append(f"  {r.name:14s} {r.kind:8s} {counts} {r.agreement:10.4f} {first:>10s} "
                        f"{r.membrane_rmse:14.4g}{note}")
        return "\n".join([head, *rows])


def mismatch_report(graph: Graph, fmt: str, inputs: Any, *, quantized: Graph | None = None) -> MismatchReport:
    """Quantize ``graph`` to ``fmt`` (calibrated on ``inputs``) unless ``quantized`` is given,
    run both on ``inputs`` and compare every neuron node."""
    if quantized is None and is_spikegpt_graph(graph):  # the integer SpikeGPT
        quantized = quantize_spikegpt(graph, fmt, inputs)
    q = quantized if quantized is not None else quantize(graph, fmt, calibration_inputs=inputs)
    rf = simulate(graph, inputs, record=True, record_membranes=True)
    ri = simulate(q, inputs, record=True, record_membranes=True)
    rows = []
    T = B = 0
    for name, node in graph.nodes.items():
        if node.role != "neuron" or not node.has_integer_form:
            continue
        a, b = rf[name].float(), ri[name].float()
        T = a.shape[0]
        B = a.shape[1] if a.dim() > 2 else 1
        scale = float(cast(Any, q.nodes[name]).q["scale"])
        va = rf.get(f"{name}.v")
        vb = ri.get(f"{name}.v")
        if type(node) is N.EGRU:  # graded events: compare where they occur, RMSE of y itself
            va, vb = a, b
            a, b = (a != 0).float(), (b != 0).float()
        rmse = float("nan")
        if va is not None and vb is not None:
            rmse = float(torch.sqrt(((va.float() - vb.double().float() / scale) ** 2).mean()))
        if node.spiking:
            diff = (a != b).flatten(1).any(1)
            first = int(diff.nonzero()[0]) if bool(diff.any()) else None
            rows.append(LayerMismatch(name, node.kind, int(a.sum()), int(b.sum()),
                                      float((a == b).float().mean()), first, rmse))
        else:  # a readout: compare the decisions its summed membrane gives
            da = a.sum(0).reshape(B, -1).argmax(-1) if a.dim() > 2 else a.sum(0).argmax(-1)[None]
            db = b.sum(0).reshape(B, -1).argmax(-1) if b.dim() > 2 else b.sum(0).argmax(-1)[None]
            rows.append(LayerMismatch(name, node.kind, 0, 0, float((da == db).float().mean()),
                                      None, rmse, measure="decisions"))
    return MismatchReport(q.metadata["format"]["name"], T, B, rows)
