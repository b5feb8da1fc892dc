"""Report figures as PNG bytes (matplotlib's object API on the Agg canvas; no global pyplot state).

* :func:`raster`: sample 0's events per population (step on x, neuron on y);
* :func:`rates`: events per neuron per step of every population (and in Hz with ``dt``);
* :func:`overview`: dynamic energy per sample of every target, log scale, baseline marked;
* :func:`breakdown`: one target's energy per sample, per layer, stacked by component.
"""
from __future__ import annotations

import io
import math

import numpy as np

from .counting import Counts
from .estimate import COMPONENTS, TargetEnergy

COLORS = {"synaptic_ops": "#4C72B0", "weight_reads": "#55A868", "neuron_updates": "#C44E52",
          "spikes": "#8172B2", "hops": "#CCB974"}
_PREFIXES = [(1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"), (1e-15, "fJ")]


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("the energy report's plots need matplotlib: pip install 'matplotlib>=3.8'") from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def energy_unit(value: float) -> tuple[float, str]:
    """``(scale, unit)`` so that ``value / scale`` lies in [1, 1000) where possible."""
    for scale, unit in _PREFIXES:
        if abs(value) >= scale:
            return scale, unit
    return _PREFIXES[-1]


def raster(counts: Counts) -> bytes:
    names = list(counts.raster)
    if not names:
        fig = _figure(7, 1.5)
        fig.text(0.5, 0.5, "no spiking population", ha="center", va="center")
        return _png(fig)
    sizes = [max(counts.raster[n].shape[1], 1) for n in names]
    ratios = [max(math.sqrt(s), 1.0) for s in sizes]
    fig = _figure(8, min(2.0 + 1.1 * sum(ratios) ** 0.8, 14))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios})[:, 0]
    for ax, name in zip(axes, names):
        t, i = np.nonzero(counts.raster[name])
        size = float(np.clip(600.0 / max(counts.raster[name].shape[1], 1), 2.0, 40.0))
        ax.scatter(t, i, s=size, marker="|", color="black", linewidths=1.0)
        ax.set_ylim(-0.5, counts.raster[name].shape[1] - 0.5)
        ax.set_xlim(-0.5, counts.steps - 0.5)
        kind = counts.populations[name].kind
        ax.set_ylabel(f"{name}\n({kind})", rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel(f"step (dt = {counts.dt:g} s)")
    axes[0].set_title("Spike raster, sample 0")
    return _png(fig)


def rates(counts: Counts) -> bytes:
    pops = [p for p in counts.populations.values() if p.spiking]
    fig = _figure(7, 0.9 + 0.35 * max(len(pops), 1))
    ax = fig.subplots()
    names = [f"{p.name} ({p.kind})" for p in pops]
    vals = [p.rate for p in pops]
    ax.barh(names, vals, color="#4C72B0")
    for y, p in enumerate(pops):
        ax.text(p.rate, y, f" {p.rate:.4f} ({p.rate / counts.dt:.1f} Hz)", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("events per neuron per step")
    ax.set_xlim(0, max(vals + [1e-3]) * 1.45)
    ax.set_title("Spike rate per population")
    return _png(fig)


def overview(energies: list[TargetEnergy], baseline: str, samples: int) -> bytes:
    fig = _figure(7, 0.9 + 0.4 * len(energies))
    ax = fig.subplots()
    names = [e.target.key for e in energies]
    dyn = [max(e.dynamic_J / samples, 1e-18) for e in energies]
    colors = ["#999999" if e.target.kind == "ann" else "#4C72B0" for e in energies]
    ax.barh(names, dyn, color=colors)
    for y, e in enumerate(energies):
        if e.static_J > 0:
            ax.plot([e.total_J / samples], [y], marker="x", color="#C44E52")
    base = next((e for e in energies if e.target.key == baseline), None)
    if base is not None and base.dynamic_J > 0:
        ax.axvline(base.dynamic_J / samples, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("dynamic energy per sample (J, log scale); x = with static power; "
                  "dashed = baseline; grey = ANN")
    ax.set_title("Estimated energy per target")
    return _png(fig)


def breakdown(energy: TargetEnergy, samples: int, kinds: dict[str, str] | None = None) -> bytes:
    """``kinds``: layer name -> node kind, shown next to the name."""
    layers = [n for n, c in energy.per_layer.items() if sum(c.values()) > 0] or list(energy.per_layer)
    total = max((sum(energy.per_layer[n].values()) / samples for n in layers), default=0.0)
    scale, unit = energy_unit(total)
    fig = _figure(7, 1.0 + 0.35 * max(len(layers), 1))
    ax = fig.subplots()
    left = np.zeros(len(layers))
    labels = [f"{n} ({kinds[n]})" if kinds and n in kinds else n for n in layers]
    for comp in COMPONENTS:
        vals = np.array([energy.per_layer[n][comp] / samples / scale for n in layers])
        if vals.any():
            ax.barh(labels, vals, left=left, color=COLORS[comp], label=comp)
            left += vals
    ax.invert_yaxis()
    ax.set_xlabel(f"dynamic energy per sample ({unit})")
    ax.set_title(f"{energy.target.key}: {energy.target.name}")
    if left.any():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


__all__ = ["breakdown", "energy_unit", "overview", "raster", "rates"]
