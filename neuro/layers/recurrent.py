"""A neuron population with recurrent weights (LSM reservoirs, recurrent SNNs).

Per step, with spikes ``s[t-1]`` of the population at the previous step::

    x_in[t] = W_in u[t] + W_rec s[t-1] (+ bias)
    s[t], state = neuron.step(x_in[t], state)

The recurrent input arrives one step late (one-step synaptic delay), which is how Lava, SpiNNaker
and Brian2 (with a delay of one ``dt``) order the update. ``W_rec`` is ``[N, N]`` with
``W_rec[i, j]`` the weight from neuron ``j`` to neuron ``i``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..neurons.base import Neuron


class RecurrentState(NamedTuple):
    neuron: Any
    spikes: Tensor


class Recurrent(nn.Module):
    """``Recurrent(in_features, neuron, w_rec=None, bias=False, learn_recurrent=True)``.

    ``neuron`` must have ``shape=(N,)`` or scalar parameters; ``N`` is taken from ``w_rec`` or
    from ``neuron.shape``.
    """

    def __init__(self, in_features: int, neuron: Neuron, *, size: int | None = None,
                 w_in: Tensor | None = None, w_rec: Tensor | None = None, bias: bool = False,
                 learn_recurrent: bool = True) -> None:
        super().__init__()
        if not isinstance(neuron, Neuron):
            raise TypeError(f"Recurrent needs a neuro Neuron, got {type(neuron).__name__}")
        n = size or (neuron.shape[0] if neuron.shape else None) or (
            w_rec.shape[0] if w_rec is not None else None)
        if n is None:
            raise ValueError("Recurrent: give size=, a shaped neuron or w_rec")
        self.size, self.neuron = int(n), neuron
        self.input = nn.Linear(in_features, n, bias=bias)
        if w_in is not None:
            if tuple(w_in.shape) != (n, in_features):
                raise ValueError(f"Recurrent: w_in must be [{n}, {in_features}], got {tuple(w_in.shape)}")
            with torch.no_grad():
                self.input.weight.copy_(w_in)
        w = torch.zeros(n, n) if w_rec is None else torch.as_tensor(w_rec, dtype=torch.float32)
        if tuple(w.shape) != (n, n):
            raise ValueError(f"Recurrent: w_rec must be [{n}, {n}], got {tuple(w.shape)}")
        if learn_recurrent:
            self.w_rec = nn.Parameter(w.clone())
        else:
            self.register_buffer("w_rec", w.clone())

    def init_state(self, batch_shape, *, device=None, dtype=torch.float32) -> RecurrentState:
        batch = tuple(batch_shape)
        st = self.neuron.init_state(batch if self.neuron.shape else batch + (self.size,),
                                    device=device, dtype=dtype)
        return RecurrentState(st, torch.zeros(batch + (self.size,), device=device, dtype=dtype))

    def step(self, u: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """One step from the external input ``u[B, in]``."""
        return self._advance(self.input(u), state)

    def _advance(self, x_ff: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """One step from the feed-forward current ``x_ff[B, N]`` plus the recurrent input."""
        s, st = self.neuron.step(x_ff + state.spikes @ self.w_rec.t(), state.neuron)
        return s, RecurrentState(st, s)

    def forward(self, u: Tensor, state: RecurrentState | None = None) -> tuple[Tensor, Any]:
        if u.dim() < 2:
            raise ValueError(f"Recurrent: input must be [T, B, in], got shape {tuple(u.shape)}")
        if state is None:
            state = self.init_state(u.shape[1:-1], device=u.device, dtype=u.dtype)
        x_in = self.input(u)  # the feed-forward part for every step at once
        outs = []
        for t in range(u.shape[0]):
            s, state = self._advance(x_in[t], state)
            outs.append(s)
        return torch.stack(outs), state

    def describe(self) -> dict:
        return {"kind": "Recurrent", "size": self.size, "neuron": self.neuron.describe()}


__all__ = ["Recurrent", "RecurrentState"]
