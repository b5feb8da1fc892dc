"""Leaky integrate-and-fire neurons: LIF, IF (no leak) and LI (non-spiking leaky readout).

Discrete time, one step = ``dt`` seconds. With membrane ``v``, input current ``x`` and per-step
decay factor ``beta`` (``beta = exp(-dt / tau_mem)``, or ``1 - 1/tau`` with ``tau`` in steps for
the Euler form used by SpikingJelly)::

    charge   decay_input=False:  h[t] = beta * v[t-1] + x[t]
             decay_input=True:   h[t] = v[t-1] + (x[t] - v[t-1]) * (1 - beta)
    fire     s[t] = H(h[t] - threshold)                       H(0) = 1
    reset    "subtract":  v[t] = h[t] - s[t] * threshold       (soft reset)
             "zero":      v[t] = h[t] * (1 - s[t])              (hard reset to 0)

The default reset is ``"zero"``, chosen for the hardware: Loihi 2's LIF (Lava), NEST's
``iaf_psc_delta`` and SpiNNaker's LIF all reset the membrane to a potential, so a network built with
the defaults quantizes to every number format and runs on every target. ``"subtract"`` (snnTorch's
default, and what keeps a rate code linear at high rates) runs on the SpiNNaker and FPGA formats;
``quantize(..., "loihi2")`` and the NEST target refuse it by name.

``reset_timing="deferred"`` reproduces snnTorch's default (``reset_delay=True``): the membrane
state is the value *before* reset, and the reset of a spike at ``t-1`` is applied at step ``t``
after the decay: ``h[t] = beta * v[t-1] + x[t] - s[t-1] * threshold`` (subtract) or
``h[t] = beta * (1 - s[t-1]) * v[t-1] + x[t]`` (zero), ``v[t] = h[t]``.

``v_leak`` and ``v_reset`` (default 0; NIR's leak and reset potentials, in the unit of ``v``) add
an offset to the update: the charge gains ``(1 - beta) * v_leak`` (so ``v`` relaxes to
``v_leak``), ``"zero"`` resets to ``v[t] = v_reset`` and ``"subtract"`` subtracts
``threshold - v_reset`` (a neuron exactly at threshold lands on ``v_reset``); deferred timing
applies the same reset one step later. With both 0 (the default) the update is the one above,
float operation for float operation; with either non-zero the step loop runs (no fused kernel).
The membrane starts at 0.

``refractory=R`` (steps, immediate timing only): after a spike the neuron ignores its input and
keeps its (reset) membrane for ``R`` steps, emitting no spike (Brian2's ``unless refractory``).

Units: ``x``, ``v`` and ``threshold`` are in the same (arbitrary) unit; time is in steps.

Example::

    >>> import torch
    >>> from neuro.neurons import LIF
    >>> lif = LIF(beta=0.9, threshold=1.0)
    >>> spikes, state = lif(torch.rand(100, 8, 32))    # [T, B, N] -> [T, B, N], LIFState
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import torch
from torch import Tensor

from .. import kernels
from ..surrogate import Surrogate
from .base import Neuron, to_plain

RESETS = ("subtract", "zero")
TIMINGS = ("immediate", "deferred")


class LIFState(NamedTuple):
    """Membrane ``v`` and, with ``refractory > 0``, the steps of refractoriness left."""

    v: Tensor
    refractory: Tensor | None = None


def decay_from_tau(tau: float, dt: float = 1.0, discretization: str = "exp") -> float:
    """Per-step decay factor for time constant ``tau`` (same unit as ``dt``).

    ``"exp"``: ``exp(-dt / tau)`` (exact solution of the leak over one step);
    ``"euler"``: ``1 - dt / tau`` (forward Euler, SpikingJelly's and the DCLS reference's form).
    """
    if tau <= 0 or dt <= 0:
        raise ValueError(f"tau and dt must be positive, got tau={tau}, dt={dt}")
    if discretization == "exp":
        return math.exp(-dt / tau)
    if discretization == "euler":
        if dt > tau:
            raise ValueError(f"Euler decay needs dt <= tau, got dt={dt}, tau={tau}")
        return 1.0 - dt / tau
    raise ValueError(f"discretization must be 'exp' or 'euler', got {discretization!r}")


class LIF(Neuron):
    """Leaky integrate-and-fire neuron (see the module docstring for the equations).

    Args:
        shape: neuron shape for per-neuron parameters, or ``None`` for scalars.
        beta: per-step membrane decay factor in ``[0, 1]``.
        threshold: firing threshold (> 0).
        decay_input: whether the input is scaled by ``1 - beta`` (SpikingJelly ``decay_input``).
        reset: ``"zero"`` (default: every target can run it) or ``"subtract"``.
        reset_timing: ``"immediate"`` (default) or ``"deferred"`` (snnTorch).
        detach_reset: no gradient through the spike in the reset term.
        learn_beta, learn_threshold: make them ``nn.Parameter`` (beta is clamped to [0, 1] in use).
        refractory: refractory period in steps (0 = none).
        surrogate: surrogate gradient of the spike (default ``ATan(alpha=2)``).
        dt: duration of one step in seconds (recorded for unit conversion).
        fused: use the fused multi-step kernel when the configuration allows it
            (immediate timing, no refractory period).
    """

    kind = "LIF"
    State = LIFState
    beta: Tensor  # buffers or parameters registered by _param
    threshold: Tensor

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        beta: float | Tensor = 0.9,
        threshold: float | Tensor = 1.0,
        decay_input: bool = False,
        reset: str = "zero",
        reset_timing: str = "immediate",
        detach_reset: bool = False,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        refractory: int = 0,
        surrogate: Surrogate | None = None,
        dt: float = 1e-3,
        fused: bool = True,
        v_leak: float | Tensor = 0.0,
        v_reset: float | Tensor = 0.0,
    ) -> None:
        super().__init__(shape, surrogate=surrogate, dt=dt)
        if reset not in RESETS:
            raise ValueError(f"LIF reset must be one of {RESETS}, got {reset!r}")
        if reset_timing not in TIMINGS:
            raise ValueError(f"LIF reset_timing must be one of {TIMINGS}, got {reset_timing!r}")
        if not isinstance(refractory, int) or refractory < 0:
            raise ValueError(f"LIF refractory must be a non-negative int (steps), got {refractory!r}")
        if refractory and reset_timing != "immediate":
            raise ValueError("LIF refractory > 0 needs reset_timing='immediate'")
        b = torch.as_tensor(beta, dtype=torch.float32)
        if not bool(((b >= 0) & (b <= 1)).all()):
            raise ValueError(f"LIF beta must lie in [0, 1], got {to_plain(b)}")
        th = torch.as_tensor(threshold, dtype=torch.float32)
        if not bool((th > 0).all()):
            raise ValueError(f"LIF threshold must be > 0, got {to_plain(th)}")
        self._param("beta", b, learn_beta)
        self._param("threshold", th, learn_threshold)
        vl = torch.as_tensor(v_leak, dtype=torch.float32)
        vr = torch.as_tensor(v_reset, dtype=torch.float32)
        if not bool((th - vr > 0).all()):
            raise ValueError(f"LIF v_reset must lie below the threshold, got {to_plain(vr)}")
        #: the offsets, or None where they are 0 (the plain update runs then)
        self.v_leak = vl if bool((vl != 0).any()) else None
        self.v_reset = vr if bool((vr != 0).any()) else None
        self.decay_input = bool(decay_input)
        self.reset = reset
        self.reset_timing = reset_timing
        self.detach_reset = bool(detach_reset)
        self.refractory = refractory
        self.fused = bool(fused)

    @classmethod
    def from_tau(cls, tau: float, *, dt: float = 1e-3, discretization: str = "exp", **kwargs: Any) -> LIF:
        """Build from the membrane time constant ``tau`` in seconds (``dt`` per step)."""
        return cls(beta=decay_from_tau(tau, dt, discretization), dt=dt, **kwargs)

    # -- the contract -----------------------------------------------------------------------
    def init_state(self, batch_shape, *, device=None, dtype=torch.float32) -> LIFState:
        full = self._state_shape(batch_shape)
        ref = torch.zeros(full, device=device, dtype=torch.int32) if self.refractory else None
        return LIFState(torch.zeros(full, device=device, dtype=dtype), ref)

    def _beta(self) -> Tensor:
        return self.beta.clamp(0, 1) if isinstance(self.beta, torch.nn.Parameter) else self.beta

    def _charge(self, v: Tensor, x: Tensor, beta: Tensor) -> Tensor:
        if self.decay_input:
            h = v + (x - v) * (1 - beta)
        else:
            h = beta * v + x
        if self.v_leak is not None:
            h = h + (1 - beta) * self.v_leak.to(h)
        return h

    def _reset_zero(self, h: Tensor, s: Tensor) -> Tensor:
        if self.v_reset is None:
            return h * (1 - s)
        return h * (1 - s) + s * self.v_reset.to(h)

    def _reset_step(self, thr: Tensor) -> Tensor:
        """What a subtractive reset subtracts: ``threshold - v_reset``."""
        return thr if self.v_reset is None else thr - self.v_reset.to(thr)

    def step(self, x: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        beta, thr = self._beta(), self.threshold
        v = state.v
        if self.reset_timing == "deferred":
            prev = (v - thr >= 0).to(v.dtype)
            if self.reset == "zero":
                h = self._charge(self._reset_zero(v, prev), x, beta)
            else:
                h = self._charge(v, x, beta) - prev * self._reset_step(thr)
            return self.surrogate(h - thr), LIFState(h, None)
        h = self._charge(v, x, beta)
        if self.refractory:
            active = cast(Tensor, state.refractory) == 0
            h = torch.where(active, h, v)
            s = self.surrogate(h - thr) * active.to(h.dtype)
        else:
            s = self.surrogate(h - thr)
        sr = s.detach() if self.detach_reset else s
        v_new = h - sr * self._reset_step(thr) if self.reset == "subtract" else self._reset_zero(h, sr)
        ref = None
        if self.refractory:
            ref = torch.where(
                s.detach() > 0,
                torch.full_like(cast(Tensor, state.refractory), self.refractory),
                (cast(Tensor, state.refractory) - 1).clamp(min=0),
            )
        return s, LIFState(v_new, ref)

    def _multi_step(self, x: Tensor, state: LIFState, record: bool) -> tuple[Tensor, LIFState]:
        if not (self.fused and self.reset_timing == "immediate" and self.refractory == 0
                and self.v_leak is None and self.v_reset is None):
            return super()._multi_step(x, state, record)
        thr = self.threshold
        spikes, h, v_last = kernels.lif_multistep(
            x, state.v, self._beta(), thr, decay_input=self.decay_input, reset=self.reset,
            detach_reset=self.detach_reset, surrogate=self.surrogate, cpp=kernels.use_cpp(x),
        )
        if record:
            sr = spikes.detach() if self.detach_reset else spikes
            v_seq = h - sr * thr if self.reset == "subtract" else h * (1 - sr)
            return spikes, LIFState(v_seq, None)
        return spikes, LIFState(v_last, None)

    def _describe_params(self) -> dict[str, Any]:
        return {
            "beta": to_plain(self._beta()),
            "threshold": to_plain(self.threshold),
            "decay_input": self.decay_input,
            "reset": self.reset,
            "reset_timing": self.reset_timing,
            "detach_reset": self.detach_reset,
            "refractory": self.refractory,
            **({"v_leak": to_plain(self.v_leak)} if self.v_leak is not None else {}),
            **({"v_reset": to_plain(self.v_reset)} if self.v_reset is not None else {}),
            "learn_beta": isinstance(self.beta, torch.nn.Parameter),
            "learn_threshold": isinstance(self.threshold, torch.nn.Parameter),
        }

    def extra_repr(self) -> str:
        d = self._describe_params()
        return ", ".join(f"{k}={d[k]}" for k in ("beta", "threshold", "reset", "decay_input")
                         if not isinstance(d[k], list))


class IF(LIF):
    """Integrate-and-fire neuron: an :class:`LIF` with ``beta = 1`` (no leak), not learnable."""

    kind = "IF"

    def __init__(self, shape: int | Sequence[int] | None = None, *, threshold: float | Tensor = 1.0,
                 reset: str = "zero", **kwargs: Any) -> None:
        for bad in ("beta", "learn_beta", "decay_input"):
            if bad in kwargs:
                raise TypeError(f"IF has no {bad!r}: it does not leak (use LIF)")
        super().__init__(shape, beta=1.0, threshold=threshold, reset=reset, **kwargs)

    def _describe_params(self) -> dict[str, Any]:
        d = super()._describe_params()
        for k in ("beta", "decay_input", "learn_beta"):
            d.pop(k)
        return d


class LIState(NamedTuple):
    v: Tensor


class LI(Neuron):
    """Leaky integrator (non-spiking readout): its output is the membrane.

    ``v[t] = beta * v[t-1] + x[t]`` (or ``v[t-1] + (x[t] - v[t-1]) (1 - beta)`` with
    ``decay_input``); output ``v[t]``. The fused path reuses the LIF kernel with an infinite
    threshold, which gives exactly the same float operations.
    """

    kind = "LI"
    State = LIState
    beta: Tensor  # buffer or parameter registered by _param

    def __init__(self, shape: int | Sequence[int] | None = None, *, beta: float | Tensor = 0.9,
                 decay_input: bool = False, learn_beta: bool = False, dt: float = 1e-3,
                 fused: bool = True) -> None:
        super().__init__(shape, dt=dt)
        b = torch.as_tensor(beta, dtype=torch.float32)
        if not bool(((b >= 0) & (b <= 1)).all()):
            raise ValueError(f"LI beta must lie in [0, 1], got {to_plain(b)}")
        self._param("beta", b, learn_beta)
        self.decay_input = bool(decay_input)
        self.fused = bool(fused)

    def _beta(self) -> Tensor:
        return self.beta.clamp(0, 1) if isinstance(self.beta, torch.nn.Parameter) else self.beta

    def step(self, x: Tensor, state: LIState) -> tuple[Tensor, LIState]:
        beta, v = self._beta(), state.v
        v = v + (x - v) * (1 - beta) if self.decay_input else beta * v + x
        return v, LIState(v)

    def _multi_step(self, x: Tensor, state: LIState, record: bool) -> tuple[Tensor, LIState]:
        if not self.fused:
            return super()._multi_step(x, state, record)
        inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
        _, h, v_last = kernels.lif_multistep(
            x, state.v, self._beta(), inf, decay_input=self.decay_input, reset="zero",
            detach_reset=True, surrogate=None, cpp=kernels.use_cpp(x),
        )
        return h, LIState(h if record else v_last)

    def _describe_params(self) -> dict[str, Any]:
        return {"beta": to_plain(self._beta()), "decay_input": self.decay_input,
                "learn_beta": isinstance(self.beta, torch.nn.Parameter)}
