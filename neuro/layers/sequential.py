"""A container that threads neuron states through a stack of layers.

``nn.Sequential`` cannot chain neurons, whose ``forward`` returns ``(output, state)``. This
container calls stateless layers as ``y = layer(x)`` and neurons as ``y, s = neuron(x, s)``, and
returns ``(output, states)`` with one entry per neuron, in order, so a network is itself usable as
a stateful unit (truncated BPTT, streaming inference).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ..neurons.base import Neuron


def _is_stateful(module: nn.Module) -> bool:
    return isinstance(module, Neuron) or hasattr(module, "init_state")


class Sequential(nn.Sequential):
    """Time-first stack of layers and neurons: ``forward(x[T, B, ...], states=None)``."""

    def stateful(self) -> list[nn.Module]:
        """The members that carry state (neurons and recurrent populations), in order."""
        return [m for m in self if _is_stateful(m)]

    def forward(self, x: Tensor, states: Sequence[Any] | None = None,
                *, record: bool = False) -> tuple[Tensor, list[Any]]:  # type: ignore[override]
        n = len(self.stateful())
        if states is not None and len(states) != n:
            raise ValueError(f"Sequential: expected {n} neuron states, got {len(states)}")
        out_states: list[Any] = []
        for module in self:
            if _is_stateful(module):
                prev = states[len(out_states)] if states is not None else None
                if isinstance(module, Neuron):
                    x, st = module(x, prev, record=record)
                else:
                    x, st = module(x, prev)
                out_states.append(st)
            else:
                x = module(x)
        return x, out_states
