"""Lowering: an ``nn.Module`` built from neuro neurons and layers -> :class:`Graph`.

``DelayedLinear`` lowers to ``DelayedAffine`` with the integer delays of its rounded positions
(the float positions of the module are not changed).

Neurons are lowered from their ``describe()`` (no per-model code); synapse layers map to
``Affine``/``Linear``; ``neuro.layers.Recurrent`` becomes a cycle ``in -> neuron``,
``neuron -> Linear(W_rec) -> neuron``. Node names are the module paths (``"0"``, ``"2.recurrent"``).
Training-only options (surrogate, detach_reset, learnability) are recorded in ``metadata`` but do
not change the forward semantics.
"""
from __future__ import annotations

from typing import Any, cast

import numpy as np
from torch import nn

from .. import layers as L
from ..neurons import EGRU as EGRUNeuron
from ..neurons import Neuron
from . import nodes as N
from .graph import Graph, GraphError
from .registry import NODE_TYPES


def neuron_node(desc: dict[str, Any]) -> N.Node:
    """Graph node for a neuron's ``describe()`` output (the node class of its ``kind``)."""
    cls = NODE_TYPES.get(desc["kind"])
    if cls is None or cls.role != "neuron":
        raise GraphError(f"no graph node for neuron kind {desc['kind']!r}")
    return cls.from_description(desc, tuple(desc["shape"]) if desc.get("shape") else None)


def module_node(module: Neuron) -> N.Node:
    """Graph node for a neuro neuron module (its ``describe()``; an EGRU adds its weights and the
    effective thresholds)."""
    desc = module.describe()
    if isinstance(module, EGRUNeuron):
        desc = {**desc, **{k: module.state_dict()[k].detach().cpu().numpy() for k in
                           ("kernel", "recurrent_kernel", "bias", "recurrent_bias")},
                "threshold": module._theta().detach().cpu().numpy()}
    return neuron_node(desc)


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, N.Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.dts: set[float] = set()
        self.training: dict[str, Any] = {}

    def add(self, name: str, node: N.Node, src: str | None) -> str:
        if name in self.nodes:
            raise GraphError(f"duplicate node name {name!r}")
        self.nodes[name] = node
        if src is not None:
            self.edges.append((src, name))
        return name

    def lower(self, module: nn.Module, name: str, src: str) -> str:
        """Add ``module`` fed by node ``src``; return the name of the node producing its output."""
        if isinstance(module, nn.Sequential):  # includes neuro.layers.Sequential
            for child_name, child in module.named_children():
                src = self.lower(child, f"{name}.{child_name}" if name else child_name, src)
            return src
        if isinstance(module, nn.Linear):  # includes neuro.layers.Linear
            w = module.weight.detach().cpu().numpy()
            if module.bias is None:
                return self.add(name, N.Linear(weight=w), src)
            return self.add(name, N.Affine(weight=w, bias=module.bias.detach().cpu().numpy()), src)
        if isinstance(module, L.DelayedLinear):
            w = module.weight.detach().cpu().numpy()
            b = (module.bias.detach().cpu().numpy() if module.bias is not None
                 else np.zeros(module.out_features, np.float32))
            return self.add(name, N.DelayedAffine(weight=w, delay=module.delays().cpu().numpy(), bias=b), src)
        if isinstance(module, L.Recurrent):
            inp = self.lower(module.input, f"{name}.input", src)
            pop = self.lower(module.neuron, f"{name}.neuron", inp)
            rec = self.add(f"{name}.recurrent", N.Linear(weight=module.w_rec.detach().cpu().numpy()), pop)
            self.edges.append((rec, pop))
            return pop
        if isinstance(module, Neuron):
            desc = module.describe()
            self.dts.add(float(desc["dt"]))
            self.training[name] = {k: desc[k] for k in ("surrogate", "detach_reset", "learn_beta",
                                                        "learn_threshold") if k in desc}
            return self.add(name, module_node(module), src)
        if isinstance(module, L.BatchNormTime):
            scale, shift = module.scale_shift()
            return self.add(name, N.ChannelAffine(scale=scale.detach().cpu().numpy(),
                                                  shift=shift.detach().cpu().numpy()), src)
        if isinstance(module, (nn.Identity, nn.Dropout, L.TimeDropout)):
            return src  # no-ops at inference
        raise GraphError(f"cannot lower module {name or '<root>'!r} of type {type(module).__name__}: "
                         "build models from neuro.layers and neuro.neurons")


def _input_size(module: nn.Module) -> int | None:
    """Input width of the first layer in data-flow order."""
    if isinstance(module, nn.Sequential):
        return _input_size(module[0]) if len(module) else None
    if isinstance(module, L.Recurrent):
        return module.input.in_features
    if isinstance(module, (nn.Linear, L.DelayedLinear)):
        return module.in_features
    if isinstance(module, EGRUNeuron):
        return module.input_size
    if isinstance(module, Neuron) and module.shape:
        return int(np.prod(module.shape))
    return None


def from_module(model: nn.Module, *, input_shape: tuple[int, ...] | None = None,
                name: str = "") -> Graph:
    """Lower ``model`` to a validated :class:`Graph` (``input -> ... -> output``)."""
    from .module import GraphModel

    if isinstance(model, GraphModel):
        return model.graph
    if callable(getattr(model, "to_graph", None)):  # a family with its own lowering (SpikeGPT)
        return cast(Graph, model.to_graph())  # type: ignore[operator]
    if callable(getattr(model, "export_view", None)):  # a model family's deployable view
        from ..models.base import export_view

        with export_view(model) as view:
            return _lower(view, input_shape, name)
    return _lower(model, input_shape, name)


def _lower(model: nn.Module, input_shape: tuple[int, ...] | None, name: str) -> Graph:
    if input_shape is None:
        n = _input_size(model)
        if n is None:
            raise GraphError("cannot tell the model's input size: pass input_shape=")
        input_shape = (n,)
    b = _Builder()
    b.add("input", N.Input(shape=tuple(input_shape)), None)
    last = b.lower(model, name, "input")
    b.add("output", N.Output(), last)
    if len(b.dts) > 1:
        raise GraphError(f"the model's neurons use different dt values {sorted(b.dts)}; "
                         "one graph has one time step")
    meta = {"source": type(model).__name__, "training": b.training}
    return Graph(b.nodes, b.edges, dt=b.dts.pop() if b.dts else 1e-3, metadata=meta).validate()
