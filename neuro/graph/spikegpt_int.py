r"""The integer SpikeGPT: registers, tables and one fixed-point step per token.

A SpikeGPT graph (``neuro.models.spikegpt.graph``: Embedding, LayerNorm, TokenShift, Linear, WKV,
Gate, SquaredReLU, LIF, Add; ``neuro.graph.lm_nodes`` gives the float equations) becomes an
integer graph with :func:`quantize_spikegpt`; :func:`simulate_spikegpt_int` is its integer
reference executor (``neuro.graph.intsim.simulate_int`` hands such graphs here). The FPGA target
(``neuro.hardware.fpga.spikegpt``) runs the same step as an ONNX graph.

**Activations.** Every real-valued activation (residual stream, LayerNorm, token shift, keys,
values, WKV output, gates, logits, LIF membranes) is one format ``sA.F``: the integer
``round(v 2^F)`` in an ``ACT_BITS = 24``-bit saturating register (``|v| < 2^(23 - F)``). ``F`` is
calibrated once per graph (:func:`activation_frac`): the largest value in ``[F_MIN, F_MAX] =
[6, 14]`` for which twice the largest float activation seen on the calibration tokens fits.
Spikes (LIF outputs) are the integers 0/1; the one-hot token input is 0/1. All arithmetic is
exact in int64 (bounds below); ``>>`` is the floor shift, ``rnd(x, k) = (x + 2^(k-1)) >> k`` the
round-half-up shift, ``sat`` clips to the 24-bit activation register.

Registers and fields of the quantized graph (node fields hold integers; ``graph.metadata
["spikegpt_int"]`` holds the shared tables and the per-channel multipliers):

``Embedding``   ``weight [V, C]``: ``E_q = ONE H(E)`` for a binary embedding (exact), else
                ``sat(round(E 2^F))``; ``y = onehot . E_q``.
``LayerNorm``   ``weight``, ``bias`` ``[C]``: ``round(w 2^F)``, ``round(b 2^F)``;
                ``meta["eps"]``: ``max(1, round(eps 2^2F))``. One step, per row::

                    mu  = (sum x + C/2) // C ;  d = x - mu                       (F frac)
                    var = (sum d^2) // C + eps                                   (2F frac, >= 1)
                    dc  = C x - sum x                         (C (x - mean), exact)
                    e   = #{j in 0..31 : var >= 4^j}      (so 4^(e-1) <= var < 4^e)
                    m   = var 4^(K-e)  or  var // 4^(e-K)  (K = 8: m in [4^7, 4^8))
                    R   = rsqrt_lut(m)  ~ 2^RF / sqrt(m / 4^K)                   (RF = 14)
                    yn  = (dc R + D/2) // D,  D = C 2^(RF + e - F)               (F frac)
                    y   = sat(rnd(yn w_q, F) + b_q)

                ``rsqrt_lut``: ``RSQRT_BITS = 8`` segments of width ``3 4^(K-1) / 256 = 192``
                over ``[4^(K-1), 4^K)`` with linear interpolation, knots ``round(2^RF /
                sqrt(m_k / 4^K))``. Relative error of ``1/sqrt(var)``: below ``1e-4`` (the
                truncation of ``m`` to 16 bits, ``3e-5``, interpolation ``1.3e-5``, rounding);
                the rounded ``mu`` only biases ``var`` by at most ``1/4`` LSB^2 (the output uses
                the exact ``dc``). ``C <= 4096`` channels (bounds). Measured in
                ``tests/neuro/graph/test_spikegpt_int.py``.
``TokenShift``  ``mix [C]``: ``round(mu 2^12)`` (any sign, ``|mu| < 2^10``); state ``prev`` (the previous input, F frac, 0 at
                the start); ``y = rnd(mix x + (2^12 - mix) prev, 12)``.
``Linear``      ``weight [out, in]``: signed ``weight_bits``-bit (8 for ``int8``) mantissas with
                a **per-output-channel scale as an integer multiplier and a per-layer shift**:
                ``W ~ W_q M_o 2^-S``, ``W_q = round(W 127 / max_i |W_oi|)`` (``2^(b-1) - 1``
                for ``b`` weight bits), ``M_o = round(2^S max_i |W_oi| / 127)`` with the largest
                ``S`` (<= 62) for which every ``M_o < 2^15``
                (``meta["linear"][name] = {"mult": M, "shift": S}``);
                ``y = sat(rnd((x . W_q) M_o, S + in_frac - F))`` (``in_frac``: 0 for spikes, F).
``WKV``         ``time_decay`` holds ``w_q = sat(round(-exp(time_decay) 2^F))``, ``time_first``
                ``u_q = sat(round(u 2^F))``; state (per channel) ``a`` (``F + G`` frac, G = 4),
                ``b`` (EF = 16 frac), ``p`` (F frac; ``P_FRESH = -2^40`` for the empty past),
                the max-subtracted form of ``neuro.models.spikegpt.wkv``::

                    q  = max(p, u + k) ; e1 = EXP(p - q) ; e2 = EXP(u + k - q)
                    y  = num // den' (rounded),  num = e1 a + e2 (v << G),
                         den' = (e1 b + e2 2^EF) >> (EF - G)                      (F frac)
                    q' = max(w + p, k) ; e1 = EXP(w + p - q') ; e2 = EXP(k - q')
                    a  = satS(rnd(e1 a + e2 (v << G), EF)) ; b = satS(rnd(e1 b + e2 2^EF, EF))
                    p  = q'

                ``EXP``: a table of ``2^EXP_BITS = 1024`` segments over ``[-2^EXP_RANGE_LOG2, 0]
                = [-16, 0]`` (knots ``round(exp(z_k) 2^EF)``, the last repeated so ``EXP(0) =
                2^EF`` exactly), linear interpolation; ``z < -16`` reads ``round(e^-16 2^16) =
                0``. Interpolation error relative to ``e^z``: ``h^2/8 = 3.1e-5`` (``h = 1/64``),
                plus the rounding of the 16-bit output (``7.6e-6`` absolute). Since one of
                ``e1, e2`` is ``2^EF`` in every update, ``b >= 2^EF`` (``Z >= 1``) after the
                first token and ``den' >= 2^(EF + G)``. ``satS`` clips ``a`` and ``b`` to
                ``+-(2^44 - 1)``, so ``e a < 2^60`` and every product stays within int64.
``Gate``        ``y = rnd(lut(S, g) v, F)``, ``S`` the sigmoid table of ``neuro.graph.egru_int``
                (``lut``: 256 segments over ``[-8, 8)``, knots ``round(sigmoid 2^F)``).
``SquaredReLU`` ``y = sat(rnd(max(x, 0)^2, F))``.
``LIF``         the shared fixed-family LIF of the integer targets (``neuro.graph.intsim``) with
                its membrane in the activation format: ``q = {"scale": 2^F, "vth": round(theta 2^F), leak code
                (``beta_shift`` or ``beta_m``, ``neuro.graph.quantize.decay_code``), "gain_m":
                round((1 - beta) 2^12) (decay_input) or 2^12}``::

                    x' = shr(x gain_m, 12) ; v = sat(decay(v) + x')
                    s  = v >= vth ;  v = 0 (reset zero) or v - vth (subtract) where s

                ``shr`` and ``decay`` use the format's rounding (FPGA: toward zero). SpikeGPT's
                ``beta = 1/2`` gives ``decay(v) = v - v/2`` and ``x' = x/2`` exactly up to one
                LSB of rounding.
``Add``         ``y = sat(sum of the inputs)``, spikes taken as ``s 2^F``.

Bounds: activations ``< 2^23``; LayerNorm ``d^2 < 2^48`` summed over ``C <= 2^12`` channels,
``dc R < 2^(24 + 12 + 15)``;
Linear ``|x . W_q| < 2^(23 + 7 + log2 in)`` times ``M < 2^15`` (``in < 2^17``); WKV as above.

**Exactness.** The integer reference and the FPGA's ONNX step graph are built from one step
description (:func:`step`, run with :class:`NumpyOps` here and with the ONNX builder of
``neuro.hardware.fpga.spikegpt_onnx``), so the comparison tests onnxruntime's integer operators
(MatMul, floor and truncating division, Gather, Max, Clip, ReduceSum) against numpy's. The
integer model is not exact against the float model: the exp, sigmoid and inverse square root
tables, the int8 (int16) weights and the ``2^-F`` rounding of every activation differ from float,
and a membrane near the threshold can then flip a spike. Measured (README, "SpikeGPT on the FPGA
target"; ``benchmarks/spikegpt_int_bpc.py``): the ``tiny`` preset trained 300 steps, 16 x 512
held-out Shakespeare tokens, float 3.0260 BPC, integer 3.0268 (int8) and 3.0256 (int16).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Protocol

import numpy as np

from . import lm_nodes as LM
from . import nodes as N
from .egru_int import table_shift
from .formats import NumberFormat, get_format
from .graph import Graph, GraphError

ACT_BITS = 24           #: activation register width (saturating)
F_MIN, F_MAX = 6, 14    #: range of the calibrated activation fraction bits
MIX_BITS = 12           #: token-shift mix and LIF input gain mantissas
RSQRT_K = 8             #: LayerNorm variance mantissa in [4^(K-1), 4^K)
RSQRT_BITS = 8          #: 2^RSQRT_BITS segments of the inverse square root table
RSQRT_FRAC = 14         #: fraction bits of the inverse square root
EXP_FRAC = 16           #: EF: fraction bits of the WKV exponentials and of ``b``
EXP_BITS = 10           #: 2^EXP_BITS segments of the exp table
EXP_RANGE_LOG2 = 4      #: exp table over [-16, 0]
WKV_G = 4               #: extra fraction bits of the WKV numerator state ``a``
WKV_SAT = (1 << 44) - 1  #: saturation of ``a`` and ``b``
P_FRESH = -(1 << 40)    #: ``p`` of the empty past
SIG_BITS, SIG_RANGE_LOG2 = 8, 3  #: the sigmoid table (egru_int's defaults: 256 segments, [-8, 8))
MULT_BITS = 15          #: Linear per-channel multipliers < 2^15

#: node kinds an integer SpikeGPT graph holds
KINDS = (N.Input, N.Output, N.Linear, N.LIF, LM.Embedding, LM.LayerNorm, LM.TokenShift, LM.WKV,
         LM.Gate, LM.SquaredReLU, LM.Add)
META = "spikegpt_int"


# -- tables ---------------------------------------------------------------------------------------
def exp_table() -> np.ndarray:
    """``N + 2`` knots of ``exp`` over ``[-X, 0]`` in EF fraction bits (the last repeated)."""
    n, x = 1 << EXP_BITS, float(1 << EXP_RANGE_LOG2)
    z = -x + np.arange(n + 1, dtype=np.float64) * (x / n)
    t = np.round(np.exp(z) * (1 << EXP_FRAC)).astype(np.int64)
    return np.concatenate([t, t[-1:]])


def rsqrt_table() -> np.ndarray:
    """``N + 1`` knots of ``2^RF / sqrt(m / 4^K)`` at ``m_k = 4^(K-1) + k 3 4^(K-1) / N``."""
    n = 1 << RSQRT_BITS
    lo, width = 4 ** (RSQRT_K - 1), 3 * 4 ** (RSQRT_K - 1)
    m = lo + np.arange(n + 1, dtype=np.float64) * (width / n)
    return np.round((1 << RSQRT_FRAC) / np.sqrt(m / 4 ** RSQRT_K)).astype(np.int64)


def sigmoid_table(F: int) -> np.ndarray:
    """``N + 1`` knots ``round(sigmoid(x_k) 2^F)`` over ``[-8, 8]`` (egru_int's layout)."""
    n, r = 1 << SIG_BITS, float(1 << SIG_RANGE_LOG2)
    x = -r + np.arange(n + 1, dtype=np.float64) * (2 * r / n)
    return np.round((1 << F) / (1 + np.exp(-x))).astype(np.int64)


# -- the operations the step is written in -------------------------------------------------------
class Ops(Protocol):
    """Integer tensor operations (numpy here, ONNX nodes in ``hardware.fpga.spikegpt_onnx``)."""

    def c(self, v: Any) -> Any: ...
    def add(self, a: Any, b: Any) -> Any: ...
    def sub(self, a: Any, b: Any) -> Any: ...
    def mul(self, a: Any, b: Any) -> Any: ...
    def maximum(self, a: Any, b: Any) -> Any: ...
    def clip(self, x: Any, lo: int, hi: int) -> Any: ...
    def floordiv(self, x: Any, d: Any) -> Any: ...
    def truncdiv(self, x: Any, d: Any) -> Any: ...
    def matmul(self, x: Any, w: np.ndarray) -> Any: ...
    def gather(self, table: np.ndarray, i: Any) -> Any: ...
    def ge(self, a: Any, b: Any) -> Any: ...
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def rowsum(self, x: Any) -> Any: ...
    def count_ge(self, x: Any, thresholds: np.ndarray) -> Any: ...
    def to_int(self, cond: Any) -> Any: ...


class NumpyOps:
    """:class:`Ops` on int64 numpy arrays: the integer reference executor."""

    def c(self, v: Any) -> np.ndarray:
        return np.asarray(v, np.int64)

    def add(self, a, b):
        return np.add(a, b)

    def sub(self, a, b):
        return np.subtract(a, b)

    def mul(self, a, b):
        return np.multiply(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def clip(self, x, lo, hi):
        return np.clip(x, lo, hi)

    def floordiv(self, x, d):
        return np.floor_divide(x, d)

    def truncdiv(self, x, d):
        q = np.abs(x) // np.abs(d)
        return np.where((np.asarray(x) < 0) != (np.asarray(d) < 0), -q, q)

    def matmul(self, x, w):
        return np.asarray(x, np.int64) @ np.asarray(w, np.int64)

    def gather(self, table, i):
        return np.asarray(table, np.int64)[i]

    def ge(self, a, b):
        return np.greater_equal(a, b)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def rowsum(self, x):
        return np.sum(x, axis=-1, keepdims=True)

    def count_ge(self, x, thresholds):
        return (np.asarray(x)[..., None] >= np.asarray(thresholds, np.int64)).sum(-1)

    def to_int(self, cond):
        return np.asarray(cond, np.int64)


def _rnd(o: Ops, x: Any, k: int) -> Any:
    """``(x + 2^(k-1)) >> k`` (round half up); ``x << -k`` for ``k <= 0``."""
    if k <= 0:
        return o.mul(x, o.c(1 << -k)) if k else x
    return o.floordiv(o.add(x, o.c(1 << (k - 1))), o.c(1 << k))


def _sat(o: Ops, x: Any) -> Any:
    return o.clip(x, -(1 << (ACT_BITS - 1)), (1 << (ACT_BITS - 1)) - 1)


def _shr_fmt(o: Ops, x: Any, k: int, rounding: str) -> Any:
    d = o.c(1 << k)
    return o.truncdiv(x, d) if rounding == "toward_zero" else o.floordiv(x, d)


def _lut(o: Ops, table: np.ndarray, u: Any, s: int) -> Any:
    """Linear interpolation in ``table`` at ``u >= 0`` with ``2^s`` units per segment."""
    i = o.floordiv(u, o.c(1 << s))
    f = o.sub(u, o.mul(i, o.c(1 << s)))
    lo = o.gather(table, i)
    hi = o.gather(table, o.add(i, o.c(1)))
    return o.add(lo, o.floordiv(o.mul(o.sub(hi, lo), f), o.c(1 << s)))


def _exp(o: Ops, z: Any, F: int, table: np.ndarray) -> Any:
    """``EXP(z)`` for ``z <= 0`` in F frac -> EF frac (module docstring)."""
    top = (1 << EXP_RANGE_LOG2) << F
    u = o.clip(o.add(z, o.c(top)), 0, top)
    return _lut(o, table, u, EXP_RANGE_LOG2 + F - EXP_BITS)


def _sigmoid(o: Ops, x: Any, F: int, table: np.ndarray) -> Any:
    half = (1 << SIG_RANGE_LOG2) << F
    u = o.clip(o.add(x, o.c(half)), 0, 2 * half - 1)
    return _lut(o, table, u, table_shift(SIG_RANGE_LOG2, F, SIG_BITS))


def _layer_norm(o: Ops, x: Any, w: Any, b: Any, eps: int, C: int, F: int,
                table: np.ndarray) -> Any:
    mu = o.floordiv(o.add(o.rowsum(x), o.c(C // 2)), o.c(C))
    d = o.sub(x, mu)
    var = o.add(o.floordiv(o.rowsum(o.mul(d, d)), o.c(C)), o.c(eps))
    e = o.count_ge(var, np.array([4 ** j for j in range(32)], np.int64))
    K = RSQRT_K
    mul_t = np.array([4 ** max(K - j, 0) for j in range(33)], np.int64)
    div_t = np.array([4 ** max(j - K, 0) for j in range(33)], np.int64)
    m = o.floordiv(o.mul(var, o.gather(mul_t, e)), o.gather(div_t, e))
    lo, step = 4 ** (K - 1), 3 * 4 ** (K - 1) >> RSQRT_BITS
    u = o.sub(m, o.c(lo))
    i = o.floordiv(u, o.c(step))
    f = o.sub(u, o.mul(i, o.c(step)))
    t0 = o.gather(table, i)
    r = o.add(t0, o.floordiv(o.mul(o.sub(o.gather(table, o.add(i, o.c(1))), t0), f), o.c(step)))
    pow_t = np.array([1 << max(RSQRT_FRAC + j - F, 0) for j in range(33)], np.int64)
    D = o.mul(o.gather(pow_t, e), o.c(C))
    dc = o.sub(o.mul(x, o.c(C)), o.rowsum(x))  # C (x - mean), exact
    yn = o.floordiv(o.add(o.mul(dc, r), o.floordiv(D, o.c(2))), D)
    return _sat(o, o.add(_rnd(o, o.mul(yn, w), F), b))


# -- quantization ---------------------------------------------------------------------------------
def is_spikegpt_graph(graph: Graph) -> bool:
    """Whether ``graph`` is a SpikeGPT-style graph: language-model operator nodes
    (``neuro.graph.lm_nodes``) beyond an ``Embedding``, and no EGRU population (an EGRU language
    model, Embedding + EGRU + decoder, has its own integer form: ``neuro.graph.egru_lm_int``)."""
    kinds = {type(n) for n in graph.nodes.values()}
    return (any(k in LM.LM_NODE_TYPES and k is not LM.Embedding for k in kinds)
            and not any(k.kind == "EGRU" for k in kinds))


def problems(graph: Graph, fmt: str | NumberFormat) -> list[str]:
    """Every reason ``graph`` has no integer SpikeGPT form in ``fmt`` (``[]``: it has)."""
    f = get_format(fmt)
    out: list[str] = []
    if f.family != "fixed" or f.frac_bits:
        out.append(f"format {f.name}: the integer SpikeGPT needs a pure-integer fixed format "
                   "(FPGA int8/int16)")
    meta_fmt = graph.metadata.get("format")
    if meta_fmt is not None and META not in graph.metadata:
        out.append(f"the graph is quantized to {meta_fmt.get('name')!r} without the integer "
                   "SpikeGPT registers")
    ins = graph.inputs()
    node: Any
    for n, node in graph.nodes.items():
        if type(node) not in KINDS:
            out.append(f"node {n!r} ({node.kind}): the integer SpikeGPT step holds "
                       f"{', '.join(sorted(k.kind for k in KINDS))} only")
        elif type(node) is N.LIF:
            if node.reset not in ("zero", "subtract") or node.refractory or \
                    node.reset_timing != "immediate" or np.any(node.v_leak) or np.any(node.v_reset):
                out.append(f"node {n!r} (LIF): the integer SpikeGPT LIF needs reset 'zero' or "
                           "'subtract', immediate, no refractory period, v_leak = v_reset = 0")
        elif type(node) is LM.LayerNorm and node.weight.size > 4096:
            out.append(f"node {n!r} (LayerNorm): {node.weight.size} channels, the integer "
                       "LayerNorm takes at most 4096 (int64 bounds)")
        elif type(node) is LM.Embedding and any(p not in ins for p in graph.predecessors(n)):
            out.append(f"node {n!r} (Embedding): reads a one-hot Input only")
    for n in ins:
        if any(type(graph.nodes[s]) is not LM.Embedding for s in graph.successors(n)):
            out.append(f"input {n!r}: the integer SpikeGPT feeds its one-hot tokens to "
                       "Embedding nodes only")
    return out


def activation_frac(max_abs: float) -> int:
    """The activation fraction bits ``F``: the largest in ``[F_MIN, F_MAX]`` with ``2 max_abs
    2^F < 2^(ACT_BITS - 1)``."""
    if not math.isfinite(max_abs):
        raise ValueError(f"calibration: activations are not finite ({max_abs})")
    f = ACT_BITS - 2 - max(0, math.ceil(math.log2(max(max_abs, 1.0))))
    return int(min(F_MAX, max(F_MIN, f)))


def _linear_int(name: str, w: np.ndarray, weight_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    w = np.asarray(w, np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"node {name!r} (Linear): field 'weight' holds NaN or infinite values")
    qmax = (1 << (weight_bits - 1)) - 1
    amax = np.abs(w).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    wq = np.round(w * (qmax / amax)[:, None]).astype(np.int64)
    scale = amax / qmax
    S = min(62, math.floor(math.log2(((1 << MULT_BITS) - 1) / float(scale.max()))))
    mult = np.round(scale * 2.0 ** S).astype(np.int64)
    while mult.max() >= (1 << MULT_BITS):
        S -= 1
        mult = np.round(scale * 2.0 ** S).astype(np.int64)
    return wq, mult, S


def _rq(v: Any, F: int) -> np.ndarray:
    return np.clip(np.round(np.asarray(v, np.float64) * 2.0 ** F), -(1 << (ACT_BITS - 1)),
                   (1 << (ACT_BITS - 1)) - 1).astype(np.int64)


def quantize_spikegpt(graph: Graph, fmt: str | NumberFormat = "int8",
                      calibration_inputs: Any = None, *, frac_bits: int | None = None) -> Graph:
    """An integer copy of the float SpikeGPT ``graph`` in FPGA format ``fmt`` (module docstring).

    ``calibration_inputs``: one-hot tokens ``[T, (B,) V]`` run through the float graph to choose
    the activation fraction bits (:func:`activation_frac`); without them (and without
    ``frac_bits``) ``F = 12``. ``ValueError`` names the node and field that has no integer form.
    """
    from .quantize import decay_code
    from .simulate import simulate

    f = get_format(fmt)
    graph.validate()
    if "format" in graph.metadata:
        raise GraphError(f"the graph is already quantized (format {graph.metadata['format'].get('name')!r})")
    bad = problems(graph, f)
    if bad:
        raise ValueError(bad[0])
    if frac_bits is None:
        if calibration_inputs is not None:
            rec = simulate(graph, calibration_inputs, record=True)
            top = max((float(v.abs().max()) for k, v in rec.items()
                       if k in graph.nodes and type(graph.nodes[k]) not in (N.Input, N.LIF)),
                      default=1.0)
            frac_bits = activation_frac(top)
        else:
            frac_bits = 12
    F = int(frac_bits)
    if not F_MIN <= F <= F_MAX:
        raise ValueError(f"frac_bits must lie in [{F_MIN}, {F_MAX}], got {F}")
    g = copy.deepcopy(graph)
    linear: dict[str, Any] = {}
    meta: dict[str, Any] = {"frac_bits": F, "act_bits": ACT_BITS, "linear": linear, "eps": {}}
    node: Any
    for n, node in g.nodes.items():
        kind = type(node)
        if kind is N.Linear:
            wq, mult, S = _linear_int(n, node.weight, f.weight_bits)
            node.weight = wq
            linear[n] = {"mult": mult.tolist(), "shift": int(S)}
        elif kind is LM.Embedding:
            E = np.asarray(node.weight, np.float64)
            node.weight = ((E >= 0).astype(np.int64) << F) if node.binary else _rq(E, F)
        elif kind is LM.LayerNorm:
            node.weight, node.bias = _rq(node.weight, F), _rq(node.bias, F)
            meta["eps"][n] = max(1, round(node.eps * 4.0 ** F))
        elif kind is LM.TokenShift:
            mix = np.asarray(node.mix, np.float64)
            if not (np.isfinite(mix).all() and np.abs(mix).max(initial=0) < 1 << 10):
                raise ValueError(f"node {n!r} (TokenShift): field 'mix' must be finite and below "
                                 "2^10 in magnitude")
            node.mix = np.round(mix * (1 << MIX_BITS)).astype(np.int64)
        elif kind is LM.WKV:
            node.time_decay = _rq(-np.exp(np.asarray(node.time_decay, np.float64)), F)
            node.time_first = _rq(node.time_first, F)
        elif kind is N.LIF:
            beta = np.asarray(node.beta, np.float64)
            gain = (1.0 - beta) if node.decay_input else np.ones_like(beta)
            node.q = {"scale": float(1 << F), "vth": _rq(node.threshold, F).tolist(), "frac_bits": F,
                      "gain_m": np.round(gain * (1 << MIX_BITS)).astype(np.int64).tolist(),
                      **decay_code(f, beta, n, "beta")}
    for node in g.nodes.values():  # integers held in float32 (exact below 2^24), as a saved
        for fld in ("weight", "bias", "mix", "time_decay", "time_first"):  # graph loads them
            v = getattr(node, fld, None)
            if type(node) in KINDS[2:] and isinstance(v, np.ndarray) and v.dtype != np.float32:
                setattr(node, fld, v.astype(np.float32))
    g.metadata = {**g.metadata, "format": f.to_dict(), META: meta}
    return g


# -- the step -------------------------------------------------------------------------------------
class Regs:
    """The integer registers of a quantized SpikeGPT graph, read once."""

    def __init__(self, graph: Graph) -> None:
        if META not in graph.metadata or "format" not in graph.metadata:
            raise GraphError("not an integer SpikeGPT graph (run quantize_spikegpt first)")
        self.graph = graph
        self.fmt = NumberFormat.from_dict(graph.metadata["format"])
        self.meta = graph.metadata[META]
        self.F = int(self.meta["frac_bits"])
        self.order = [n for n in graph.schedule().order]
        self.shapes = graph.infer_shapes()
        self.exp = exp_table()
        self.rsqrt = rsqrt_table()
        self.sig = sigmoid_table(self.F)

    def int_field(self, name: str, field: str) -> np.ndarray:
        return np.rint(np.asarray(getattr(self.graph.nodes[name], field), np.float64)).astype(np.int64)

    def state_names(self) -> list[tuple[str, str, int]]:
        """``(node, register, channels)`` of every state register, in a fixed order."""
        out = []
        for n in self.order:
            kind, C = type(self.graph.nodes[n]), int(np.prod(self.shapes[n]))
            if kind is LM.TokenShift:
                out.append((n, "prev", C))
            elif kind is LM.WKV:
                out += [(n, r, C) for r in ("a", "b", "p")]
            elif kind is N.LIF:
                out.append((n, "v", C))
        return out

    def init_state(self, batch: int) -> dict[str, np.ndarray]:
        return {f"{n}/{r}": np.full((batch, C), P_FRESH if r == "p" else 0, np.int64)
                for n, r, C in self.state_names()}


def step(o: Ops, R: Regs, x: dict[str, Any], state: dict[str, Any]
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One token: every node's integer value and the next state (module docstring).

    ``x``: ``{input: [B, V]}`` one-hot tokens; ``state``: ``{"<node>/<register>": [B, C]}``."""
    g, F, fmt = R.graph, R.F, R.fmt
    val: dict[str, Any] = dict(x)
    frac: dict[str, int] = {n: 0 for n in x}
    nxt: dict[str, Any] = {}
    node: Any
    for n in R.order:
        node = g.nodes[n]
        kind = type(node)
        if kind is N.Input:
            continue
        srcs = g.predecessors(n)

        def act(s: str) -> Any:
            return val[s] if frac[s] == F else o.mul(val[s], o.c(1 << (F - frac[s])))

        frac[n] = F
        if kind is LM.Embedding:
            y = o.matmul(val[srcs[0]], R.int_field(n, "weight"))
        elif kind is N.Linear:
            lin = R.meta["linear"][n]
            if len(srcs) == 1:  # spikes (frac 0) or activations (F) straight into the MACs
                xin, fr = val[srcs[0]], frac[srcs[0]]
            else:  # a sum of inputs: in the activation format
                xin, fr = _sat(o, _sum(o, [act(s) for s in srcs])), F
            acc = o.matmul(xin, R.int_field(n, "weight").T)
            y = _sat(o, _rnd(o, o.mul(acc, o.c(lin["mult"])), int(lin["shift"]) + fr - F))
        elif kind is LM.LayerNorm:
            C = int(R.shapes[n][0])
            y = _layer_norm(o, act(srcs[0]), o.c(R.int_field(n, "weight")),
                            o.c(R.int_field(n, "bias")), int(R.meta["eps"][n]), C, F, R.rsqrt)
        elif kind is LM.TokenShift:
            xin = act(srcs[0])
            mix = R.int_field(n, "mix")
            y = _rnd(o, o.add(o.mul(xin, o.c(mix)), o.mul(state[f"{n}/prev"],
                                                          o.c((1 << MIX_BITS) - mix))), MIX_BITS)
            nxt[f"{n}/prev"] = xin
        elif kind is LM.WKV:
            y = _wkv(o, R, n, act(srcs[0]), act(srcs[1]), state, nxt)
        elif kind is LM.Gate:
            s = _sigmoid(o, act(srcs[0]), F, R.sig)
            y = _rnd(o, o.mul(s, act(srcs[1])), F)
        elif kind is LM.SquaredReLU:
            r = o.maximum(act(srcs[0]), o.c(0))
            y = _sat(o, _rnd(o, o.mul(r, r), F))
        elif kind is LM.Add:
            y = act(srcs[0])
            for s in srcs[1:]:
                y = o.add(y, act(s))
            y = _sat(o, y)
        elif kind is N.LIF:
            y = _lif(o, node, fmt, act(srcs[0]) if len(srcs) == 1 else
                     _sat(o, _sum(o, [act(s) for s in srcs])), state[f"{n}/v"], nxt, n)
            frac[n] = 0
        elif kind is N.Output:
            y, frac[n] = val[srcs[0]], frac[srcs[0]]
        else:  # problems() refuses these before
            raise GraphError(f"node {n!r} ({node.kind}): no integer SpikeGPT form")
        val[n] = y
    return val, nxt


def _sum(o: Ops, xs: list[Any]) -> Any:
    y = xs[0]
    for x in xs[1:]:
        y = o.add(y, x)
    return y


def _lif(o: Ops, node: Any, fmt: NumberFormat, x: Any, v: Any, nxt: dict[str, Any], n: str) -> Any:
    q = node.q
    xg = _shr_fmt(o, o.mul(x, o.c(np.asarray(q["gain_m"], np.int64))), MIX_BITS, fmt.rounding)
    if fmt.decay == "mantissa":
        dv = _shr_fmt(o, o.mul(v, o.c(np.asarray(q["beta_m"], np.int64))), fmt.decay_bits,
                      fmt.rounding)
    else:
        k = np.atleast_1d(np.asarray(q["beta_shift"], np.int64))
        if not (k == k[0]).all():
            raise GraphError(f"node {n!r} (LIF): per-neuron leak shifts are not implemented "
                             "in the integer SpikeGPT")
        dv = v if int(k[0]) == 0 else o.sub(v, _shr_fmt(o, v, int(k[0]), fmt.rounding))
    vv = _sat(o, o.add(dv, xg))
    vth = o.c(np.asarray(q["vth"], np.int64))
    s = o.ge(vv, vth)
    after = o.c(0) if node.reset == "zero" else o.sub(vv, vth)
    nxt[f"{n}/v"] = o.where(s, after, vv)
    return o.to_int(s)


def _wkv(o: Ops, R: Regs, n: str, k: Any, v: Any, state: dict[str, Any],
         nxt: dict[str, Any]) -> Any:
    F = R.F
    w = o.c(R.int_field(n, "time_decay"))
    u = o.c(R.int_field(n, "time_first"))
    a, b, p = state[f"{n}/a"], state[f"{n}/b"], state[f"{n}/p"]
    one_e = o.c(1 << EXP_FRAC)
    vg = o.mul(v, o.c(1 << WKV_G))
    ww = o.add(u, k)
    q = o.maximum(p, ww)
    e1, e2 = _exp(o, o.sub(p, q), F, R.exp), _exp(o, o.sub(ww, q), F, R.exp)
    num = o.add(o.mul(e1, a), o.mul(e2, vg))
    den = o.floordiv(o.add(o.mul(e1, b), o.mul(e2, one_e)), o.c(1 << (EXP_FRAC - WKV_G)))
    y = _sat(o, o.floordiv(o.add(o.mul(num, o.c(2)), den), o.mul(den, o.c(2))))
    ww2 = o.add(w, p)
    q2 = o.maximum(ww2, k)
    e1, e2 = _exp(o, o.sub(ww2, q2), F, R.exp), _exp(o, o.sub(k, q2), F, R.exp)
    nxt[f"{n}/a"] = o.clip(_rnd(o, o.add(o.mul(e1, a), o.mul(e2, vg)), EXP_FRAC), -WKV_SAT, WKV_SAT)
    nxt[f"{n}/b"] = o.clip(_rnd(o, o.add(o.mul(e1, b), o.mul(e2, one_e)), EXP_FRAC), -WKV_SAT,
                           WKV_SAT)
    nxt[f"{n}/p"] = q2
    return y


# -- the reference executor -----------------------------------------------------------------------
def check_one_hot(name: str, x: np.ndarray) -> None:
    ok = bool(((x == 0) | (x == 1)).all()) and bool((x.sum(-1) == 1).all())
    if not ok:
        raise ValueError(f"input {name!r}: the integer SpikeGPT takes one-hot tokens (one 1 per "
                         "step and sample, zeros elsewhere)")


def simulate_spikegpt_int(graph: Graph, inputs: dict[str, np.ndarray], *, record: bool = False,
                          record_membranes: bool = False) -> dict[str, np.ndarray]:
    """Run a quantized SpikeGPT graph token by token on one-hot ``{input: [T, B, V]}``; every
    node's int64 values ``[T, B, C]`` (``record``) or the outputs'. LIF nodes give spikes 0/1,
    the rest integers with ``frac_bits`` fraction bits (logits at the Output);
    ``record_membranes`` adds ``"<lif>.v"``, the membrane after reset (``frac_bits``)."""
    R = Regs(graph)
    xs = {k: np.asarray(v, np.int64) for k, v in inputs.items()}
    for k, v in xs.items():
        check_one_hot(k, v)
    T, B = next(iter(xs.values())).shape[:2]
    o = NumpyOps()
    state: dict[str, Any] = R.init_state(B)
    names = [n for n in R.order if n in graph.outputs()] if not record else \
        [n for n in R.order if type(graph.nodes[n]) is not N.Input]
    out = {n: np.empty((T, B, *R.shapes[n]), np.int64) for n in names}
    lifs = [n for n in R.order if type(graph.nodes[n]) is N.LIF] if record_membranes else []
    mem = {n: np.empty((T, B, *R.shapes[n]), np.int64) for n in lifs}
    for t in range(T):
        val, state = step(o, R, {k: v[t] for k, v in xs.items()}, state)
        for n in names:
            out[n][t] = val[n]
        for n in lifs:
            mem[n][t] = state[f"{n}/v"]
    out.update({f"{n}.v": v for n, v in mem.items()})
    if record:
        out.update(xs)
    return out


__all__ = ["ACT_BITS", "KINDS", "NumpyOps", "Ops", "Regs", "activation_frac", "exp_table",
           "is_spikegpt_graph", "problems", "quantize_spikegpt", "rsqrt_table", "sigmoid_table",
           "simulate_spikegpt_int", "step"]
