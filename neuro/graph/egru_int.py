"""The integer EGRU: its registers, gate tables and one fixed-point step.

A number format with ``F = frac_bits`` fraction bits (``spinnaker``: s16.15, ``F = 15``; a
pure-integer format uses its ``egru_frac_bits``: FPGA ``int16`` has ``F = 12``) holds an EGRU population (``neuro.graph.nodes.EGRU``; float equations in ``neuro.neurons.egru``) as
integers; a real value ``v`` is the integer ``round(v 2^F)``, ``ONE = 2^F``.

Registers (set by :func:`quantize_egru`, kept in the node's fields and ``node.q``):

* ``kernel`` ``Wq [in, 3H]`` and ``recurrent_kernel`` ``Rq [H, 3H]``: signed ``weight_bits``-bit
  mantissas, ``Wq = round(W 2^kf)``, ``Rq = round(R 2^rf)``; ``kf = q["kernel_frac"]`` and
  ``rf = q["recurrent_frac"]`` are the largest fraction widths (0..30) at which the largest weight
  of the matrix fits (one per matrix: a per-population weight shift, as SpiNNaker's);
* ``bias``, ``recurrent_bias`` ``[3H]``: ``round(b 2^F)``; ``q["vth"] [H]``: ``round(theta 2^F)``;
* ``q["in_frac"]``: fraction bits of the integer input values (0: spikes or counts from an
  ``Input``; ``F``: the graded events ``y`` of another EGRU, or s16.15 real values such as an
  embedding, see ``neuro.graph.quantize``);
* gate tables (format data: ``gate_table_bits``, ``sigmoid_range_log2``, ``tanh_range_log2``):
  ``q["sigmoid_table"]`` and ``q["tanh_table"]``, ``N + 1`` entries ``round(f(x_k) 2^F)`` at the
  knots ``x_k = -X + k 2X / N`` (``N = 2^gate_table_bits``, ``X = 2^range_log2``). A gate is the
  table read with linear interpolation between knots (:func:`lut`)::

      u = clip(x + X ONE, 0, 2 X ONE - 1) ;  s = range_log2 + 1 + F - gate_table_bits
      i = u >> s ;  f = u & (2^s - 1)
      lut(T, x) = T[i] + ((T[i + 1] - T[i]) f >> s)

  Inputs beyond ``[-X, X)`` read the end of the table. The error against the float functions is
  measured in ``tests/neuro/graph/test_egru_int.py``: with the ``spinnaker`` defaults
  (256 segments, sigmoid over [-8, 8), tanh over [-4, 4)) the largest error over the whole real
  line is ``3.7e-4`` (sigmoid) and ``7.0e-4`` (tanh), set by the clamped tails
  (``1 - sigmoid(8) = 3.4e-4``, ``1 - tanh(4) = 6.7e-4``); inside the ranges interpolation and
  rounding give at most ``8.1e-5`` and ``1.3e-4``.

One step (``>>`` is an arithmetic shift, i.e. floor, in every format; a negative shift count is an exact left
shift; ``sat`` clips to the ``state_bits`` register; products are exact in 64 bits)::

    ax = sat((x[t] . Wq) >> (kf + in_frac - F)) + bx           [3H]   gate inputs of the input
    bh = sat((y[t-1] . Rq) >> rf) + br                          [3H]   and of the recurrence
    z  = lut(S, sat(ax_z + bh_z)) ;  r = lut(S, sat(ax_r + bh_r))
    g  = lut(Tn, sat(ax_n + ((r bh_n) >> F)))
    u  = (z c[t-1] + (ONE - z) g) >> F                          pre-reset state
    o  = u > vth ;  y[t] = o u ;  c[t] = u - o vth              graded event, reset by subtraction

The sums ``x . Wq`` and ``y . Rq`` are exact integers accumulated before the one shift, so their
order does not matter: an event-driven machine that adds ``payload x weight`` per packet gets the
same bits as a dense matmul. Since ``u > vth >= 0`` at an event, ``y != 0`` exactly where ``o = 1``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .formats import NumberFormat

#: the integer registers of an EGRU node's ``q`` (besides the integer node fields)
Q_KEYS = ("kernel_frac", "recurrent_frac", "in_frac", "vth", "frac_bits", "state_bits",
          "gate_table_bits", "sigmoid_range_log2", "tanh_range_log2", "sigmoid_table", "tanh_table")
#: the largest fraction width a weight matrix may get
MAX_WEIGHT_FRAC = 30


def gate_table(fn: str, fmt: NumberFormat) -> np.ndarray:
    """The ``N + 1`` knots of ``"sigmoid"`` or ``"tanh"`` in format ``fmt`` (module docstring),
    with its EGRU fraction bits (``frac_bits``, else ``egru_frac_bits``)."""
    F = fmt.frac_bits or fmt.egru_frac_bits
    r = fmt.sigmoid_range_log2 if fn == "sigmoid" else fmt.tanh_range_log2
    n = 1 << fmt.gate_table_bits
    x = -float(1 << r) + np.arange(n + 1, dtype=np.float64) * (2.0 * (1 << r) / n)
    y = 1.0 / (1.0 + np.exp(-x)) if fn == "sigmoid" else np.tanh(x)
    return np.round(y * (1 << F)).astype(np.int64)


def table_shift(range_log2: int, frac_bits: int, table_bits: int) -> int:
    """``s``: fixed-point units per table segment are ``2^s``."""
    return range_log2 + 1 + frac_bits - table_bits


def lut(table: np.ndarray, x: np.ndarray, range_log2: int, frac_bits: int,
        table_bits: int) -> np.ndarray:
    """The gate ``table`` at integer inputs ``x`` with linear interpolation (module docstring)."""
    s = table_shift(range_log2, frac_bits, table_bits)
    half = (1 << range_log2) << frac_bits
    u = np.clip(x + half, 0, 2 * half - 1)
    i = u >> s
    f = u & ((1 << s) - 1)
    lo = table[i]
    return lo + (((table[i + 1] - lo) * f) >> s)


def shr(x: np.ndarray, k: int) -> np.ndarray:
    """``x >> k`` (floor) for ``k >= 0``, the exact ``x << -k`` otherwise."""
    return x >> k if k >= 0 else x << -k


class Cell:
    """One EGRU population's integer step (module docstring), from a quantized node's fields."""

    def __init__(self, name: str, node: Any) -> None:
        q = node.q
        if q is None or any(k not in q for k in Q_KEYS):
            raise ValueError(f"node {name!r} (EGRU): no integer registers (field 'q'); run "
                             "neuro.graph.quantize first")
        for f in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            if not np.issubdtype(np.asarray(getattr(node, f)).dtype, np.integer):
                raise ValueError(f"node {name!r} (EGRU): field {f!r} is not integer; run "
                                 "neuro.graph.quantize first")
        self.name = name
        self.H = int(node.recurrent_kernel.shape[0])
        self.F = int(q["frac_bits"])
        self.one = 1 << self.F
        self.lo, self.hi = -(1 << (int(q["state_bits"]) - 1)), (1 << (int(q["state_bits"]) - 1)) - 1
        self.shift_x = int(q["kernel_frac"]) + int(q["in_frac"]) - self.F
        self.shift_h = int(q["recurrent_frac"])
        self.bx = np.asarray(node.bias, np.int64)
        self.bh = np.asarray(node.recurrent_bias, np.int64)
        self.vth = np.asarray(q["vth"], np.int64)
        self.tb = int(q["gate_table_bits"])
        self.rs, self.rt = int(q["sigmoid_range_log2"]), int(q["tanh_range_log2"])
        self.sig = np.asarray(q["sigmoid_table"], np.int64)
        self.tanh = np.asarray(q["tanh_table"], np.int64)

    def sat(self, v: np.ndarray) -> np.ndarray:
        return np.clip(v, self.lo, self.hi)

    def gates_x(self, acc_x: np.ndarray) -> np.ndarray:
        """``ax [..., 3H]`` from the exact input sums ``x . Wq``."""
        return self.sat(shr(acc_x, self.shift_x)) + self.bx

    def gates_h(self, acc_h: np.ndarray) -> np.ndarray:
        """``bh [..., 3H]`` from the exact recurrent sums ``y[t-1] . Rq``."""
        return self.sat(shr(acc_h, self.shift_h)) + self.bh

    def step(self, ax: np.ndarray, bh: np.ndarray, c: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """``(y[t], c[t])`` from the gate inputs ``ax``, ``bh`` ``[..., 3H]`` and ``c[t-1] [..., H]``."""
        H, F = self.H, self.F
        z = lut(self.sig, self.sat(ax[..., :H] + bh[..., :H]), self.rs, F, self.tb)
        r = lut(self.sig, self.sat(ax[..., H:2 * H] + bh[..., H:2 * H]), self.rs, F, self.tb)
        g = lut(self.tanh, self.sat(ax[..., 2 * H:] + ((r * bh[..., 2 * H:]) >> F)), self.rt, F,
                self.tb)
        u = self.sat((z * c + (self.one - z) * g) >> F)
        o = u > self.vth
        return np.where(o, u, 0), np.where(o, u - self.vth, u)


def weight_frac(w: np.ndarray, fmt: NumberFormat, name: str, field: str, kind: str = "EGRU") -> int:
    """The largest fraction width (``<= MAX_WEIGHT_FRAC``) at which ``round(w 2^f)`` fits the
    format's signed weights; ``ValueError`` naming the node (of ``kind``) and field when none does."""
    wmax = float(np.abs(w).max(initial=0.0))
    if wmax == 0.0:
        return fmt.frac_bits
    f = min(MAX_WEIGHT_FRAC, math.floor(math.log2(fmt.weight_max / wmax)))
    while f >= 0 and np.abs(np.round(w.astype(np.float64) * 2.0 ** f)).max() > fmt.weight_max:
        f -= 1
    if f < 0:
        raise ValueError(f"node {name!r} ({kind}): field {field!r} holds {wmax:.4g}, beyond the "
                         f"{fmt.weight_bits}-bit weights of format {fmt.name}")
    return f


def quantize_egru(name: str, node: Any, fmt: NumberFormat, in_frac: int) -> None:
    """Replace ``node``'s weights and biases by their integers and set ``node.q`` (in place)."""
    F = fmt.frac_bits or fmt.egru_frac_bits
    if fmt.family != "fixed" or F == 0:
        raise ValueError(f"node {name!r} (EGRU): no integer form in format {fmt.name} (the integer "
                         "EGRU needs a fixed-point state with fraction bits: 'spinnaker' s16.15, "
                         "FPGA 'int16' with 12)")
    if table_shift(min(fmt.sigmoid_range_log2, fmt.tanh_range_log2), F, fmt.gate_table_bits) < 0:
        raise ValueError(f"format {fmt.name}: gate_table_bits {fmt.gate_table_bits} is finer than "
                         f"the {F} fraction bits over the gate ranges")
    kf = weight_frac(np.asarray(node.kernel), fmt, name, "kernel")
    rf = weight_frac(np.asarray(node.recurrent_kernel), fmt, name, "recurrent_kernel")
    if kf + in_frac - F > 62:
        raise ValueError(f"node {name!r} (EGRU): input shift {kf + in_frac - F} beyond 62 bits")
    theta = np.clip(np.asarray(node.threshold, np.float64), 0.0, 1.0)
    smax = fmt.state_max
    for f in ("bias", "recurrent_bias"):
        b = np.round(np.asarray(getattr(node, f), np.float64) * (1 << F))
        if np.abs(b).max(initial=0) > smax:
            raise ValueError(f"node {name!r} (EGRU): field {f!r} overflows the {fmt.state_bits}-bit state")
        setattr(node, f, b.astype(np.int64))
    node.kernel = np.round(np.asarray(node.kernel, np.float64) * 2.0 ** kf).astype(np.int32)
    node.recurrent_kernel = np.round(np.asarray(node.recurrent_kernel, np.float64) * 2.0 ** rf
                                     ).astype(np.int32)
    node.q = {"scale": float(1 << F), "kernel_frac": kf, "recurrent_frac": rf, "in_frac": int(in_frac),
              "vth": np.round(theta * (1 << F)).astype(np.int64).tolist(), "frac_bits": F,
              "state_bits": fmt.state_bits, "gate_table_bits": fmt.gate_table_bits,
              "sigmoid_range_log2": fmt.sigmoid_range_log2, "tanh_range_log2": fmt.tanh_range_log2,
              "sigmoid_table": gate_table("sigmoid", fmt).tolist(),
              "tanh_table": gate_table("tanh", fmt).tolist()}


__all__ = ["Cell", "Q_KEYS", "gate_table", "lut", "quantize_egru", "shr", "table_shift",
           "weight_frac"]
