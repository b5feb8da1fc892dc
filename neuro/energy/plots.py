"""Report figures as PNG bytes (matplotlib's object API on the Agg canvas; no global pyplot state).

* :func:`raster`: the first samples' events per population (step on x, neuron on y) and the
  readout trace;
* :func:`rates`: events per neuron per step of every population (and in Hz with ``dt``);
* :func:`overview`: energy per sample of every target, log scale: dynamic, plus static where a
  target has it (hatched), each labelled; baseline marked;
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
    """Spikes of every population for the first samples (one column each; step on x, neuron on
    y), and below them the readout's trace (the non-spiking output, one line per output)."""
    rasters = counts.rasters or {n: r[:, None] for n, r in counts.raster.items()}
    names = list(rasters)
    readouts = counts.readouts
    if not names and not readouts:
        fig = _figure(7, 1.5)
        fig.text(0.5, 0.5, "no spiking population", ha="center", va="center")
        return _png(fig)
    S = max([r.shape[1] for r in rasters.values()] + [r.shape[1] for r in readouts.values()])
    ratios = [max(math.sqrt(max(rasters[n].shape[2], 1)), 1.5) for n in names]
    ratios += [2.5] * len(readouts)
    fig = _figure(3.6 * S + 1.6, min(1.6 + 1.0 * sum(ratios) ** 0.85, 16))
    axes = fig.subplots(len(ratios), S, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios, "hspace": 0.25, "wspace": 0.12})
    for row, name in enumerate(names):
        r = rasters[name]
        kind = counts.populations[name].kind
        size = float(np.clip(600.0 / max(r.shape[2], 1), 2.0, 40.0))
        for col in range(S):
            ax = axes[row, col]
            if col < r.shape[1]:
                t, i = np.nonzero(r[:, col])
                ax.scatter(t, i, s=size, marker="|", color="black", linewidths=1.0)
            ax.set_ylim(-0.5, r.shape[2] - 0.5)
            ax.set_xlim(-0.5, counts.steps - 0.5)
            ax.tick_params(labelsize=7, labelleft=col == 0)
            if col == 0:
                ax.set_ylabel(f"{name} ({kind})\nneuron", fontsize=8)
            if row == 0:
                ax.set_title(f"sample {col}", fontsize=9)
    for k, (name, trace) in enumerate(readouts.items()):
        row = len(names) + k
        for col in range(S):
            ax = axes[row, col]
            if col < trace.shape[1]:
                for n in range(trace.shape[2]):
                    ax.plot(np.arange(counts.steps), trace[:, col, n], linewidth=1.0,
                            label=f"output {n}")
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel(f"{name} ({counts.populations[name].kind})\nmembrane", fontsize=8)
            if row == 0:
                ax.set_title(f"sample {col}", fontsize=9)
        if trace.shape[2] <= 12:
            axes[row, S - 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for col in range(S):
        axes[-1, col].set_xlabel(f"step (dt = {counts.dt:g} s)", fontsize=8)
    fig.suptitle("Spikes per population and the readout, first samples of the data", fontsize=10)
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


def _fmt(value: float) -> str:
    scale, unit = energy_unit(value)
    return f"{value / scale:.3g} {unit}"


def overview(energies: list[TargetEnergy], baseline: str, samples: int,
             unit: str = "sample") -> bytes:
    """Energy per ``unit`` (``samples`` of them in the run: samples, or the tokens of a language
    model) of every target on a log scale: the dynamic energy as the bar, the static
    energy of the run (a target's idle power over the run time) as a hatched extension, each
    labelled with its value, so a static share that dwarfs the dynamic one is seen, not hidden."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(8.5, 1.3 + 0.42 * len(energies))
    ax = fig.subplots()
    names = [e.target.key for e in energies]
    ys = np.arange(len(energies))
    dyn = np.array([max(e.dynamic_J / samples, 1e-18) for e in energies])
    tot = np.array([max(e.total_J / samples, 1e-18) for e in energies])
    colors = ["#999999" if e.target.kind == "ann" else "#4C72B0" for e in energies]
    ax.barh(ys, dyn, color=colors)
    static = tot > dyn * (1 + 1e-9)
    if static.any():
        ax.barh(ys[static], (tot - dyn)[static], left=dyn[static], color="#F4C7C7",
                edgecolor="#C44E52", hatch="//", linewidth=0.5)
    for y, e in enumerate(energies):
        label = _fmt(e.dynamic_J / samples)
        if e.static_J > 0:
            label += f" + {_fmt(e.static_J / samples)} static"
        ax.text(tot[y] * 1.4, y, label, va="center", fontsize=8)
    base = next((e for e in energies if e.target.key == baseline), None)
    if base is not None and base.dynamic_J > 0:
        ax.axvline(base.dynamic_J / samples, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(ys, names)
    ax.set_xscale("log")
    ax.set_xlim(dyn.min() / 3, tot.max() * 3e3)  # room for the labels right of the longest bar
    ax.invert_yaxis()
    ax.set_xlabel(f"energy per {unit} (J, log scale)")
    ax.set_title("Estimated energy per target")
    handles = [Patch(color="#999999", label="ANN twin, dynamic"),
               Patch(color="#4C72B0", label="spiking target, dynamic"),
               Line2D([], [], color="black", linestyle="--", label=f"baseline ({baseline})")]
    if static.any():
        handles.insert(2, Patch(facecolor="#F4C7C7", edgecolor="#C44E52", hatch="//",
                                label="static power over the run time"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def sparsity(counts: Counts) -> bytes:
    """Weight sparsity of every synapse layer and activity sparsity (``1 - events / (neurons x
    steps x samples)``) of every spiking population, as horizontal bars in [0, 1]."""
    rows = [(f"{n} (weights)", 1.0 - s.n_nonzero_weights / max(s.n_weights, 1))
            for n, s in counts.synapses.items()]
    rows += [(f"{n} (activity)", 1.0 - p.rate) for n, p in counts.populations.items()
             if p.spiking and not p.is_input]
    fig = _figure(7.5, 1.2 + 0.32 * max(len(rows), 1))
    ax = fig.subplots()
    ys = np.arange(len(rows))
    ax.barh(ys, [v for _, v in rows],
            color=["#999999" if "(weights)" in n else "#4C72B0" for n, _ in rows])
    for y, (_, v) in enumerate(rows):
        ax.text(min(v, 0.98) + 0.01, y, f"{v:.3f}", va="center", fontsize=8)
    ax.set_yticks(ys, [n for n, _ in rows])
    ax.set_xlim(0, 1.1)
    ax.invert_yaxis()
    ax.set_xlabel("sparsity (fraction of zeros)")
    ax.set_title("Weight sparsity per layer, activity sparsity per population")
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
