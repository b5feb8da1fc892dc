"""The EGRU layer of the family: the shared :class:`neuro.neurons.EGRU` neuron plus the training
regularisers of the paper's runs and a choice of time loop.

Equations (time-first ``x [T, B, I]`` -> ``y [T, B, H]``; see :mod:`neuro.neurons.egru`)::

    a = x W + b_W ;  b = y[t-1] R~ + b_R          R~ = DropConnect(R) in training
    z = sigmoid(a_z + b_z) ;  r = sigmoid(a_r + b_r) ;  g = tanh(a_g + r b_g)
    u = z c[t-1] + (1 - z) g
    zoneout: u <- (u - c[t-1]) m + c[t-1],  m ~ Bernoulli(1 - p_z) per (t, b, h) in training,
             u <- (1 - p_z) u + p_z c[t-1] in evaluation (its expectation)
    o[t] = H(u - theta) ;  y[t] = o[t] u ;  c[t] = u - o[t] theta
    trace[t] = 0.9 trace[t-1] + 0.1 y[t]

``theta`` is projected onto ``[0, 1]`` in place at every forward (as EvNN does, so a learnt
threshold never gets stuck outside the range with a zero gradient). DropConnect (Wan et al. 2013,
EvNN's ``dropout``) is ``F.dropout`` on ``R`` (zeroed entries, survivors scaled by ``1/(1-p)``),
one mask per forward call. Weight masks set by :mod:`.pruning` multiply ``W`` and ``R``; with
pruned weights the fused kernel visits ``R`` through a CSR index of its non-zeros.

Deviation from EvNN 0.2.0 (stated): in evaluation EvNN computes ``p h + (1 - p) h = h`` (the
state never moves); we use the expectation ``(1 - p) u + p c[t-1]`` of Krueger et al. (2017).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...neurons.base import to_plain
from ...neurons.egru import EGRU, EGRUState, output_trace
from .kernels import BACKENDS, SparsityStats, egru_sequence, input_projection


class EGRULayer(EGRU):
    """EGRU layer ``[T, B, input_size] -> [T, B, hidden_size]`` with zoneout, DropConnect,
    weight masks and the fused event-driven kernel (module docstring).

    ``forward(x, state=None, record=False) -> (y, state)`` as every neuro neuron; with
    ``record=True`` the state holds ``c, y, o`` for every step. ``last_stats`` holds the forward
    and backward sparsity of the last call (:class:`~.kernels.SparsityStats`)."""

    kernel_mask: Tensor | None  # buffers registered in __init__ (None: no pruning)
    recurrent_mask: Tensor | None

    def __init__(self, input_size: int, hidden_size: int, *, thr_mean: float = 0.3,
                 dampening: float = 0.7, support: float = 1.0, zoneout: float = 0.0,
                 dropconnect: float = 0.0, learn_threshold: bool = True,
                 backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size, thr_mean=thr_mean, dampening=dampening,
                         support=support, learn_threshold=learn_threshold)
        for name, p in (("zoneout", zoneout), ("dropconnect", dropconnect)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"EGRU {name} must lie in [0, 1), got {p}")
        if backend not in BACKENDS:
            raise ValueError(f"EGRU backend must be one of {BACKENDS}, got {backend!r}")
        if support <= 0:
            raise ValueError(f"EGRU pseudo-derivative support must be > 0, got {support}")
        self.dampening, self.support = float(dampening), float(support)
        self.zoneout, self.dropconnect = float(zoneout), float(dropconnect)
        self.backend = backend
        self.register_buffer("kernel_mask", None)
        self.register_buffer("recurrent_mask", None)
        self.last_stats = SparsityStats()

    # -- weights as used --------------------------------------------------------------------
    def effective_kernel(self) -> Tensor:
        """``W`` with the pruning mask applied, ``[I, 3H]``."""
        return self.kernel if self.kernel_mask is None else self.kernel * self.kernel_mask

    def effective_recurrent(self) -> Tensor:
        """``R`` with the pruning mask applied (before DropConnect), ``[H, 3H]``."""
        if self.recurrent_mask is None:
            return self.recurrent_kernel
        return self.recurrent_kernel * self.recurrent_mask

    def _project_threshold(self) -> None:
        if isinstance(self.threshold, torch.nn.Parameter):
            with torch.no_grad():
                self.threshold.clamp_(0.0, 1.0)

    def _keep(self, shape: tuple[int, ...], like: Tensor) -> Tensor | float:
        if self.zoneout == 0.0:
            return 1.0
        if self.training:
            return torch.bernoulli(torch.full(shape, 1.0 - self.zoneout, dtype=like.dtype,
                                              device=like.device))
        return 1.0 - self.zoneout

    # -- the contract ----------------------------------------------------------------------
    def step(self, x: Tensor, state: EGRUState) -> tuple[Tensor, EGRUState]:
        y, st = self._multi_step(x.unsqueeze(0), state, record=False)
        return y[0], st

    def _multi_step(self, x: Tensor, state: EGRUState, record: bool):
        self._project_threshold()
        theta = self._theta()
        R = F.dropout(self.effective_recurrent(), self.dropconnect, self.training)
        ax = input_projection(x, self.effective_kernel(), self.bias, self.backend)
        keep = self._keep(tuple(x.shape[:-1]) + (self.hidden_size,), x)
        stats = SparsityStats()
        y, c, o = egru_sequence(ax, R, self.recurrent_bias, theta, state.c, state.y, keep,
                                dampening=self.dampening, support=self.support,
                                backend=self.backend, csr=self.recurrent_mask is not None,
                                stats=stats)
        self.last_stats = stats
        if record:
            return y, EGRUState(c, y, o)
        return y, EGRUState(c[-1], y[-1], o[-1])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # masks of a pruned checkpoint: create the buffers a fresh (dense) layer lacks
        for name in ("kernel_mask", "recurrent_mask"):
            if prefix + name in state_dict and getattr(self, name) is None:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _describe_params(self):
        d = super()._describe_params()
        d["kernel"] = to_plain(self.effective_kernel())
        d["recurrent_kernel"] = to_plain(self.effective_recurrent())
        return d


def activity_regularization(c: Tensor, o: Tensor, alpha: float = 0.0, beta: float = 0.0,
                            gamma: float = 0.0) -> Tensor:
    """EvNN's EGRU activity regulariser over time-first ``c, o [T, B, H]`` (``c`` after reset)::

        alpha * mean(c)                                  pushes states down (fewer events)
      + beta  * mean((c[t+1] - c[t])^2 over (t, b, h) with o[t] = 1)
      + gamma * mean(o)                                  the event rate

    A zero coefficient drops its term (as EvNN). The temporal term differences along time; EvNN's
    batch-first LM differences along the batch axis there, a defect not reproduced."""
    if c.shape != o.shape or c.dim() < 2:
        raise ValueError(f"activity_regularization: c and o must share a [T, B, ...] shape, got "
                         f"{tuple(c.shape)} and {tuple(o.shape)}")
    loss = c.new_zeros(())
    if alpha:
        loss = loss + alpha * c.mean()
    if beta:
        mask = o[:-1].bool()
        diff = (c[1:] - c[:-1])[mask]
        if diff.numel():
            loss = loss + beta * diff.pow(2).mean()
    if gamma:
        loss = loss + gamma * o.mean()
    return loss


__all__ = ["EGRULayer", "activity_regularization", "output_trace"]
