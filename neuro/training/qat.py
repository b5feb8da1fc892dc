"""Quantization-aware training (QAT) for the integer number formats (FPGA ``int8``/``int16``).

``prepare_qat(model, fmt)`` makes a trained float model (its BatchNorm running statistics in
place) compute, in its forward pass, exactly the integer arithmetic that
``neuro.graph.quantize(..., fmt)`` + the reference executor will run after export, while
gradients flow through straight-through estimators (STE). It composes with
the existing training loops unchanged (``neuro.models.delay_snn.train_delay_snn``,
``train_classifier``): QAT is a fine-tuning phase after float training.

Per population (a synapse layer, an optional ``BatchNormTime``, a neuron) with scale ``S``
(float membrane units -> integer state units, the weight-limited scale of ``quantize``:
``S = weight_max / max|W|``, ``weight_max = 2^(weight_bits-1) - 1``):

* ``BatchNormTime`` is folded into the synapse once (``W <- W scale``, ``b <- b scale + shift``,
  running statistics; the BN module becomes ``nn.Identity``), exactly as ``quantize`` folds it;
* weights and biases are fake-quantized by a ``torch.nn.utils.parametrize`` parametrization:
  ``W_q = clip(round(W S), weight_min, weight_max) / S``, ``b_q = round(b S) / S``; STE: the
  gradient passes as if ``W_q = W``;
* the neuron is wrapped (:class:`QATNeuron`) and runs the format's integer update on
  ``a = round(S x)`` in float64 tensors holding exact integers::

      v = overflow(decay(v) + a) ;  s = v >= vth ;  v = 0 (zero reset) or v - vth where s

  with ``vth = round(theta S)``, ``decay`` the format's shift leak ``v - shr(v, k)`` or 12-bit
  mantissa leak ``shr(v m, 12)`` (``k``, ``m`` as ``quantize`` derives them from ``beta``),
  ``shr`` rounding as the format says, ``overflow`` the format's saturation (or wrap). STE: every
  rounding passes its gradient as the exact linear map (``shr(v, k)`` as ``v 2^-k``), saturation
  passes the gradient unchanged, the spike uses the neuron's surrogate on ``(v - vth) / S``
  (float units, so the surrogate's width is the float model's). LI readouts output ``v / S``;
* learned DCLS delays are frozen at their rounded integer values (``P`` stops training and a
  forward pre-hook keeps every ``DelayedLinear`` in integer-delay mode).

``QAT.convert()`` bakes the fake-quantized values into plain parameters and puts the original
neurons back: ``from_module(model)`` then lowers to a float graph that ``quantize`` maps to the
very integers QAT trained (``QAT.check_export`` compares the scales and thresholds). The folded
model no longer matches its ``DelaySNNConfig`` layout (BatchNorm is gone), so store it as a graph
(``GraphModel(from_module(model))``) rather than a ``DelaySNN`` checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..graph.formats import NumberFormat, get_format
from ..layers import BatchNormTime, DelayedLinear
from ..neurons import LI, LIF, CubaLIF

SYNAPSES = (nn.Linear, DelayedLinear)
_SKIP = (nn.Dropout, nn.Identity)


@dataclass
class _Population:
    name: str            # the neuron's module path (= its graph node name)
    synapse: Any         # a module with weight (and bias); read by attribute
    neuron: Any          # an LIF / CubaLIF / LI module; read by attribute
    fmt: NumberFormat

    def raw_weight(self) -> Tensor:
        p = getattr(self.synapse, "parametrizations", None)
        return (p.weight.original if p is not None and "weight" in p else self.synapse.weight).detach()

    def scale(self) -> float:
        """``S = weight_max / max|W|`` (``quantize``'s weight-limited scale, in float64)."""
        wmax = float(self.raw_weight().abs().max()) or 1.0
        return self.fmt.weight_max / wmax


def _ste(x: Tensor, exact: Tensor) -> Tensor:
    """Forward ``exact``, gradient of ``x``."""
    return x + (exact - x).detach()


class _FakeQuant(nn.Module):
    """Parametrization ``W -> clip(round(W S), lo, hi) / S`` with a straight-through gradient."""

    def __init__(self, pop: _Population, lo: int, hi: int) -> None:
        super().__init__()
        self.pop, self.lo, self.hi = pop, lo, hi

    def forward(self, w: Tensor) -> Tensor:
        S = self.pop.scale()
        q = torch.clamp(torch.round(w.detach().double() * S), self.lo, self.hi) / S
        return _ste(w, q.to(w.dtype))


class QATNeuron(nn.Module):
    """A LIF/LI neuron running the format's integer update (see the module docstring).

    ``forward(x[T, B, N]) -> (out[T, B, N], None)``: spikes (LIF) or ``v / S`` (LI); whole
    sequences from a zero state."""

    leak: Tensor  # buffer registered in __init__

    def __init__(self, pop: _Population) -> None:
        super().__init__()
        from ..graph.quantize import decay_code

        self.pop = pop
        self.inner = pop.neuron
        fmt, n = pop.fmt, pop.neuron
        beta = n._beta().detach().cpu().numpy()
        code = decay_code(fmt, beta, pop.name, "beta")
        key = "beta_m" if fmt.decay == "mantissa" else "beta_shift"
        self.register_buffer("leak", torch.as_tensor(np.asarray(code[key]), dtype=torch.float64))
        self.spiking = isinstance(n, LIF)

    def init_state(self, *args: Any, **kwargs: Any) -> None:  # makes Sequential thread a state
        return None

    def _shr(self, x: Tensor, div: Tensor) -> Tensor:
        y = x / div
        yd = y.detach()
        t = yd.to(torch.int64).to(yd.dtype)  # truncation toward zero (exact: |y| < 2^53)
        if self.pop.fmt.rounding == "floor":
            t = t - (t > yd).to(yd.dtype)
        return _ste(y, t)

    def _decay(self, v: Tensor) -> Tensor:
        fmt = self.pop.fmt
        if fmt.decay == "mantissa":
            return self._shr(v * self.leak, torch.tensor(float(1 << fmt.decay_bits), dtype=v.dtype))
        k = self.leak
        on = (k > 0).to(v.dtype)
        return v - on * self._shr(v, torch.pow(2.0, torch.clamp(k, min=1)))

    def _overflow(self, v: Tensor) -> Tensor:
        fmt = self.pop.fmt
        lo, hi = -fmt.state_max - 1, fmt.state_max
        if fmt.overflow == "saturate":
            return _ste(v, v.detach().clamp(lo, hi))
        span = float(1 << fmt.state_bits)
        return _ste(v, torch.remainder(v.detach() - lo, span) + lo)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, None]:
        if state is not None:
            raise ValueError(f"QATNeuron {self.pop.name!r}: runs whole sequences from a zero state")
        S = self.pop.scale()
        a = x.double() * S
        a = _ste(a, torch.round(a.detach()))
        v = torch.zeros_like(a[0])
        n = self.inner
        vth = torch.round(n.threshold.detach().double() * S) if self.spiking else 0.0
        outs = []
        for t in range(a.shape[0]):
            h = self._overflow(self._decay(v) + a[t])
            if self.spiking:
                s = n.surrogate((h - vth) / S)
                sr = s.detach() if n.detach_reset else s
                v = h * (1 - sr) if n.reset == "zero" else h - sr * vth
                outs.append(s)
            else:
                v = h
                outs.append(h / S)
        return torch.stack(outs).to(x.dtype), None


class QAT:
    """Handle returned by :func:`prepare_qat`: the populations, their scales, ``convert``."""

    def __init__(self, model: nn.Module, fmt: NumberFormat, pops: list[_Population],
                 hooks: list[Any]) -> None:
        self.model, self.fmt, self.populations, self._hooks = model, fmt, pops, hooks
        self.converted = False

    def scales(self) -> dict[str, float]:
        return {p.name: p.scale() for p in self.populations}

    def thresholds(self) -> dict[str, np.ndarray]:
        """Integer thresholds ``round(theta S)`` per LIF population (as ``quantize``)."""
        return {p.name: np.round(p.neuron.threshold.detach().double().cpu().numpy() * p.scale())
                .astype(np.int64) for p in self.populations if isinstance(p.neuron, LIF)}

    def convert(self) -> nn.Module:
        """Bake the quantized weights/biases, restore the neurons, remove the hooks."""
        if self.converted:
            return self.model
        for p in self.populations:
            for field in ("weight", "bias"):
                if parametrize.is_parametrized(p.synapse, field):
                    parametrize.remove_parametrizations(p.synapse, field, leave_parametrized=True)
            _set_child(self.model, p.name, p.neuron)
        for h in self._hooks:
            h.remove()
        self.converted = True
        return self.model

    def check_export(self, q: Any) -> list[str]:
        """Differences between a quantized graph ``q`` (of the converted model) and what QAT
        trained: scales (relative 1e-6) and integer thresholds. ``[]``: the export is faithful."""
        out = []
        for name, S in self.scales().items():
            node = q.nodes.get(name)
            if node is None or node.q is None:
                out.append(f"population {name!r} is not in the quantized graph")
                continue
            if abs(node.q["scale"] - S) > 1e-6 * S:
                out.append(f"population {name!r}: export scale {node.q['scale']:.6g}, QAT scale {S:.6g} "
                           "(the format's state range limits the scale: QAT assumed the weight limit)")
        for name, vth in self.thresholds().items():
            node = q.nodes.get(name)
            if node is not None and node.q is not None and not np.array_equal(
                    np.broadcast_to(np.asarray(node.q["vth"]), np.shape(vth)), vth):
                out.append(f"population {name!r}: export threshold {node.q['vth']}, QAT {vth.tolist()}")
        return out


def _set_child(model: nn.Module, name: str, module: nn.Module) -> None:
    parent = model
    *path, last = name.split(".")
    for p in path:
        parent = getattr(parent, p)
    setattr(parent, last, module)


def _fold_bn(syn: Any, bn: BatchNormTime) -> None:  # syn: a module with weight and bias
    scale, shift = (t.detach() for t in bn.scale_shift())
    with torch.no_grad():
        syn.weight.mul_(scale[:, None].to(syn.weight.dtype))
        if syn.bias is None:
            syn.bias = nn.Parameter(shift.to(syn.weight.dtype).clone())
        else:
            syn.bias.mul_(scale).add_(shift)


def _force_integer_delays(module: DelayedLinear, args: Any) -> None:
    module.integer = True


def freeze_integer_delays(model: nn.Module) -> list[Any]:
    """Freeze every ``DelayedLinear``'s positions at their rounded integer delays: ``P`` stops
    training and a forward pre-hook keeps the layer in integer-delay mode (training loops that
    switch it back for evaluation do not undo it). Returns the hook handles (``.remove()``)."""
    hooks = []
    for m in model.modules():
        if isinstance(m, DelayedLinear):
            m.P.requires_grad_(False)
            hooks.append(m.register_forward_pre_hook(_force_integer_delays))
    return hooks


def prepare_qat(model: nn.Module, fmt: str | NumberFormat = "int8") -> QAT:
    """Prepare a trained float ``model`` (a ``neuro.layers.Sequential`` such as ``DelaySNN`` or
    a feed-forward stack) for quantization-aware fine-tuning in ``fmt`` (in place).

    Raises ``ValueError`` naming the module for structures without an integer QAT form
    (recurrent populations, current-based neurons, a neuron without a synapse before it)."""
    fmt = get_format(fmt)
    if fmt.family != "fixed" or fmt.frac_bits:
        raise ValueError(f"prepare_qat: format {fmt.name!r} is not an integer FPGA format "
                         "(int8, int16, int8-m12, int16-m12)")
    if fmt.spike_rule != "ge":
        raise ValueError(f"prepare_qat: format {fmt.name!r} fires on v > vth; the surrogate spike "
                         "fires on v >= vth (spike_rule 'ge')")
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"prepare_qat: expected a neuro.layers.Sequential model, got {type(model).__name__}")
    pops: list[_Population] = []
    syn: tuple[str, nn.Module] | None = None
    for name, m in list(model.named_children()):
        if isinstance(m, SYNAPSES):
            syn = (name, m)
        elif isinstance(m, BatchNormTime):
            if syn is None:
                raise ValueError(f"prepare_qat: module {name!r} (BatchNormTime) has no synapse before it")
            _fold_bn(syn[1], m)
            setattr(model, name, nn.Identity())
        elif isinstance(m, (LIF, LI)):
            if isinstance(m, CubaLIF):
                raise ValueError(f"prepare_qat: module {name!r} (CubaLIF) has no QAT form yet")
            if syn is None:
                raise ValueError(f"prepare_qat: neuron {name!r} has no synapse layer before it")
            if getattr(m, "decay_input", False) or getattr(m, "refractory", 0) \
                    or getattr(m, "reset_timing", "immediate") != "immediate":
                raise ValueError(f"prepare_qat: neuron {name!r}: decay_input, refractory periods and "
                                 "deferred resets have no integer form")
            pop = _Population(name, syn[1], m, fmt)
            parametrize.register_parametrization(syn[1], "weight",
                                                 _FakeQuant(pop, fmt.weight_min, fmt.weight_max))
            if syn[1].bias is not None:
                parametrize.register_parametrization(syn[1], "bias",
                                                     _FakeQuant(pop, -fmt.state_max, fmt.state_max))
            setattr(model, name, QATNeuron(pop))
            pops.append(pop)
            syn = None
        elif isinstance(m, _SKIP) or type(m).__name__ == "TimeDropout":
            continue
        else:
            raise ValueError(f"prepare_qat: module {name!r} ({type(m).__name__}) has no QAT form "
                             "(supported: Linear/DelayedLinear [BatchNormTime] LIF/LI stacks)")
    if not pops:
        raise ValueError("prepare_qat: the model has no synapse -> neuron population")
    return QAT(model, fmt, pops, freeze_integer_delays(model))


__all__ = ["QAT", "QATNeuron", "freeze_integer_delays", "prepare_qat"]
