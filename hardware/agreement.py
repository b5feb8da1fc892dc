"""How close a target's run is to the **float** model, next to "IDENTICAL to its integer reference".

A quantized target is bit-exact with the integer reference executor of its number format; that says
nothing about what the quantization itself cost. :func:`float_agreement` compares the target's
values with the float reference executor on the same input:

* spiking populations: the fraction of equal (step, sample, neuron) entries, and the spikes kept
  (target spikes / float spikes; a format that silences neurons keeps fewer); for EGRU
  populations the events (``y != 0``), since float and fixed-point ``y`` differ in scale;
* the readout (a non-spiking output, e.g. an LI membrane, in the target's integer units): the
  decision per sample (``argmax`` over outputs of the membrane summed over time) and the Pearson
  correlation of the traces, both independent of the integer scale.

A target that keeps less than ``1 - SPIKE_LOSS_WARNING`` (or makes more than ``1 +
SPIKE_LOSS_WARNING`` times) of the float model's spikes gets a warning: its "IDENTICAL" is about
a different network than the one trained. :func:`choose_format` picks a target's number format
by this measure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: warn when a target's spike count departs from the float model's by more than this fraction
SPIKE_LOSS_WARNING = 0.10
#: the spike agreement with the float model that :func:`choose_format` is content with
GOOD_AGREEMENT = 0.99


@dataclass
class FloatAgreement:
    """A target's values against the float model's (module docstring)."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    readout: dict[str, Any] | None = None

    @property
    def float_spikes(self) -> int:
        return sum(r["float"] for r in self.layers)

    @property
    def target_spikes(self) -> int:
        return sum(r["target"] for r in self.layers)

    @property
    def spikes_kept(self) -> float:
        """Target spikes / float spikes over every spiking population (1.0 when both are 0)."""
        f = self.float_spikes
        return 1.0 if f == 0 and self.target_spikes == 0 else self.target_spikes / max(f, 1)

    @property
    def agreement(self) -> float:
        """Fraction of equal spike entries over every spiking population (nan without any)."""
        n = sum(r["entries"] for r in self.layers)
        return float("nan") if n == 0 else sum(r["agreement"] * r["entries"] for r in self.layers) / n

    @property
    def lost_too_many(self) -> bool:
        return abs(self.spikes_kept - 1.0) > SPIKE_LOSS_WARNING

    def summary(self) -> str:
        parts = []
        if self.layers:
            parts.append(f"spike agreement {self.agreement:.3f}, {100 * self.spikes_kept:.0f} % of "
                         f"its {self.float_spikes} spikes")
        if self.readout is not None:
            r = self.readout
            parts.append(f"readout decisions {r['same_decisions']}/{r['samples']} equal, "
                         f"trace correlation {r['correlation']:.3f}")
        return "vs the float model: " + ("; ".join(parts) if parts else "nothing to compare")

    def warning(self, target: str, fmt: str) -> str | None:
        """The warning line when the target departs from the float model's spike count."""
        if not self.lost_too_many:
            return None
        what = "loses" if self.spikes_kept < 1 else "adds"
        return (f"{target} ({fmt}) {what} {abs(100 * (1 - self.spikes_kept)):.0f} % of the float "
                f"model's spikes (more than {100 * SPIKE_LOSS_WARNING:.0f} %): a wider format "
                "(e.g. an -m12 or 16-bit one) follows the trained network more closely")

    def as_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "readout": self.readout, "spikes_kept": self.spikes_kept,
                "agreement": self.agreement, "lost_too_many": self.lost_too_many}


def _as_batch(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 2 else x


def float_values(float_graph: Any, x: Any) -> dict[str, np.ndarray]:
    """Every node's values on the float reference executor, ``[T, B, ...]``."""
    from neuro.graph import simulate

    return {k: v.numpy() for k, v in simulate(float_graph, _as_batch(x), record=True).items()}


def compare_with_float(float_graph: Any, spikes: dict[str, np.ndarray],
                       outputs: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> FloatAgreement:
    """Compare a target's ``spikes`` (population -> ``[T, B, ...]``) and ``outputs`` with the
    float values ``ref`` (:func:`float_values`). Populations the float graph does not have (a
    target's internal ones) are skipped."""
    agreement = FloatAgreement()
    for name, got in spikes.items():
        node = float_graph.nodes.get(name)
        if node is None or not node.spiking or name not in ref:
            continue
        want, got = np.asarray(ref[name]), np.asarray(got)
        if want.shape != got.shape:
            continue
        if node.kind == "EGRU":  # graded events (float y vs fixed-point y): compare the events
            want, got = (want != 0).astype(np.int64), (got != 0).astype(np.int64)
        agreement.layers.append({"node": name, "kind": node.kind, "float": int(want.sum()),
                                 "target": int(got.sum()), "entries": int(want.size),
                                 "agreement": float((want == got).mean())})
    for name, got in outputs.items():
        src = float_graph.predecessors(name)
        node = float_graph.nodes.get(src[0]) if src else None
        if node is None or node.spiking or name not in ref:
            continue
        want, got = np.asarray(ref[name], np.float64), np.asarray(got, np.float64)
        if want.shape != got.shape or want.ndim < 3:
            continue
        a, b = want.sum(0).reshape(want.shape[1], -1), got.sum(0).reshape(got.shape[1], -1)
        same = int((a.argmax(1) == b.argmax(1)).sum())
        fa, fb = want.ravel() - want.mean(), got.ravel() - got.mean()
        denom = float(np.sqrt((fa ** 2).sum() * (fb ** 2).sum()))
        corr = float((fa * fb).sum() / denom) if denom > 0 else float("nan")
        agreement.readout = {"node": name, "samples": int(a.shape[0]), "same_decisions": same,
                             "correlation": corr}
    return agreement


def float_agreement(float_graph: Any, result: Any, x: Any) -> FloatAgreement:
    """:func:`compare_with_float` for a backend ``Result`` on input ``x``."""
    return compare_with_float(float_graph, result.spikes, result.outputs, float_values(float_graph, x))


def choose_format(float_graph: Any, formats: tuple[str, ...], x: Any) -> tuple[str, dict[str, float]]:
    """The cheapest of ``formats`` (fewest weight bits, then state bits, then leak bits) whose integer reference reaches
    :data:`GOOD_AGREEMENT` spike agreement with the float model on ``x`` and keeps its spike count
    within :data:`SPIKE_LOSS_WARNING`, else the best one; and each format's agreement (the
    integer reference executor only: no target is run, so this is cheap)."""
    from neuro.graph import simulate
    from neuro.graph.formats import get_format
    from neuro.graph.quantize import quantize
    from neuro.graph.spikegpt_int import is_spikegpt_graph, quantize_spikegpt

    def cost(name: str) -> tuple[int, int, int]:  # weight width, state width, leak precision
        f = get_format(name)
        return (f.weight_bits, f.state_bits, f.decay_bits)

    formats = tuple(sorted(formats, key=cost))
    ref = float_values(float_graph, x)
    xb = _as_batch(x)
    scores: dict[str, float] = {}
    good = []
    for fmt in formats:
        try:
            if is_spikegpt_graph(float_graph):  # the integer SpikeGPT (neuro.graph.spikegpt_int)
                q = quantize_spikegpt(float_graph, fmt, xb)
            else:
                q = quantize(float_graph, fmt, calibration_inputs=xb)
        except ValueError:
            continue
        vals = {k: v.numpy() for k, v in simulate(q, xb, record=True).items()}
        spiking = {k: v for k, v in vals.items() if k in q.nodes and q.nodes[k].spiking
                   and q.nodes[k].role != "input"}
        agr = compare_with_float(float_graph, spiking, {}, ref)
        scores[fmt] = agr.agreement if agr.layers else 1.0
        if scores[fmt] >= GOOD_AGREEMENT and not agr.lost_too_many:
            good.append(fmt)
    if not scores:
        raise ValueError(f"none of the formats {list(formats)} can represent the model")
    return (good[0] if good else max(scores, key=lambda f: scores[f])), scores


__all__ = ["FloatAgreement", "GOOD_AGREEMENT", "SPIKE_LOSS_WARNING", "choose_format",
           "compare_with_float", "float_agreement", "float_values"]
