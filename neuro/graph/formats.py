"""Number formats as data: how a target stores weights and state and how it does arithmetic.

Two arithmetic families share the same graph:

``"loihi"`` (Loihi 2 via Lava's bit-accurate ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``):
    current-based neuron with 24-bit ``u`` (current) and ``v`` (voltage), per step::

        a   = (sum_i w_i s_i) << weight_exp            (>> for a negative exponent; Dense)
        u   = sign(u (4096 - (du + 1))) (|u (4096 - (du + 1))| >> 12) + (a << 6)   wrap to 24 bit
        v   = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + u + (bias_mant << bias_exp)
        v   = clip(v, -(2^23 - 1), 2^23 - 1)
        s   = v > (vth << 6) ;  v = 0 where s

    Weights are 8-bit: clipped to [-256, 255] (mixed sign) or [0, 255], then the LSB is dropped
    when signs are mixed. ``du = 4095`` gives a current without memory (a plain LIF).

``"fixed"`` (SpiNNaker s16.15, FPGA int8/int16): one membrane register of ``state_bits``
    (current-based neurons add a current register), per step::

        x = sum_i w_i s_i (<< weight_exp) + bias          (integer, in state units)
        i = decay(i, alpha) + x                           (CubaLIF only; else i = x)
        v = overflow(decay(v, beta) + i)
        s = v >= vth  (or v > vth) ;  v = 0 or v - vth where s

    An EGRU population (fixed formats with fraction bits only) reads its gates from tables of
    ``2^gate_table_bits`` segments over ``[-2^sigmoid_range_log2, 2^sigmoid_range_log2)`` (sigmoid)
    and ``[-2^tanh_range_log2, ...)`` (tanh), interpolated linearly (``neuro.graph.egru_int``), with
    ``frac_bits`` fraction bits, or ``egru_frac_bits`` in a pure-integer format (FPGA ``int16``: 12).

    ``decay`` is either ``"mantissa"`` (``(v * m) >> decay_bits``, ``m = round(beta 2^decay_bits)``)
    or ``"shift"`` (``v - (v >> k)``, ``beta ~ 1 - 2^-k``); ``rounding`` says how the right shift
    rounds (``"floor"``: arithmetic shift; ``"toward_zero"``: on the magnitude, as Lava and an ONNX
    integer ``Div`` do); ``overflow`` is ``"saturate"`` or ``"wrap"`` to ``state_bits``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

FAMILIES = ("loihi", "fixed")
DECAYS = ("loihi12", "mantissa", "shift")
ROUNDINGS = ("toward_zero", "floor")
OVERFLOWS = ("wrap", "saturate")
SPIKE_RULES = ("gt", "ge")


@dataclass(frozen=True)
class NumberFormat:
    """A target's integer arithmetic (see the module docstring)."""

    name: str
    family: str
    weight_bits: int                 # signed weight width (Loihi: 8-bit register, mixed sign)
    weight_exp_range: tuple[int, int]  # allowed per-layer weight exponents
    state_bits: int                  # membrane (and current) register width
    frac_bits: int                   # fraction bits of the state (s16.15: 15); 0 for pure integers
    decay: str                       # "loihi12" | "mantissa" | "shift"
    decay_bits: int                  # 12 for Loihi's du/dv and the 12-bit-mantissa FPGA leak
    rounding: str                    # "toward_zero" | "floor"
    overflow: str                    # "wrap" | "saturate"
    spike_rule: str                  # "gt": v > vth ; "ge": v >= vth
    resets: tuple[str, ...]          # reset modes the target implements
    input_shift: int = 0             # Loihi: synaptic input << 6 into u
    threshold_shift: int = 0         # Loihi: vth << 6
    threshold_bits: int = 0          # Loihi: 17-bit unsigned vth; 0 = state_bits
    max_delay: int = 0               # longest per-synapse delay in steps (0: no limit in the format)
    update_order: tuple[str, ...] = ("synapse", "current", "voltage", "spike", "reset")
    gate_table_bits: int = 8         # EGRU gates: 2^bits table segments (neuro.graph.egru_int)
    sigmoid_range_log2: int = 3      # sigmoid table over [-2^r, 2^r) (8: [-8, 8))
    tanh_range_log2: int = 2         # tanh table over [-2^r, 2^r) (4: [-4, 4))
    egru_frac_bits: int = 0          # EGRU fraction bits where frac_bits is 0 (0: no EGRU form)

    def __post_init__(self) -> None:
        checks = [("family", self.family, FAMILIES), ("decay", self.decay, DECAYS),
                  ("rounding", self.rounding, ROUNDINGS), ("overflow", self.overflow, OVERFLOWS),
                  ("spike_rule", self.spike_rule, SPIKE_RULES)]
        for field, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"NumberFormat {self.name!r}: {field} must be one of {allowed}, got {value!r}")
        if not 2 <= self.weight_bits <= 32 or not 4 <= self.state_bits <= 63:
            raise ValueError(f"NumberFormat {self.name!r}: weight_bits/state_bits out of range")
        if not 1 <= self.gate_table_bits <= 16 or not 0 <= self.sigmoid_range_log2 <= 8 \
                or not 0 <= self.tanh_range_log2 <= 8:
            raise ValueError(f"NumberFormat {self.name!r}: gate_table_bits must lie in [1, 16] and "
                             "the gate ranges' log2 in [0, 8]")

    # -- integer limits -------------------------------------------------------------------------
    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def weight_min(self) -> int:
        return -(1 << (self.weight_bits - 1))

    @property
    def state_max(self) -> int:
        return (1 << (self.state_bits - 1)) - 1

    @property
    def threshold_max(self) -> int:
        if self.threshold_bits:
            return (1 << self.threshold_bits) - 1
        return self.state_max

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumberFormat:
        d = dict(d)
        for k in ("weight_exp_range", "resets", "update_order"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


LOIHI2 = NumberFormat(
    name="loihi2", family="loihi", weight_bits=9, weight_exp_range=(-8, 7), state_bits=24,
    frac_bits=0, decay="loihi12", decay_bits=12, rounding="toward_zero", overflow="wrap",
    spike_rule="gt", resets=("zero",), input_shift=6, threshold_shift=6, threshold_bits=17,
    max_delay=62,
    update_order=("synapse", "current", "voltage", "spike", "reset"),
)
"""Loihi 2 / Lava bit-accurate: 8-bit weight register read as signed 9-bit range [-256, 255]
(mixed-sign weights keep only even values), 24-bit u and v, 12-bit decays, zero reset; per-synapse
delays up to 62 steps (Lava DelayDense). SpiNNaker has 16 native delay slots and reaches longer
delays through a delay-extension stage (the backend's business, so no limit in its format)."""

SPINNAKER = NumberFormat(
    name="spinnaker", family="fixed", weight_bits=16, weight_exp_range=(0, 15), state_bits=32,
    frac_bits=15, decay="mantissa", decay_bits=15, rounding="floor", overflow="saturate",
    spike_rule="ge", resets=("zero", "subtract"),
)
"""SpiNNaker: s16.15 ``accum`` state (32 bits, saturating), 16-bit synaptic weights with a
per-population left shift, decays ``exp(-dt/tau)`` as 15-bit fractions."""


def fpga(weight_bits: int = 8, *, leak: str = "shift", state_bits: int | None = None,
         rounding: str = "toward_zero", overflow: str = "saturate") -> NumberFormat:
    """Configurable FPGA format: ``int8``/``int16`` weights, ``leak`` ``"shift"`` or ``"mantissa"``
    (12-bit), state ``2 x weight_bits`` wide unless given.
    With a 32-bit state an EGRU population has an integer form with 12 fraction bits (s19.12):
    ``int16``, and ``int8-s32`` (8-bit weights for the EGRU, the same state); a 16-bit state has
    no room for them."""
    if leak not in ("shift", "mantissa"):
        raise ValueError(f"fpga leak must be 'shift' or 'mantissa', got {leak!r}")
    sb = 2 * weight_bits if state_bits is None else state_bits
    return NumberFormat(
        name=f"int{weight_bits}" + ("" if leak == "shift" else "-m12"), family="fixed",
        weight_bits=weight_bits, weight_exp_range=(0, 0), state_bits=sb,
        frac_bits=0, decay=leak, decay_bits=12, rounding=rounding, overflow=overflow,
        spike_rule="ge", resets=("zero", "subtract"),
        egru_frac_bits=12 if sb >= 32 else 0,
    )


INT8 = fpga(8)
INT16 = fpga(16)
INT8_S32 = replace(fpga(8, state_bits=32), name="int8-s32")
"""8-bit weights, 32-bit state: the FPGA format of an EGRU with 8-bit weights (12 fraction
bits); for spiking layers a wider state than ``int8``'s."""

FORMATS: dict[str, NumberFormat] = {f.name: f for f in (LOIHI2, SPINNAKER, INT8, INT16,
                                                         fpga(8, leak="mantissa"),
                                                         fpga(16, leak="mantissa"), INT8_S32)}


def get_format(fmt: str | NumberFormat) -> NumberFormat:
    """A format by name (``loihi2``, ``spinnaker``, ``int8``, ``int16``, ``int8-m12``, ...)."""
    if isinstance(fmt, NumberFormat):
        return fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown number format {fmt!r}; known: {sorted(FORMATS)}")
    return FORMATS[fmt]


__all__ = ["FORMATS", "INT8", "INT8_S32", "INT16", "LOIHI2", "NumberFormat", "SPINNAKER", "fpga",
           "get_format"]
