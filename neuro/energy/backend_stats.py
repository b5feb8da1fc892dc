"""Run statistics of a hardware backend, checked before they replace the reference run's counts.

``neuro.hardware.spinnaker``'s ``run()`` returns ``Result.stats`` with (among others) the keys in
``SPINNAKER_KEYS``: totals over the whole run and every sample. The energy model uses

* ``synaptic_events``: synaptic operations (one synaptic word read each),
* ``neuron_updates``: neuron updates,
* ``packets_sent`` and ``router_hops``: packets and hops,

and reports ``ticks``, ``spikes``, ``synaptic_rows_fetched`` and ``dropped_packets`` alongside.
"""
from __future__ import annotations

import math
from typing import Any

SPINNAKER_KEYS = ("ticks", "packets_sent", "router_hops", "synaptic_rows_fetched", "synaptic_events",
                  "dropped_packets", "neuron_updates", "spikes")


def _number(backend: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{backend} statistics: {key!r} must be a count >= 0, got {v!r}")
    return float(v)


def check_stats(backend: str, stats: Any) -> dict[str, float]:
    """The statistics the energy model uses, as floats; ``ValueError`` naming a missing or bad key."""
    if backend != "spinnaker":
        raise ValueError(f"no statistics mapping for backend {backend!r} (known: ['spinnaker'])")
    if not isinstance(stats, dict):
        raise ValueError(f"{backend} statistics must be a dict, got {type(stats).__name__}")
    for k in SPINNAKER_KEYS:
        if k not in stats:
            raise ValueError(f"{backend} statistics: missing key {k!r}")
    return {k: _number(backend, k, stats[k]) for k in SPINNAKER_KEYS}


__all__ = ["SPINNAKER_KEYS", "check_stats"]
