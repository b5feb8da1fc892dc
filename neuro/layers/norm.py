"""Time-first normalisation and dropout layers (SpikingJelly's multi-step semantics)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchNormTime(nn.BatchNorm1d):
    """``BatchNorm1d`` over ``[T, B, C]`` with statistics over time x batch per channel
    (SpikingJelly's multi-step BatchNorm, as the DCLS reference uses it)."""

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """Inference form ``y = x * scale + shift`` from the running statistics (the graph IR's
        ``ChannelAffine`` node computes exactly this)."""
        if self.running_var is None or self.running_mean is None:  # None + float raised TypeError
            raise TypeError("BatchNormTime.scale_shift needs running statistics (track_running_stats=True)")
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = self.weight * scale
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        return scale, shift

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if x.dim() != 3:
            raise ValueError(f"BatchNormTime: input must be [T, B, C], got {tuple(x.shape)}")
        if not self.training and self.track_running_stats:
            scale, shift = self.scale_shift()
            return x * scale + shift
        T, B, C = x.shape
        return super().forward(x.reshape(T * B, C)).view(T, B, C)


class TimeDropout(nn.Module):
    """Dropout with one mask per sample and channel, shared across all time steps
    (SpikingJelly ``layer.Dropout(step_mode='m')``); identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"TimeDropout: p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.empty_like(x[:1]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
