"""The event-based gated recurrent unit (EGRU; Subramoney et al., ICLR 2023).

Gate order ``[z, r, n]``; ``W`` is ``[in, 3H]`` and ``R`` is ``[H, 3H]`` (EvNN layout), the
reset gate acts after the recurrent matmul (Haste/cuDNN)::

    a = W x[t] + b_W ;  b = R y[t-1] + b_R
    z = sigmoid(a_z + b_z) ;  r = sigmoid(a_r + b_r) ;  g = tanh(a_n + r * b_n)
    c = z * c[t-1] + (1 - z) * g              internal state
    o[t] = H(c - theta)                        event, H(0) = 0, theta per unit, clamped to [0, 1]
    y[t] = o[t] * c                            output and recurrent input (pre-reset value)
    c[t] = c - o[t] * theta                    reset by subtraction

Surrogate: the EGRU pseudo-derivative ``dampening * max(0, 1 - support |c - theta|)``.
Thresholds start from ``Beta(3 m / (1 - m), 3)`` with mean ``m = thr_mean``.
The output ``y`` is real-valued but zero except at events; ``state.o`` holds the events.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..surrogate import EGRUPseudoDerivative, Surrogate
from .base import Neuron, to_plain


class EGRUState(NamedTuple):
    c: Tensor   # internal state after reset
    y: Tensor   # last output (event-gated value)
    o: Tensor   # last events (0/1)


class EGRU(Neuron):
    """EGRU layer over ``[T, B, input_size]`` -> ``[T, B, hidden_size]`` (see module docstring)."""

    kind = "EGRU"
    State = EGRUState
    threshold: Tensor  # buffer or parameter registered by _param

    def __init__(self, input_size: int, hidden_size: int, *, thr_mean: float = 0.3,
                 dampening: float = 0.7, support: float = 1.0, learn_threshold: bool = True,
                 surrogate: Surrogate | None = None, dt: float = 1e-3) -> None:
        if not 0 < thr_mean < 1:
            raise ValueError(f"EGRU thr_mean must lie in (0, 1), got {thr_mean}")
        super().__init__(hidden_size, surrogate=surrogate or EGRUPseudoDerivative(dampening, support), dt=dt)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.kernel = nn.Parameter(torch.empty(input_size, 3 * hidden_size))
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden_size, 3 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(3 * hidden_size))
        self.recurrent_bias = nn.Parameter(torch.zeros(3 * hidden_size))
        nn.init.xavier_normal_(self.kernel)
        nn.init.orthogonal_(self.recurrent_kernel)
        thr = beta_thresholds(hidden_size, thr_mean)
        self._param("threshold", thr, learn_threshold)
        self.thr_mean = thr_mean

    def _input_shape(self) -> tuple[int, ...]:
        return (self.input_size,)

    def _batch_shape(self, step_shape):
        return tuple(step_shape)[:-1]

    def _check_state(self, state, step_shape, x):
        super()._check_state(state, tuple(step_shape)[:-1] + (self.hidden_size,), x)

    def _theta(self) -> Tensor:
        return self.threshold.clamp(0, 1)

    def _cell(self, ax: Tensor, state: EGRUState, theta: Tensor) -> tuple[Tensor, EGRUState]:
        b = state.y @ self.recurrent_kernel + self.recurrent_bias
        az, ar, an = ax.chunk(3, -1)
        bz, br, bn = b.chunk(3, -1)
        z = torch.sigmoid(az + bz)
        r = torch.sigmoid(ar + br)
        g = torch.tanh(an + r * bn)
        c = z * state.c + (1 - z) * g
        o = self.surrogate(c - theta, strict=True)
        y = o * c
        return y, EGRUState(c - o * theta, y, o)

    def step(self, x: Tensor, state: EGRUState) -> tuple[Tensor, EGRUState]:
        return self._cell(x @ self.kernel + self.bias, state, self._theta())

    def _multi_step(self, x: Tensor, state: EGRUState, record: bool):
        ax = x @ self.kernel + self.bias  # all input projections in one GEMM
        theta = self._theta()
        outs, trace = [], []
        for t in range(x.shape[0]):
            y, state = self._cell(ax[t], state, theta)
            outs.append(y)
            if record:
                trace.append(state)
        if record:
            state = EGRUState(*(torch.stack(f) for f in zip(*trace)))
        return torch.stack(outs), state

    def _describe_params(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "threshold": to_plain(self._theta()),
            "kernel": to_plain(self.kernel),
            "recurrent_kernel": to_plain(self.recurrent_kernel),
            "bias": to_plain(self.bias),
            "recurrent_bias": to_plain(self.recurrent_bias),
            "gate_order": "zrn",
        }


def beta_thresholds(n: int, thr_mean: float) -> Tensor:
    """``n`` thresholds from ``Beta(alpha = 3 m / (1 - m), beta = 3)``, whose mean is ``m``
    (EvNN's init); ``ValueError`` unless ``0 < m < 1``."""
    if not 0 < thr_mean < 1:
        raise ValueError(f"EGRU thr_mean must lie in (0, 1), got {thr_mean}")
    return torch.distributions.Beta(3 * thr_mean / (1 - thr_mean), 3.0).sample((int(n),))


def output_trace(y: Tensor, decay: float = 0.9) -> Tensor:
    """EvNN's output trace ``tr[t] = decay tr[t-1] + (1 - decay) y[t]``, ``tr[-1] = 0``, over
    ``y [T, ...]`` (same shape out)."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"trace decay must lie in [0, 1), got {decay}")
    tr = torch.zeros_like(y[0])
    out = []
    for t in range(y.shape[0]):
        tr = decay * tr + (1 - decay) * y[t]
        out.append(tr)
    return torch.stack(out)


__all__ = ["EGRU", "EGRUState", "beta_thresholds", "output_trace"]
