"""Current-based LIF (CubaLIF): an exponentially decaying synaptic current feeds an LIF membrane.

Per step (``alpha``, ``beta``: synaptic and membrane decay factors per step)::

    i[t] = alpha * i[t-1] + x[t]
    h[t] = beta * v[t-1] + i[t]          (then fire and reset exactly as :class:`LIF`)

This is NIR's ``CubaLIF`` discretised with one step of ``dt`` and snnTorch's ``Synaptic``
(with ``reset_timing="deferred"``). The fused path runs the current filter and then the LIF
kernel over the whole sequence, which performs the same float operations as the step loop.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from .. import kernels
from .base import Neuron, to_plain
from .lif import LIF, LIFState


class CubaLIFState(NamedTuple):
    v: Tensor
    i: Tensor
    refractory: Tensor | None = None


class CubaLIF(LIF):
    """Current-based LIF. Takes every :class:`LIF` argument plus ``alpha`` (synaptic decay)."""

    kind = "CubaLIF"
    State: ClassVar[Any] = CubaLIFState
    alpha: Tensor  # buffer or parameter registered by _param

    def __init__(self, shape: int | Sequence[int] | None = None, *, alpha: float | Tensor = 0.8,
                 learn_alpha: bool = False, **kwargs: Any) -> None:
        super().__init__(shape, **kwargs)
        a = torch.as_tensor(alpha, dtype=torch.float32)
        if not bool(((a >= 0) & (a <= 1)).all()):
            raise ValueError(f"CubaLIF alpha must lie in [0, 1], got {to_plain(a)}")
        self._param("alpha", a, learn_alpha)

    def _alpha(self) -> Tensor:
        return self.alpha.clamp(0, 1) if isinstance(self.alpha, torch.nn.Parameter) else self.alpha

    # a CubaLIFState where LIF has an LIFState: typed Any so the override stays compatible
    def init_state(self, batch_shape, *, device=None, dtype=torch.float32) -> Any:
        lif = super().init_state(batch_shape, device=device, dtype=dtype)
        return CubaLIFState(lif.v, torch.zeros_like(lif.v), lif.refractory)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:  # CubaLIFState in and out
        i = self._alpha() * state.i + x
        s, lif = super().step(i, LIFState(state.v, state.refractory))
        return s, CubaLIFState(lif.v, i, lif.refractory)

    def _multi_step(self, x: Tensor, state: Any, record: bool):  # a CubaLIFState
        if not (self.fused and self.reset_timing == "immediate" and self.refractory == 0
                and self.v_leak is None and self.v_reset is None):
            return Neuron._multi_step(self, x, state, record)  # the step loop
        inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
        cpp = kernels.use_cpp(x)
        _, i_seq, i_last = kernels.lif_multistep(
            x, state.i, self._alpha(), inf, decay_input=False, reset="zero", detach_reset=True,
            surrogate=None, cpp=cpp,
        )
        spikes, lif = super()._multi_step(i_seq, LIFState(state.v, None), record)
        return spikes, CubaLIFState(lif.v, i_seq if record else i_last, None)

    def _describe_params(self) -> dict[str, Any]:
        return {"alpha": to_plain(self._alpha()), **super()._describe_params()}
