"""``quantize(graph, fmt)``: a float graph -> an integer graph in a target's number format.

Per neuron population (a neuron node and the synapse nodes feeding it, see
``neuro.graph.populations``) one scale ``S`` maps float
membrane units to integer state units; it is the largest scale at which

* every incoming weight fits the format's weight range,
* the threshold fits the threshold register,
* the membrane bound fits the state register with a 2x margin. The bound is the largest membrane
  seen when ``calibration_inputs`` are given, else ``max(threshold, largest row sum of |W| + |b|)``
  (every input spiking at once; a ``Conv2d`` row is one output channel's kernel, times the
  window of each ``SumPool2d`` in front of it).

Convolutions and pooling: a ``Conv2d`` synapse is quantized like an ``Affine`` (its kernel is its
weights, its per-channel bias in membrane units); ``SumPool2d`` sums integers (exact) and needs
nothing; an ``AvgPool2d`` becomes a ``SumPool2d`` with ``1 / (kh kw)`` folded into the float
weights of the synapse it feeds before they are quantized
(``neuro.graph.populations.fold_avg_pools``). Behind overlapping pooling windows (stride below
the window) the weight range is checked for ``overlap x |W|`` (``populations.pool_overlap``):
a target that stores explicit synapse rows sums that many kernel weights into one row entry.

Loihi (``family="loihi"``): weights ``w = W s_w`` in the 8-bit register (mixed sign: even values in
[-256, 254]; one sign: [0, 255]), ``S = 64 s_w 2^weight_exp``, ``vth = round(theta s_w 2^weight_exp)``,
``dv = round(4096 (1 - beta))``, ``du = round(4096 (1 - alpha)) - 1`` (4095 for a plain LIF). Synapse
biases become ``bias_mant << bias_exp`` in v units (13-bit mantissa, exponent 0..7).

Fixed (SpiNNaker, FPGA): SpiNNaker keeps real units, ``S = 2^15`` (s16.15), weights are 16-bit
mantissas with a per-population left shift; FPGA formats choose ``S`` per population. Decays are
``m = round(beta 2^decay_bits)`` (mantissa leak) or the nearest ``v - (v >> k)`` (shift leak).

EGRU populations (fixed formats with fraction bits, i.e. ``spinnaker``): weights as 16-bit
mantissas with one fraction width per matrix, biases and thresholds in s16.15, gate tables from
the format (``neuro.graph.egru_int``); ``S = 2^15``. An EGRU language model (Embedding, EGRU
layers, the decoder Affine reading the last layer's events) goes to ``neuro.graph.egru_lm_int``.

Biases: a population's synapse biases are summed onto one synapse before rounding
(``populations.merge_biases``); a CubaLIF's synapse bias, a constant input current, becomes a
spike source firing every step with the bias as its weight column
(``populations.current_bias_sources``): exact in real arithmetic, then quantized like weights.

Integer parameters go to ``node.q`` (neurons) and the synapse nodes' ``weight``/``bias``
(integer arrays) and ``weight_exp``; ``graph.metadata["format"]`` names the format. Anything the
format cannot represent raises ``ValueError`` naming the node, the field and the bits needed.
"""
from __future__ import annotations

import copy
import math
from typing import Any, cast

import numpy as np

from . import nodes as N
from .formats import NumberFormat, get_format
from .graph import Graph, GraphError
from .populations import (
    current_bias_sources,
    fold_avg_pools,
    fold_channel_affines,
    fold_input_decay,
    merge_biases,
    neuron_problems,
    partition,
    pool_overlap,
    synapse_abs_rowsum,
)

#: neuron kinds quantize has an integer encoding for (exact classes: a subclass is refused)
NEURON_KINDS = (N.LIF, N.CubaLIF, N.IF, N.LI)


def _integer_populations(g: Graph) -> dict[str, list[str]]:
    """neuron node -> the synapse nodes feeding it; ``GraphError`` for anything without an
    integer form or out of the population shape (``neuro.graph.populations``)."""
    for name, node in g.nodes.items():
        if not node.has_integer_form or (node.role == "neuron"
                                         and type(node) not in (*NEURON_KINDS, N.EGRU)):
            raise GraphError(f"node {name!r} ({node.kind}) has no integer form yet")
    view = partition(g)
    if view.problems:
        raise GraphError(view.problems[0][1])
    return view.neurons


def _abs_bias(node: N.Node) -> float:
    b = getattr(node, "bias", None)
    return 0.0 if b is None else float(np.abs(np.asarray(b, np.float64)).max(initial=0))


def decay_code(fmt: NumberFormat, beta: np.ndarray, name: str, fieldname: str) -> dict[str, Any]:
    """The format's integer code of per-step decays ``beta`` (``{field}_m`` mantissas or
    ``{field}_shift`` shifts), as quantize stores it and QAT reproduces it."""
    beta = np.asarray(beta, np.float64)
    if fmt.decay == "mantissa":
        m = np.round(beta * (1 << fmt.decay_bits)).astype(np.int64)
        return {f"{fieldname}_m": m.tolist()}
    if fmt.decay == "shift":
        with np.errstate(divide="ignore"):
            k = np.where(beta >= 1, 0, np.clip(np.round(-np.log2(np.maximum(1 - beta, 1e-12))), 1, 62))
        return {f"{fieldname}_shift": k.astype(np.int64).tolist()}  # 0 = no leak
    raise GraphError(f"node {name!r}: decay {fmt.decay!r} is not a fixed-family decay")


def _bias_mant_exp(b: np.ndarray) -> np.ndarray:
    """Round v-unit biases to values ``mant << exp`` with a 13-bit mantissa and exp in 0..7."""
    out = np.zeros_like(b, dtype=np.int64)
    for i, v in enumerate(np.round(b).astype(np.int64).ravel()):
        e = 0
        while abs(v) >> e > 4095 and e < 7:
            e += 1
        mant = int(np.clip(round(v / (1 << e)), -4096, 4095))
        out.ravel()[i] = mant << e
    return out


def _egru_in_frac(g: Graph, name: str, fmt: NumberFormat, input_frac_bits: int) -> int:
    """Fraction bits of the values an EGRU population reads (``GraphError`` naming the node when
    its inputs are not Inputs and EGRUs with one width, or when it feeds anything but EGRUs and
    Outputs: its graded s16.15 events have no meaning for a synapse of spike counts)."""
    fracs = set()
    for p in g.predecessors(name):
        src = g.nodes[p]
        if src.role == "input":
            fracs.add(input_frac_bits)
        elif type(src) is N.EGRU:
            fracs.add(fmt.frac_bits or fmt.egru_frac_bits)
        else:
            raise GraphError(f"node {name!r} (EGRU): input {p!r} ({src.kind}) has no integer form "
                             "for an EGRU; an integer EGRU reads Inputs and EGRU populations")
    if len(fracs) != 1:
        raise GraphError(f"node {name!r} (EGRU): its inputs have different fraction widths "
                         f"{sorted(fracs)} (Input values with input_frac_bits={input_frac_bits}, "
                         f"EGRU events with {fmt.frac_bits or fmt.egru_frac_bits})")
    for s in g.successors(name):
        if type(g.nodes[s]) not in (N.EGRU, N.Output):
            raise GraphError(f"node {s!r} ({g.nodes[s].kind}) reads EGRU {name!r}: its graded "
                             "events are fixed-point values, which only an EGRU or an Output takes "
                             "in the integer graph")
    return fracs.pop()


def quantize(graph: Graph, fmt: str | NumberFormat, calibration_inputs: Any = None, *,
             input_frac_bits: int | None = None) -> Graph:
    """Return an integer copy of ``graph`` in format ``fmt`` (see the module docstring).

    ``input_frac_bits``: fraction bits of the integer values fed to the Input nodes that EGRU
    populations read (0: spikes or counts; 15 with ``spinnaker``: s16.15 real values such as
    an embedding); default ``graph.metadata.get("input_frac_bits", 0)``. Other populations take
    spikes (counts) from their Inputs.
    """
    from .egru_int import quantize_egru
    from .egru_lm_int import is_lm, quantize_lm
    from .simulate import simulate

    node: Any  # neurons and synapses of every class: fields read by name
    syn: Any
    fmt = get_format(fmt)
    graph.validate()
    if "format" in graph.metadata:
        raise GraphError("the graph is already quantized "
                         f"(format {graph.metadata['format'].get('name')!r})")
    g = copy.deepcopy(graph)
    if fmt.max_delay:
        for name, node in g.nodes.items():
            if getattr(node, "delay", None) is not None and node.delay.size and int(node.delay.max()) > fmt.max_delay:
                raise GraphError(f"node {name!r} ({node.kind}): field 'delay' needs {int(node.delay.max())} "
                                 f"steps, format {fmt.name} allows {fmt.max_delay} (train with "
                                 f"delay_limit={fmt.max_delay})")
    fold_channel_affines(g)
    fold_input_decay(g)
    in_frac = int(graph.metadata.get("input_frac_bits", 0) if input_frac_bits is None
                  else input_frac_bits)
    if not 0 <= in_frac <= 31:
        raise GraphError(f"input_frac_bits must lie in [0, 31], got {in_frac}")
    if is_lm(g):  # an EGRU language model: embedding, EGRU layers, decoder (egru_lm_int)
        return quantize_lm(g, fmt, in_frac)
    fold_avg_pools(g)
    current_bias_sources(g)
    merge_biases(g)
    pops = _integer_populations(g)
    bound: dict[str, float] = {}
    if calibration_inputs is not None and any(type(g.nodes[n]) is not N.EGRU for n in pops):
        rec = simulate(graph, calibration_inputs, record=True, record_membranes=True)
        for n in pops:
            key = f"{n}.v"
            if key in rec:
                bound[n] = float(rec[key].abs().max())
    scales: dict[str, float] = {}
    for n, syns in pops.items():
        node = g.nodes[n]
        if type(node) is N.EGRU:
            try:
                quantize_egru(n, node, fmt, _egru_in_frac(g, n, fmt, in_frac))
            except ValueError as exc:
                raise GraphError(str(exc)) from None
            scales[n] = float(cast(dict, node.q)["scale"])
            continue
        problems = neuron_problems(n, node, fmt)
        if problems:
            raise GraphError(problems[0])
        ws = [np.abs(cast(Any, g.nodes[s]).weight).max() * pool_overlap(g, s)
              if cast(Any, g.nodes[s]).weight.size else 0.0 for s in syns]
        wmax = float(max(ws, default=0.0)) or 1.0
        theta = float(np.max(node.threshold)) if node.spiking else 0.0
        rowsum = sum(synapse_abs_rowsum(g, s) + _abs_bias(g.nodes[s])
                     for s in syns) if syns else 1.0
        vb = bound.get(n, max(theta, rowsum)) or 1.0
        if type(node) is N.CubaLIF and any(_abs_bias(g.nodes[s]) > 0 for s in syns):
            raise GraphError(f"node {n!r} (CubaLIF): a synapse bias has no exact integer form "
                             "(it would bypass the current)")
        if fmt.family == "loihi":
            signs = np.concatenate([np.sign(cast(Any, g.nodes[s]).weight).ravel() for s in syns]) if syns else np.zeros(1)
            mixed = bool((signs > 0).any() and (signs < 0).any())
            wlim = 254 if mixed else 255
            s_w = min(wlim / wmax, (fmt.threshold_max / theta) if theta else math.inf,
                      fmt.state_max / (2 * 64 * vb))
            if s_w < 1 / wmax:
                raise GraphError(f"node {n!r}: format {fmt.name} cannot hold its weights and membrane "
                                 f"range together (membrane bound {vb:.3g}, largest weight {wmax:.3g})")
            S = 64 * s_w
            for s in syns:
                syn = g.nodes[s]
                w = syn.weight.astype(np.float64) * s_w
                wi = (2 * np.round(w / 2) if mixed else np.round(w)).astype(np.int64)
                syn.weight = np.clip(wi, -256 if mixed else (-255 if (signs <= 0).all() else 0),
                                     254 if mixed else 255).astype(np.int32)
                syn.weight_exp = 0
                if getattr(syn, "bias", None) is not None:
                    syn.bias = _bias_mant_exp(syn.bias.astype(np.float64) * S).astype(np.int32)
            q: dict[str, Any] = {"scale": S}
            if node.spiking:
                q["vth"] = int(np.round(np.max(node.threshold) * s_w))
                if not np.all(node.threshold == node.threshold.ravel()[0]):
                    raise GraphError(f"node {n!r}: field 'threshold' must be one value per population "
                                     f"for format {fmt.name} (Lava's vth is a scalar)")
                if q["vth"] > fmt.threshold_max:
                    raise GraphError(f"node {n!r}: field 'threshold' needs {q['vth'].bit_length()} bits, "
                                     f"the format has {fmt.threshold_bits}")
            beta = np.asarray(node.beta, np.float64)
            q["dv"] = np.clip(np.round(4096 * (1 - beta)), 0, 4095).astype(np.int64).tolist()
            if type(node) is N.CubaLIF:
                alpha = np.asarray(node.alpha, np.float64)
                q["du"] = np.clip(np.round(4096 * (1 - alpha)) - 1, 0, 4095).astype(np.int64).tolist()
            else:
                q["du"] = 4095
        else:
            if fmt.frac_bits:  # real units (SpiNNaker): S fixed, weights get a shift
                S = float(1 << fmt.frac_bits)
                if vb * S * 2 > fmt.state_max:
                    raise GraphError(f"node {n!r}: membrane bound {vb:.3g} overflows the "
                                     f"s{fmt.state_bits - fmt.frac_bits - 1}.{fmt.frac_bits} state")
                wexp = max(0, math.ceil(math.log2(wmax * S / fmt.weight_max))) if wmax * S > fmt.weight_max else 0
                if wexp > fmt.weight_exp_range[1]:
                    raise GraphError(f"node {n!r}: weights need a shift of {wexp}, the format allows "
                                     f"{fmt.weight_exp_range[1]}")
            else:
                S = min(fmt.weight_max / wmax, (fmt.state_max / (2 * vb)))
                wexp = 0
                if S * wmax < 1:
                    raise GraphError(f"node {n!r}: format {fmt.name} cannot hold its weights and membrane "
                                     f"range together (membrane bound {vb:.3g}, largest weight {wmax:.3g})")
            for s in syns:
                syn = g.nodes[s]
                wi = np.round(syn.weight.astype(np.float64) * S / (1 << wexp)).astype(np.int64)
                if np.abs(wi).max(initial=0) > fmt.weight_max + 1:
                    raise GraphError(f"node {s!r}: field 'weight' needs more than {fmt.weight_bits} bits")
                syn.weight = np.clip(wi, fmt.weight_min, fmt.weight_max).astype(np.int32)
                syn.weight_exp = wexp
                if getattr(syn, "bias", None) is not None:
                    b = np.round(syn.bias.astype(np.float64) * S).astype(np.int64)
                    syn.bias = np.clip(b, -fmt.state_max, fmt.state_max).astype(np.int64)
            q = {"scale": S}
            if node.spiking:
                vth = np.round(np.asarray(node.threshold, np.float64) * S).astype(np.int64)
                if vth.max() > fmt.threshold_max:
                    raise GraphError(f"node {n!r}: field 'threshold' needs {int(vth.max()).bit_length() + 1} "
                                     f"bits, the format has {fmt.state_bits}")
                q["vth"] = vth.tolist()
            q.update(decay_code(fmt, node.beta, n, "beta"))
            if type(node) is N.CubaLIF:
                q.update(decay_code(fmt, node.alpha, n, "alpha"))
        node.q = q
        scales[n] = S
    g.metadata = {**g.metadata, "format": fmt.to_dict(), "scales": scales}
    return g.validate()
