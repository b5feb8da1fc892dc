"""Resistive-memory (RRAM) non-idealities for fixed random weights (LSM reservoirs).

A weight ``w`` is stored as the conductance difference of a device pair, ``w ~ G+ - G-``, in
weight units (``w_max = max |W|`` of the matrix is the full-scale difference). Three effects:

* **Programming variability** (fixed once per chip): ``w' = w * exp(sigma N - sigma^2 / 2)`` with
  ``N ~ N(0, 1)`` per device: a log-normal spread of the programmed conductance with mean ``w``
  (``variability = sigma``).
* **Stuck-at faults** (fixed once per chip): with probability ``stuck_off`` a weight is 0 (both
  devices stuck in the high-resistance state); with probability ``stuck_on`` one device of the
  pair is stuck at full conductance, giving ``+w_max`` or ``-w_max`` (equally likely).
* **Read noise** (fresh at every read, i.e. every time step): each device's current gets an
  independent relative Gaussian error ``read_noise``. The summed column current of
  ``y = W x`` is then ``y + read_noise * sqrt((W * W) (x * x)) * N(0, 1)`` per output, exactly
  the distribution of the per-device model, computed without sampling every device.

Programming effects change the weights (:meth:`DeviceModel.program`); they lower to the graph
IR like any weights. Read noise is a property of an analog read and has no integer counterpart:
it is applied only in float simulation (:meth:`DeviceModel.read`), never in exported graphs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class DeviceModel:
    """Device non-idealities (all dimensionless, 0 = ideal); see the module docstring."""

    variability: float = 0.0
    stuck_off: float = 0.0
    stuck_on: float = 0.0
    read_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("variability", "read_noise"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"DeviceModel.{name} must be a finite number >= 0, got {v!r}")
        for name in ("stuck_off", "stuck_on"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"DeviceModel.{name} is a probability and must lie in [0, 1], got {v!r}")
        if self.stuck_off + self.stuck_on > 1:
            raise ValueError(f"DeviceModel: stuck_off + stuck_on must be <= 1, got "
                             f"{self.stuck_off} + {self.stuck_on}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DeviceModel:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"DeviceModel: unknown keys {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def ideal(self) -> bool:
        return not (self.variability or self.stuck_off or self.stuck_on or self.read_noise)

    def program(self, w: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The weights a chip holds after programming ``w``: variability, then stuck-at faults."""
        w = torch.as_tensor(w, dtype=torch.float32)
        out = w.clone()
        if self.variability:
            s = self.variability
            z = torch.randn(w.shape, generator=generator)
            out = out * torch.exp(s * z - 0.5 * s * s)
        if self.stuck_off or self.stuck_on:
            w_max = float(w.abs().max()) if w.numel() else 0.0
            u = torch.rand(w.shape, generator=generator)
            sign = torch.where(torch.rand(w.shape, generator=generator) < 0.5, -1.0, 1.0)
            out = torch.where(u < self.stuck_off, torch.zeros_like(out), out)
            on = (u >= self.stuck_off) & (u < self.stuck_off + self.stuck_on)
            out = torch.where(on, sign * w_max, out)
        return out

    def read(self, y: Tensor, w: Tensor, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``y = x @ w.T`` read through noisy devices: adds ``read_noise * sqrt(x^2 @ (w^2).T) * N``."""
        if not self.read_noise:
            return y
        std = torch.sqrt((x * x) @ (w * w).t())
        return y + self.read_noise * std * torch.randn(y.shape, generator=generator, dtype=y.dtype)


__all__ = ["DeviceModel"]
