"""lava-dl netx HDF5 writer (and a reader of the same layout) for feed-forward Loihi networks.

Layout (lava-dl 0.6.0 ``lava.lib.dl.netx.hdf5.Network(net_config=PATH)``; shared reference
``hardware.md`` 1.5)::

    /layer/0                type "input", shape [N]          (no neuron group: input shape only)
    /layer/i (i >= 1)       type "dense", shape [n_out], inFeatures, outFeatures
        weight [n_out, n_in]    the loihi2 integer weights (netx re-derives weight_exp/bits)
        delay  [n_out, n_in]    per-synapse delays in steps (only when some are non-zero)
        bias   [n_out]          bias_mant for netx's fixed bias_exp = 6 (v-unit bias / 64)
        neuron/ type "CUBA", iDecay = du + 1, vDecay = dv, vThMant = vth, refDelay 1,
                gradedSpike False
    /simulation/Ts = 1, /simulation/tSample = 1000   (informational)

netx builds ``LIF(du=iDecay - 1, dv=vDecay, vth=vThMant, bias_exp=6)``; a non-spiking LI readout
gets ``vThMant = 1 << 17``, the value netx itself uses for a layer without a neuron group.

Networks that fit: one input, then a chain of (synapse -> neuron) layers, each neuron fed by one
Linear/Affine/DelayedAffine synapse from the previous layer, no recurrence, no Delay nodes, and
biases that are multiples of 64 with a 13-bit mantissa. Everything else gets no netx file (the
artifact's manifest says why).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from neuro.graph import nodes as N

from .mapping import BIAS_MANT, LI_VTH, Plan, _scalar, neuron_bias

NETX_BIAS_EXP = 6


def _chain(q: Any, p: Plan) -> list[str] | str:
    """The neuron populations in chain order, or the reason there is no chain."""
    if len(p.inputs) != 1:
        return f"{len(p.inputs)} inputs (netx takes one)"
    by_dst: dict[str, list] = {}
    for sp in p.synapses:
        by_dst.setdefault(sp.dst, []).append(sp)
    order, src = [], next(iter(p.inputs))
    left = dict(by_dst)
    while left:
        nxt = [n for n, sps in left.items() if len(sps) == 1 and sps[0].src == src]
        if len(nxt) != 1:
            return "not a chain of single-input layers (recurrence, skips or branches)"
        n = nxt[0]
        if left[n][0].extra_delay.any():
            return "a Delay node (netx has per-synapse delays only)"
        order.append(n)
        del left[n]
        src = n
    if len(order) != len(p.neurons):
        return "a population without input synapses"
    return order


def unsupported_reason(q: Any, p: Plan) -> str | None:
    """Why the quantized ``q`` has no netx form (None when it has one)."""
    order = _chain(q, p)
    if isinstance(order, str):
        return order
    syn_of = {sp.dst: sp.name for sp in p.synapses}
    for n in order:
        if q.nodes[syn_of[n]].weight_exp:
            return (f"node {syn_of[n]!r} has weight_exp {q.nodes[syn_of[n]].weight_exp} (netx derives "
                    "the exponent from the stored weights)")
        b = neuron_bias(q, n)
        if b is None or not np.any(b):
            continue
        if np.any(np.asarray(b) % (1 << NETX_BIAS_EXP)) or not np.all(
                (np.asarray(b) >> NETX_BIAS_EXP >= BIAS_MANT[0]) & (np.asarray(b) >> NETX_BIAS_EXP <= BIAS_MANT[1])):
            return (f"the bias of {n!r} is not a 13-bit mantissa times 2^6 (netx fixes "
                    "bias_exp = 6)")
    return None


def _str(h: Any, key: str, value: str) -> None:
    h.create_dataset(key, (1,), f"S{max(10, len(value))}", [value.encode("ascii")])


def write(path: str | Path, q: Any, p: Plan) -> Path:
    """Write the netx HDF5 file for ``q`` (raises ``ValueError`` when it does not fit)."""
    import h5py

    reason = unsupported_reason(q, p)
    if reason is not None:
        raise ValueError(f"no lava-dl netx form: {reason}")
    order = _chain(q, p)
    syn_of = {sp.dst: sp for sp in p.synapses}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            sim = f.create_group("simulation")
            sim.create_dataset("Ts", data=1)
            sim.create_dataset("tSample", data=1000)
            layers = f.create_group("layer")
            inp = layers.create_group("0")
            _str(inp, "type", "input")
            inp.create_dataset("shape", data=np.array([next(iter(p.inputs.values()))]))
            for i, n in enumerate(order, start=1):
                node, qd, sp = q.nodes[n], q.nodes[n].q, syn_of[n]
                syn = q.nodes[sp.name]
                w = np.asarray(syn.weight, np.int64)
                h = layers.create_group(str(i))
                _str(h, "type", "dense")
                h.create_dataset("shape", data=np.array([w.shape[0]]))
                h.create_dataset("inFeatures", data=w.shape[1])
                h.create_dataset("outFeatures", data=w.shape[0])
                h.create_dataset("weight", data=w)
                if type(syn) is N.DelayedAffine and syn.delay.any():
                    h.create_dataset("delay", data=np.asarray(syn.delay, np.int64))
                b = neuron_bias(q, n)
                if b is not None and np.any(b):
                    h.create_dataset("bias", data=np.broadcast_to(np.asarray(b) >> NETX_BIAS_EXP,
                                                                  (w.shape[0],)))
                nr = h.create_group("neuron")
                _str(nr, "type", "CUBA")
                nr.create_dataset("iDecay", data=int(_scalar(qd["du"])) + 1)
                nr.create_dataset("vDecay", data=int(_scalar(qd["dv"])))
                nr.create_dataset("vThMant", data=int(_scalar(qd["vth"])) if node.spiking
                                  else LI_VTH)
                nr.create_dataset("refDelay", data=1)
                nr.create_dataset("gradedSpike", data=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read(path: str | Path) -> list[dict[str, Any]]:
    """The dense layers of a netx file as netx maps them to Lava: ``[{"du", "dv", "vth",
    "bias_mant", "bias_exp", "weight", "delay"}]`` (input layer first, as ``{"input": N}``)."""
    import h5py

    out: list[dict[str, Any]] = []
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        for i in range(len(layers)):
            h = layers[str(i)]
            kind = h["type"][0].decode("ascii")
            if kind == "input":
                out.append({"input": int(np.prod(h["shape"][()]))})
                continue
            if kind != "dense":
                raise ValueError(f"{path}: layer {i} has type {kind!r}; this reader knows input/dense")
            nr = h["neuron"]
            w = h["weight"][()].astype(np.int64)
            out.append({"du": int(nr["iDecay"][()]) - 1, "dv": int(nr["vDecay"][()]),
                        "vth": int(nr["vThMant"][()]), "bias_exp": NETX_BIAS_EXP,
                        "bias_mant": h["bias"][()].astype(np.int64) if "bias" in h else
                        np.zeros(w.shape[0], np.int64),
                        "weight": w, "delay": h["delay"][()].astype(np.int64) if "delay" in h
                        else np.zeros_like(w),
                        "type": nr["type"][0].decode("ascii")})
    return out


__all__ = ["NETX_BIAS_EXP", "read", "unsupported_reason", "write"]
