"""Cost tables: per-event energies per target, as data with a citation per number.

The built-in table is ``costs.json`` next to this module. A user table (JSON, or TOML on Python
3.11+) has the same layout and is merged over it: a target of the same name replaces the built-in
one, new names add targets, ``baseline`` (optional) picks the target the others are compared to.

Layout (every field required unless marked optional)::

    {"baseline": "ann-45nm",                     # optional in a user table
     "targets": {"<name>": {
        "name": str, "kind": "ann" | "event", "description": str,
        "backend": "spinnaker",                  # optional: whose run statistics this target uses
        "costs": {"<field>": {"value": number >= 0, "unit": str, "source": str, "recalled": bool,
                              "note": str (optional)}},
        "assumptions": {"hops_per_packet": {... unit "hops" ...}}}}}   # required for kind "event"

Cost fields (``COST_FIELDS``): ``mac``, ``ac``, ``neuron_update`` (active), ``neuron_idle``
(a neuron-step without input and at rest), ``spike`` (per packet sent), ``hop`` (per router hop),
``weight_read`` (per synaptic weight word read) in an energy unit (fJ, pJ, nJ, uJ, mJ, J), and
``static_power`` (per chip) in W or mW. Values are converted to joules and watts on loading.
``kind`` ``"ann"``: every connection is a MAC at every step (the non-spiking twin); ``"event"``:
only non-zero input x non-zero weight operations cost, spikes travel as packets.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COST_FIELDS = ("mac", "ac", "neuron_update", "neuron_idle", "spike", "hop", "weight_read",
               "static_power")
KINDS = ("ann", "event")
BACKENDS = ("spinnaker",)
ENERGY_UNITS = {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "µJ": 1e-6, "mJ": 1e-3, "J": 1.0}
POWER_UNITS = {"W": 1.0, "mW": 1e-3}
BUILTIN = Path(__file__).with_name("costs.json")


@dataclass(frozen=True)
class Constant:
    """One cited number: ``si`` is the value in joules (energies), watts or hops."""

    field: str
    value: float
    unit: str
    si: float
    source: str
    recalled: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = {"value": self.value, "unit": self.unit, "si": self.si, "source": self.source,
             "recalled": self.recalled}
        if self.note:
            d["note"] = self.note
        return d


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    kind: str
    description: str
    costs: dict[str, Constant]
    assumptions: dict[str, Constant] = field(default_factory=dict)
    backend: str | None = None
    origin: str = "built-in"

    def e(self, name: str) -> float:
        """Energy per event in joules (power in watts for ``static_power``)."""
        return self.costs[name].si


@dataclass(frozen=True)
class CostTable:
    targets: dict[str, Target]
    baseline: str
    sources: tuple[str, ...]

    def select(self, names: list[str] | None) -> list[Target]:
        """The named targets (all when ``names`` is None); unknown names raise ``ValueError``."""
        if names is None:
            return list(self.targets.values())
        unknown = [n for n in names if n not in self.targets]
        if unknown:
            raise ValueError(f"unknown energy target {unknown[0]!r}; known: {sorted(self.targets)}")
        if not names:
            raise ValueError("no energy target selected")
        return [self.targets[n] for n in dict.fromkeys(names)]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such cost table file")
    from ..safeio import check_depth, parse_json, read_text

    text = read_text(path)  # size limit (NEURO_MAX_JSON_BYTES), UTF-8
    try:
        if path.suffix.lower() == ".toml":
            if sys.version_info < (3, 11):
                raise ValueError(f"{path}: TOML cost tables need Python 3.11+ (use JSON)")
            import tomllib

            try:
                data = check_depth(str(path), tomllib.loads(text))
            except RecursionError:
                raise ValueError(f"{path}: nested too deeply to read") from None
        else:
            data = parse_json(text, f"{path} (not a readable cost table)")
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a readable cost table ({first})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a cost table must be an object with 'targets'")
    return data


def _constant(where: str, fname: str, raw: Any, units: dict[str, float]) -> Constant:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: field {fname!r} must be an object with value, unit, source, recalled")
    for k in ("value", "unit", "source", "recalled"):
        if k not in raw:
            raise ValueError(f"{where}: missing field '{fname}.{k}'")
    v = raw["value"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{where}: field '{fname}.value' must be a finite number >= 0, got {v!r}")
    if raw["unit"] not in units:
        raise ValueError(f"{where}: field '{fname}.unit' must be one of {list(units)}, got {raw['unit']!r}")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        raise ValueError(f"{where}: field '{fname}.source' must name the source of the number")
    if not isinstance(raw["recalled"], bool):
        raise ValueError(f"{where}: field '{fname}.recalled' must be true or false")
    return Constant(fname, float(v), raw["unit"], float(v) * units[raw["unit"]], raw["source"],
                    raw["recalled"], str(raw.get("note", "")))


def parse_target(key: str, raw: Any, origin: str) -> Target:
    """Validate one target entry; errors are one line naming the file, the target and the field."""
    where = f"{origin}: target {key!r}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    for k in ("name", "kind", "description", "costs"):
        if k not in raw:
            raise ValueError(f"{where}: missing field {k!r}")
    if raw["kind"] not in KINDS:
        raise ValueError(f"{where}: field 'kind' must be one of {list(KINDS)}, got {raw['kind']!r}")
    backend = raw.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"{where}: field 'backend' must be one of {list(BACKENDS)} or absent, got {backend!r}")
    costs_raw = raw["costs"]
    if not isinstance(costs_raw, dict):
        raise ValueError(f"{where}: field 'costs' must be an object")
    costs = {}
    for f in COST_FIELDS:
        if f not in costs_raw:
            raise ValueError(f"{where}: missing field 'costs.{f}'")
        c = _constant(where, f"costs.{f}", costs_raw[f],
                      POWER_UNITS if f == "static_power" else ENERGY_UNITS)
        costs[f] = Constant(f, c.value, c.unit, c.si, c.source, c.recalled, c.note)
    unknown = sorted(set(costs_raw) - set(COST_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field 'costs.{unknown[0]}' (known: {list(COST_FIELDS)})")
    assumptions = {}
    a_raw = raw.get("assumptions", {})
    if not isinstance(a_raw, dict):
        raise ValueError(f"{where}: field 'assumptions' must be an object")
    if raw["kind"] == "event" and "hops_per_packet" not in a_raw:
        raise ValueError(f"{where}: missing field 'assumptions.hops_per_packet' (needed by kind 'event')")
    if "hops_per_packet" in a_raw:
        c = _constant(where, "assumptions.hops_per_packet", a_raw["hops_per_packet"], {"hops": 1.0})
        assumptions["hops_per_packet"] = Constant("hops_per_packet", c.value, c.unit, c.si,
                                                  c.source, c.recalled, c.note)
    return Target(key, str(raw["name"]), raw["kind"], str(raw["description"]), costs,
                  assumptions, backend, origin)


def _merge(base: dict[str, Any], over: dict[str, Any], origin: str) -> dict[str, Any]:
    """``over`` merged into ``base`` by key, recursively. A cost constant given only in part
    (say ``{"value": 5}``) keeps the built-in unit; its source becomes the user's table (unless it
    names one) and it counts as checked (``recalled`` false) unless it says otherwise."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            b = base[k]
            if "value" in b and "value" in v:  # a constant overridden: the number is the user's
                out[k] = {"unit": b.get("unit"), "source": f"{origin} (user override)",
                          "recalled": False, **v}
            else:
                out[k] = _merge(b, v, origin)
        else:
            out[k] = v
    return out


def load_cost_table(extra: str | Path | None = None) -> CostTable:
    """The built-in table, with the user table ``extra`` (JSON/TOML) merged over it by key: a
    user entry for a known target needs only the fields it changes (``{"targets": {"loihi":
    {"costs": {"ac": {"value": 30, "unit": "pJ"}}}}}``); a new target needs every field."""
    layers = [(BUILTIN, "built-in")] + ([(Path(extra), str(extra))] if extra is not None else [])
    targets: dict[str, Target] = {}
    raw_of: dict[str, dict[str, Any]] = {}
    baseline = None
    for path, origin in layers:
        data = _read(path)
        raw_targets = data.get("targets")
        if not isinstance(raw_targets, dict) or not raw_targets:
            raise ValueError(f"{origin}: missing field 'targets' (an object of target entries)")
        for key, raw in raw_targets.items():
            if key in raw_of and isinstance(raw, dict):
                raw = _merge(raw_of[key], raw, origin)
            if isinstance(raw, dict):
                raw_of[key] = raw
            targets[key] = parse_target(key, raw, origin)
        if "baseline" in data:
            baseline = data["baseline"]
            if baseline not in targets:
                raise ValueError(f"{origin}: field 'baseline' names unknown target {baseline!r}")
    if baseline is None:
        raise ValueError(f"{BUILTIN}: missing field 'baseline'")
    if targets[baseline].kind != "ann":
        raise ValueError(f"cost table: baseline {baseline!r} must be an ANN target (kind 'ann')")
    return CostTable(targets, baseline, tuple(str(p) for p, _ in layers))


__all__ = ["COST_FIELDS", "Constant", "CostTable", "Target", "load_cost_table", "parse_target"]
