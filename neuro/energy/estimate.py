"""Energy per target from activity counts and a cost table (an estimate, not a measurement).

Per layer ``l`` (synapse layers and populations of :mod:`neuro.energy.counting`)::

    E_l = ACs_l e_ac + MACs_l e_mac + reads_l e_weight_read
        + active_l e_neuron_update + idle_l e_neuron_idle + packets_l e_spike + hops_l e_hop
    E_dynamic = sum_l E_l        E_static = P_static x T x dt x B (one chip, samples one after another)
    E_total = E_dynamic + E_static

Which events a target pays for depends on its kind:

* ``ann`` (the non-spiking twin): every connection is a MAC at every step (``dense_ops``), every
  weight is read once per step and sample, every unit computes one activation per step; no packets.
* ``event``: ACs and MACs only for non-zero input x non-zero weight, one weight read per such
  operation, active and idle neuron-steps, one packet per event of a population that feeds a
  synapse layer and ``hops_per_packet`` hops per packet (an estimate). A target with
  ``backend: "spinnaker"`` takes synaptic events, neuron updates, packets and router hops from the
  SpiNNaker simulator's statistics when they are given (totals, split across layers in proportion
  to the reference run's counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .backend_stats import check_stats
from .costs import Target
from .counting import Counts

COMPONENTS = ("synaptic_ops", "weight_reads", "neuron_updates", "spikes", "hops")
EVENTS = ("acs", "macs", "weight_reads", "active_updates", "idle_updates", "packets", "hops")
UNATTRIBUTED = "(unattributed)"


@dataclass
class TargetEnergy:
    """Energy of one target: per-layer components in joules, the event counts they came from."""

    target: Target
    events: dict[str, dict[str, float]]
    per_layer: dict[str, dict[str, float]]
    static_J: float
    count_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def dynamic_J(self) -> float:
        return sum(sum(c.values()) for c in self.per_layer.values())

    @property
    def total_J(self) -> float:
        return self.dynamic_J + self.static_J

    def components_J(self) -> dict[str, float]:
        return {c: sum(layer[c] for layer in self.per_layer.values()) for c in COMPONENTS}

    def event_totals(self) -> dict[str, float]:
        return {e: sum(layer[e] for layer in self.events.values()) for e in EVENTS}


def _zero() -> dict[str, float]:
    return dict.fromkeys(EVENTS, 0.0)


def _reference_events(counts: Counts, t: Target) -> dict[str, dict[str, float]]:
    ev: dict[str, dict[str, float]] = {}
    hops = t.assumptions["hops_per_packet"].si if "hops_per_packet" in t.assumptions else 0.0
    for name, s in counts.synapses.items():
        e = _zero()
        if t.kind == "ann":
            e["macs"], e["weight_reads"] = float(s.dense_ops), float(s.weight_reads_dense)
        else:
            e["acs"], e["macs"] = float(s.effective_acs), float(s.effective_macs)
            e["weight_reads"] = float(s.weight_reads_event)
        ev[name] = e
    for name, p in counts.populations.items():
        e = _zero()
        if t.kind == "ann":
            e["active_updates"] = float(p.updates)
        else:
            e["active_updates"] = float(p.active_updates)
            e["idle_updates"] = float(p.updates - p.active_updates)
            e["packets"] = float(p.packets)
            e["hops"] = float(p.packets) * hops
        ev[name] = e
    return ev


def _scale(ev: dict[str, dict[str, float]], keys: tuple[str, ...], total: float,
           into: str) -> None:
    """Rescale ``keys`` so that their sum over layers is ``total``, keeping the layers' shares; with
    no reference events the total goes to the unattributed row (as ``into``)."""
    ref = sum(e[k] for e in ev.values() for k in keys)
    if ref > 0:
        f = total / ref
        for e in ev.values():
            for k in keys:
                e[k] *= f
    elif total > 0:
        ev.setdefault(UNATTRIBUTED, _zero())[into] += total


def _apply_stats(ev: dict[str, dict[str, float]], stats: dict[str, float], counts: Counts,
                 notes: list[str]) -> None:
    _scale(ev, ("acs", "macs"), stats["synaptic_events"], "acs")
    for e in ev.values():  # one synaptic word read per synaptic event
        e["weight_reads"] = e["acs"] + e["macs"]
    _scale(ev, ("active_updates", "idle_updates"), stats["neuron_updates"], "active_updates")
    ref_packets = {n: e["packets"] for n, e in ev.items()}
    _scale(ev, ("packets",), stats["packets_sent"], "packets")
    total_ref = sum(ref_packets.values())
    for n, e in ev.items():
        e["hops"] = stats["router_hops"] * ref_packets.get(n, 0.0) / total_ref if total_ref else 0.0
    if total_ref == 0 and stats["router_hops"] > 0:
        ev.setdefault(UNATTRIBUTED, _zero())["hops"] += stats["router_hops"]
    notes.append("synaptic events, neuron updates, packets and router hops are the SpiNNaker "
                 "simulator's totals, split across layers in proportion to the reference run")
    if stats["ticks"] != counts.steps * counts.samples:
        notes.append(f"the simulator ran {int(stats['ticks'])} ticks for {counts.samples} samples x "
                     f"{counts.steps} steps of data (it adds its pipeline latency per sample)")
    if stats["dropped_packets"] > 0:
        notes.append(f"the simulator dropped {int(stats['dropped_packets'])} packets: its counts "
                     "differ from a lossless run")


def estimate(counts: Counts, target: Target, stats: dict[str, Any] | None = None) -> TargetEnergy:
    """Energy of ``target`` for the run in ``counts``; ``stats``: the target's backend statistics."""
    ev = _reference_events(counts, target)
    notes: list[str] = []
    source = "reference run"
    if stats is not None:
        if target.backend is None:
            raise ValueError(f"target {target.key!r} takes no backend statistics (it has no 'backend')")
        _apply_stats(ev, check_stats(target.backend, stats), counts, notes)
        source = f"{target.backend} simulator statistics"
    elif target.kind == "event" and any(e["packets"] for e in ev.values()):
        hpp = target.assumptions["hops_per_packet"]
        if target.backend is not None:
            notes.append(f"no {target.backend} simulator statistics: packets are the reference "
                         "run's events")
        notes.append(f"hops estimated: {hpp.value:g} per packet ({hpp.source})")
    c = target.costs
    per_layer = {}
    for name, e in ev.items():
        per_layer[name] = {
            "synaptic_ops": e["acs"] * c["ac"].si + e["macs"] * c["mac"].si,
            "weight_reads": e["weight_reads"] * c["weight_read"].si,
            "neuron_updates": e["active_updates"] * c["neuron_update"].si
                              + e["idle_updates"] * c["neuron_idle"].si,
            "spikes": e["packets"] * c["spike"].si,
            "hops": e["hops"] * c["hop"].si,
        }
    static = c["static_power"].si * counts.steps * counts.dt * counts.samples
    if static > 0:
        notes.append(f"static power {c['static_power'].value:g} {c['static_power'].unit} for "
                     f"{counts.samples} x {counts.steps} steps x {counts.dt:g} s in real time, one chip")
    return TargetEnergy(target, ev, per_layer, static, source, notes)


__all__ = ["COMPONENTS", "EVENTS", "TargetEnergy", "UNATTRIBUTED", "estimate"]
