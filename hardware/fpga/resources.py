"""Resource estimate of the integer graph on an FPGA, per layer and in total.

The model (stated here and written into ``resources.json`` with the numbers) counts storage bits
and arithmetic units of one time step for two designs:

* **fully parallel**: every synapse and every neuron has its own hardware and one step takes one
  pass through the combinational logic (the Verilog this target generates is this design);
* **time-multiplexed**: each layer has one processing element that visits its synapses (or
  neurons) one per clock cycle; ``cycles_per_step`` is the number of visits.

Storage (bits; the same for both designs):

* ``weight_memory_bits``: ``n_out n_in weight_bits`` per dense layer (dense storage, zeros
  included) plus ``n_out n_in delay_bits`` of per-synapse delays for delayed layers; the kernel
  ``Cout Cin/groups kh kw weight_bits`` of a ``conv2d`` layer (stored once, shared by the pixels);
* ``parameter_memory_bits``: per neuron ``state_bits`` for the threshold and the bias when present
  (one register when the value is shared by the whole layer), the leak code (``shift``: the bits of
  the largest ``k``; ``mantissa``: ``decay_bits + 1``), and per-channel delays of ``delay`` layers;
* ``state_memory_bits``: per neuron ``state_bits`` for ``v`` (and the current ``i`` of CubaLIF),
  the previous output of neurons read by recurrent edges (1 bit for spikes), and the delay lines:
  a shift register of ``max_delay`` entries per input channel (1 bit per entry for spikes, 8 for
  input counts, ``state_bits`` for integer values).

Arithmetic per step (two-input adders/subtractors, multipliers, comparators):

* dense layer, fully parallel: an adder tree per output, ``n_out (n_in - 1)`` adders of
  ``accumulator_bits``; a spike (1-bit) input gates the weight, so there are no multipliers; a
  multi-bit input needs ``n_out n_in`` multipliers. Time-multiplexed: one accumulator (1 adder,
  1 multiplier for multi-bit inputs), ``n_out n_in`` cycles; a ``conv2d`` layer likewise with
  ``n_in`` = its receptive field ``Cin/groups kh kw``; ``sumpool2d``: ``kh kw - 1`` adders per
  output (time-multiplexed: one adder, that many cycles);
* neuron layer, fully parallel per neuron: the leak (``shift``: 1 subtractor, the shift is wiring;
  ``mantissa``: 1 multiplier ``state_bits x (decay_bits + 1)``), 1 adder for the input, 1 for the
  bias when present, 2 comparators for saturation (``saturate``; ``wrap`` is free), and for LIF 1
  comparator for the threshold and 1 subtractor for a ``subtract`` reset; CubaLIF adds the same
  leak, adder and saturation for the current. Time-multiplexed: one such unit, ``size`` cycles.

``accumulator_bits``: bits of the largest possible synaptic sum (every input at its maximum).
The estimate does not model routing, control, LUT/DSP packing or memory port limits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .intgraph import array, signed_bits, source_bounds

MODEL = __doc__


def _value_bits(kind: dict[str, Any]) -> int:
    return int(kind["bits"])


def estimate(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-layer and total estimate (see the module docstring); JSON-able."""
    ar = desc["arithmetic"]
    sb, dbits = ar["state_bits"], ar["decay_bits"]
    rows = []
    max_in = source_bounds(desc)
    for layer in desc["layers"]:
        op, name = layer["op"], layer["name"]
        a_max = sum(max_in.get(s["node"], 0) for s in layer["sources"])
        row: dict[str, Any] = {"layer": name, "op": op, "size": layer["size"],
                               "weight_memory_bits": 0, "parameter_memory_bits": 0,
                               "state_memory_bits": 0}
        par = {"adders": 0, "multipliers": 0, "comparators": 0}
        tm = {"adders": 0, "multipliers": 0, "comparators": 0, "cycles_per_step": 0}
        for reg in layer["state"]:
            row["state_memory_bits"] += int(np.prod(reg["shape"])) * int(reg["bits"])
        if op in ("dense", "delayed_dense"):
            w = array(arrays, layer["weight"])
            n_out, n_in = w.shape
            row["weight_memory_bits"] = n_out * n_in * layer["weight_bits"]
            if op == "delayed_dense":
                row["weight_memory_bits"] += n_out * n_in * layer["delay_bits"]
                row["max_delay"] = layer["max_delay"]
            spikes_in = layer["input"]["kind"] == "u8" and layer["input"]["bits"] == 1
            acc = int(np.abs(w).sum(1).max(initial=0)) * max(a_max, 1)
            row["accumulator_bits"] = signed_bits(np.array([acc, -acc]))
            row["synapses"] = int(n_out * n_in)
            row["nonzero_synapses"] = int(np.count_nonzero(w))
            par["adders"] = n_out * max(n_in - 1, 0)
            par["multipliers"] = 0 if spikes_in else n_out * n_in
            tm.update(adders=1, multipliers=0 if spikes_in else 1, cycles_per_step=n_out * n_in)
            max_in[name] = acc
        elif op == "conv2d":  # the kernel is stored once; each output sums its receptive field
            w = array(arrays, layer["weight"])
            n_out, fan_in = layer["n_out"], int(np.prod(w.shape[1:]))
            row["weight_memory_bits"] = int(w.size) * layer["weight_bits"]
            spikes_in = layer["input"]["kind"] == "u8" and layer["input"]["bits"] == 1
            acc = int(np.abs(w).reshape(w.shape[0], -1).sum(1).max(initial=0)) * max(a_max, 1)
            row["accumulator_bits"] = signed_bits(np.array([acc, -acc]))
            row["synapses"] = int(n_out * fan_in)  # padding cells included
            par["adders"] = n_out * max(fan_in - 1, 0)
            par["multipliers"] = 0 if spikes_in else n_out * fan_in
            tm.update(adders=1, multipliers=0 if spikes_in else 1, cycles_per_step=n_out * fan_in)
            max_in[name] = acc
        elif op == "sumpool2d":
            k = int(np.prod(layer["kernel_size"]))
            par["adders"] = layer["size"] * (k - 1)
            tm.update(adders=1, cycles_per_step=layer["size"] * (k - 1))
            max_in[name] = a_max * k
        elif op == "delay":
            row["parameter_memory_bits"] = layer["size"] * layer["delay_bits"]
            max_in[name] = a_max
        elif op in ("lif", "li"):
            n = layer["size"]
            leaks = [layer["beta"]] + ([layer["alpha"]] if layer["cuba"] else [])
            unit = {"adders": 0, "multipliers": 0, "comparators": 0}
            for leak in leaks:
                if leak["kind"] == "shift":
                    k = array(arrays, leak["k"])
                    row["parameter_memory_bits"] += (1 if (k == k[0]).all() else n) * max(1, int(k.max()).bit_length())
                    unit["adders"] += 1 if k.any() else 0
                else:
                    m = array(arrays, leak["m"])
                    row["parameter_memory_bits"] += (1 if (m == m[0]).all() else n) * (dbits + 1)
                    unit["multipliers"] += 1
                unit["adders"] += 1  # the input (or the current) is added
                unit["comparators"] += 2 if ar["overflow"] == "saturate" else 0
            for key in ("bias", "threshold"):
                v = array(arrays, layer.get(key))
                if v is not None:
                    row["parameter_memory_bits"] += (1 if (v == v[0]).all() else n) * sb
            if layer.get("bias") is not None:
                unit["adders"] += 1
            if op == "lif":
                unit["comparators"] += 1
                unit["adders"] += 1 if layer["reset"] == "subtract" else 0
            par = {k: v * n for k, v in unit.items()}
            tm.update(unit, cycles_per_step=n)
            max_in[name] = 1 if op == "lif" else (1 << (sb - 1))
        else:
            max_in[name] = a_max
        row["fully_parallel"] = par
        row["time_multiplexed"] = tm
        rows.append(row)
    total: dict[str, Any] = {k: sum(r[k] for r in rows) for k in
                             ("weight_memory_bits", "parameter_memory_bits", "state_memory_bits")}
    total["memory_bits"] = sum(total.values())
    for design in ("fully_parallel", "time_multiplexed"):
        total[design] = {k: sum(r[design][k] for r in rows) for k in rows[0][design]} if rows else {}
    if rows:  # the layers' processing elements run one after another within a step
        total["time_multiplexed"]["cycles_per_step"] = sum(r["time_multiplexed"]["cycles_per_step"]
                                                           for r in rows)
    return {"number_format": desc["number_format"]["name"], "layers": rows, "total": total,
            "model": MODEL.strip()}


def table(est: dict[str, Any]) -> str:
    """A plain-text table of the estimate (one row per layer with arithmetic or storage)."""
    head = (f"{'layer':14s} {'op':13s} {'weights b':>10s} {'params b':>9s} {'state b':>9s} "
            f"{'par add':>8s} {'par mul':>8s} {'tm cycles':>10s}")
    lines = [head]
    for r in est["layers"]:
        if not (r["weight_memory_bits"] or r["state_memory_bits"] or r["parameter_memory_bits"]):
            continue
        lines.append(f"{r['layer']:14s} {r['op']:13s} {r['weight_memory_bits']:10d} "
                     f"{r['parameter_memory_bits']:9d} {r['state_memory_bits']:9d} "
                     f"{r['fully_parallel']['adders']:8d} {r['fully_parallel']['multipliers']:8d} "
                     f"{r['time_multiplexed']['cycles_per_step']:10d}")
    t = est["total"]
    lines.append(f"{'total':14s} {'':13s} {t['weight_memory_bits']:10d} {t['parameter_memory_bits']:9d} "
                 f"{t['state_memory_bits']:9d} {t['fully_parallel'].get('adders', 0):8d} "
                 f"{t['fully_parallel'].get('multipliers', 0):8d} "
                 f"{t['time_multiplexed'].get('cycles_per_step', 0):10d}")
    return "\n".join(lines)
