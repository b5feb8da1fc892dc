"""The one neuron contract shared by every model in neuro.

A :class:`Neuron` is an ``nn.Module`` with

* parameters in hardware-meaningful form (per-step decay factors, thresholds, reset mode,
  refractory steps), plus ``dt``, the duration of one step in seconds, for unit conversion;
* ``init_state(batch_shape)`` -> a NamedTuple of tensors;
* ``step(x_t, state) -> (out_t, state)``: one time step, pure with respect to the module;
* ``forward(x, state=None, *, record=False) -> (out, state)`` over a time-first input
  ``[T, B, ...]``. The base class loops over :meth:`step`; a subclass may override
  :meth:`_multi_step` with a fused kernel that must equal the loop. With ``record=True`` the
  returned state holds every step (each field ``[T, B, ...]``) instead of only the last one;
* ``describe()`` -> a plain dict (``kind`` + parameters as Python numbers or nested lists) from
  which the graph IR builds its node without model-specific code.

Shapes: a neuron built with ``shape=(N,)`` (or any tuple) owns per-neuron parameters and checks that
the trailing dimensions of its input equal ``shape``; a neuron built with ``shape=None`` has scalar
parameters and accepts any trailing shape. ``init_state(batch_shape)`` then needs the whole per-step
shape (``(B, N)``), while a shaped neuron takes the batch dimensions only (``(B,)``).
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from ..surrogate import ATan, Surrogate

Shape = tuple[int, ...]


def as_shape(shape: int | Sequence[int] | None) -> Shape | None:
    """Normalise ``shape`` (``None``, an int, or a sequence of positive ints)."""
    if shape is None:
        return None
    if isinstance(shape, int):
        shape = (shape,)
    out = tuple(int(s) for s in shape)
    if not out or any(s <= 0 for s in out):
        raise ValueError(f"neuron shape must be positive integers, got {shape!r}")
    return out


def to_plain(value: Any) -> Any:
    """Tensors and numpy scalars -> Python floats / nested lists (for ``describe()`` and JSON)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return value.item() if value.dim() == 0 else value.tolist()
    return value


class Neuron(nn.Module, abc.ABC):
    """Base class of every spiking (or non-spiking readout) unit. See the module docstring."""

    kind: ClassVar[str] = "Neuron"
    #: NamedTuple type of this neuron's state; set by subclasses.
    State: ClassVar[Any] = NamedTuple  # the subclass's NamedTuple state class

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        surrogate: Surrogate | None = None,
        dt: float = 1e-3,
    ) -> None:
        super().__init__()
        self.shape = as_shape(shape)
        if surrogate is not None and not isinstance(surrogate, Surrogate):
            raise TypeError(
                f"surrogate must be a neuro.surrogate.Surrogate, got {type(surrogate).__name__}"
            )
        self.surrogate = surrogate if surrogate is not None else ATan()
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.dt = float(dt)

    # -- parameters -------------------------------------------------------------------------
    def _param(self, name: str, value: float | Tensor, learn: bool) -> None:
        """Register ``name`` as a Parameter (learn) or buffer, scalar or of ``self.shape``."""
        t = torch.as_tensor(value, dtype=torch.float32).clone()
        if self.shape is not None:
            if t.dim() == 0:
                t = t.expand(self.shape).clone()
            elif tuple(t.shape) != self.shape:
                raise ValueError(
                    f"{type(self).__name__}.{name}: expected a scalar or shape {self.shape}, "
                    f"got shape {tuple(t.shape)}"
                )
        elif t.dim() != 0:
            raise ValueError(
                f"{type(self).__name__}.{name}: per-neuron values need shape=..., "
                f"got a tensor of shape {tuple(t.shape)} with shape=None"
            )
        if learn:
            self.register_parameter(name, nn.Parameter(t))
        else:
            self.register_buffer(name, t)

    # -- the contract -----------------------------------------------------------------------
    def init_state(
        self,
        batch_shape: Sequence[int],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Any:
        """Zero state for ``batch_shape`` (see the module docstring)."""
        full = self._state_shape(batch_shape)
        return self.State(*(torch.zeros(full, device=device, dtype=dtype) for _ in self.State._fields))

    @abc.abstractmethod
    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One time step: ``x[B, ...]`` -> ``(out[B, ...], new_state)``."""

    def forward(
        self, x: Tensor, state: Any | None = None, *, record: bool = False
    ) -> tuple[Tensor, Any]:
        """Run ``x[T, B, ...]`` through time; return ``(out[T, B, ...], state)``."""
        self._check_input(x, multi_step=True)
        if state is None:
            state = self.init_state(self._batch_shape(x.shape[1:]), device=x.device, dtype=x.dtype)
        else:
            self._check_state(state, x.shape[1:], x)
        return self._multi_step(x, state, record)

    def _multi_step(self, x: Tensor, state: Any, record: bool) -> tuple[Tensor, Any]:
        outs, trace = [], []
        for t in range(x.shape[0]):
            out, state = self.step(x[t], state)
            outs.append(out)
            if record:
                trace.append(state)
        if record:
            state = type(state)(*(None if f[0] is None else torch.stack(f) for f in zip(*trace)))
        return torch.stack(outs), state

    def describe(self) -> dict[str, Any]:
        """Plain description ``{"kind": ..., "shape": ..., "dt": ..., ...}`` for the graph IR."""
        return {
            "kind": self.kind,
            "shape": list(self.shape) if self.shape is not None else None,
            "dt": self.dt,
            "surrogate": self.surrogate.describe(),
            **self._describe_params(),
        }

    @abc.abstractmethod
    def _describe_params(self) -> dict[str, Any]:
        """The type-specific part of :meth:`describe`."""

    # -- checks -----------------------------------------------------------------------------
    def _state_shape(self, batch_shape: Sequence[int]) -> Shape:
        batch = tuple(int(b) for b in batch_shape)
        return batch + self.shape if self.shape is not None else batch

    def _batch_shape(self, step_shape: Sequence[int]) -> Shape:
        step_shape = tuple(step_shape)
        return step_shape[: len(step_shape) - len(self.shape)] if self.shape else step_shape

    def _input_shape(self) -> Shape | None:
        """Trailing input dimensions this neuron requires (its own shape unless it has weights)."""
        return self.shape

    def _check_input(self, x: Tensor, *, multi_step: bool) -> None:
        name = type(self).__name__
        want = self._input_shape()
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(
                f"{name}: input must be a floating-point tensor (spikes as 0.0/1.0), got {x.dtype}"
            )
        min_rank = 2 if multi_step else 1
        what = "[T, B, ...] (time first)" if multi_step else "[B, ...]"
        if want is not None:
            min_rank += len(want) - 1
            if tuple(x.shape[-len(want) :]) != want:
                raise ValueError(
                    f"{name}: input's trailing dimensions must be {want}, "
                    f"got input shape {tuple(x.shape)}"
                )
        if x.dim() < min_rank:
            raise ValueError(f"{name}: input must be {what}, got shape {tuple(x.shape)}")

    def _check_state(self, state: Any, step_shape: Sequence[int], x: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(state, self.State):
            raise TypeError(
                f"{name}: state must be a {self.State.__name__}, got {type(state).__name__}"
            )
        want = tuple(step_shape)
        for field, value in zip(state._fields, state):
            if value is None:
                continue
            if tuple(value.shape) != want:
                raise ValueError(
                    f"{name}: state.{field} has shape {tuple(value.shape)} but the input needs "
                    f"{want} (a state from another batch size?)"
                )
            if value.device != x.device:
                raise ValueError(f"{name}: state.{field} is on {value.device}, input on {x.device}")
