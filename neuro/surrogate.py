"""Heaviside spike function with pluggable surrogate gradients.

Forward, every surrogate is the same step function of the shifted membrane ``x = v - threshold``::

    H(x) = 1 if x >= 0 else 0

Backward, ``dH/dx`` is replaced by the surrogate's :meth:`Surrogate.derivative`. A surrogate is a
small frozen dataclass (no module state, picklable, comparable), so a neuron stores one as data and
:meth:`Surrogate.describe` can record it in a checkpoint or graph.

Example::

    >>> import torch
    >>> from neuro.surrogate import ATan
    >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    >>> s = ATan(alpha=2.0)(x)            # tensor([0., 1., 1.])
    >>> s.sum().backward()                # x.grad = alpha/2 / (1 + (pi/2 alpha x)^2)
"""
from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, surrogate: Surrogate, strict: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None, None


@dataclass(frozen=True)
class Surrogate(abc.ABC):
    """Base class: ``__call__`` is the Heaviside with this surrogate's gradient."""

    @abc.abstractmethod
    def derivative(self, x: Tensor) -> Tensor:
        """``dH/dx`` used in the backward pass, element-wise."""

    def __call__(self, x: Tensor, strict: bool = False) -> Tensor:
        """Spikes ``H(x)``; ``strict=True`` gives ``H(0) = 0`` (EGRU, Lava, snnTorch)."""
        return _Heaviside.apply(x, self, strict)

    def describe(self) -> dict[str, Any]:
        """Plain description: ``{"kind": name, **parameters}``."""
        return {"kind": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arc-tangent surrogate (Fang et al. 2021; SpikingJelly ``ATan``, snnTorch ``atan``).

    ``g'(x) = (alpha / 2) / (1 + (pi/2 * alpha * x)^2)``; peak ``alpha / 2`` at ``x = 0``.
    """

    alpha: float = 2.0

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x).square())


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """Fast-sigmoid surrogate (SuperSpike, Zenke & Ganguli 2018; snnTorch ``fast_sigmoid``).

    ``g'(x) = 1 / (slope * |x| + 1)^2``.
    """

    slope: float = 25.0

    def derivative(self, x: Tensor) -> Tensor:
        return 1 / (self.slope * x.abs() + 1).square()


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Sigmoid surrogate (SpikingJelly's default): ``g'(x) = alpha * sig(alpha x) (1 - sig(alpha x))``."""

    alpha: float = 4.0

    def derivative(self, x: Tensor) -> Tensor:
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1 - sg)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangular surrogate (Esser et al. 2016; Bellec et al. 2018).

    ``g'(x) = height * max(0, 1 - |x| / width)``.
    """

    width: float = 1.0
    height: float = 1.0

    def derivative(self, x: Tensor) -> Tensor:
        return self.height * torch.clamp(1 - x.abs() / self.width, min=0)


@dataclass(frozen=True)
class EGRUPseudoDerivative(Surrogate):
    """The EGRU pseudo-derivative (Subramoney et al. 2023, ``SpikeFunction`` in EvNN).

    ``g'(x) = dampening * max(0, 1 - support * |x|)``; defaults of the EGRU class (0.7, 1.0).
    """

    dampening: float = 0.7
    support: float = 1.0

    def derivative(self, x: Tensor) -> Tensor:
        return self.dampening * torch.clamp(1 - self.support * x.abs(), min=0)


SURROGATES: dict[str, type[Surrogate]] = {
    cls.__name__: cls for cls in (ATan, FastSigmoid, Sigmoid, Triangle, EGRUPseudoDerivative)
}


def surrogate_from_description(desc: dict[str, Any]) -> Surrogate:
    """Inverse of :meth:`Surrogate.describe` for the built-in surrogates."""
    if not isinstance(desc, dict) or "kind" not in desc:
        raise ValueError(f"surrogate description must be a dict with 'kind', got {desc!r}")
    params = dict(desc)
    kind = params.pop("kind")
    if kind not in SURROGATES:
        raise ValueError(f"unknown surrogate {kind!r}; known: {', '.join(sorted(SURROGATES))}")
    return SURROGATES[kind](**params)
