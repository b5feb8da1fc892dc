"""Float reference executor: run a :class:`Graph` over time on a batch of inputs.

``simulate(graph, x)`` with ``x`` shaped ``[T, N]`` or ``[T, B, N]`` (or a dict per Input node)
returns ``{output_name: [T, (B,) ...]}``; ``record=True`` returns every node's values.

Vectorised: a node outside any cycle runs over the whole sequence at once (one matmul over
``T x B`` rows, the fused neuron kernels); the nodes of a cycle run a step loop together. Neuron
nodes run neuro's own neuron implementations built from the node's parameters, and synapses the
same kernels as ``neuro.layers``, so a lowered model gives exactly the spikes of its module.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kernels
from .. import neurons as nn_
from . import lm_nodes as LM
from . import nodes as N
from .graph import Graph, GraphError


def has_neuron_module(node: N.Node) -> bool:
    """Whether the node's exact class defines its float semantics as a neuro neuron module
    (``node.neuron()``). A subclass that does not define its own is refused rather than run
    silently with its parent's update."""
    return "neuron" in vars(type(node))


def build_neuron(node: N.Node) -> nn_.Neuron:
    """A neuro neuron with the node's parameters (the float semantics of the node)."""
    if not has_neuron_module(node):
        raise GraphError(f"{node.kind} has no float semantics: its node class defines no neuron()")
    return node.neuron()

def _one_hot_rows(name: str, x: Tensor) -> None:
    ok = bool(((x == 0) | (x == 1)).all()) and bool((x.sum(-1) == 1).all())
    if not ok:
        raise ValueError(f"node {name!r} (Embedding): its input must be one-hot tokens (one 1 per "
                         "step and sample, zeros elsewhere)")


def _embedding(name: str, node: Any, p: dict[str, Tensor], x: Tensor) -> Tensor:
    _one_hot_rows(name, x)
    y = x @ p["weight"]  # the row of each token, exactly (1 * w plus zeros)
    return (y >= 0).to(y.dtype) if node.binary else y


def _token_shift(name: str, node: Any, p: dict[str, Tensor], x: Tensor) -> Tensor:
    prev = torch.cat([torch.zeros_like(x[:1]), x[:-1]], dim=0)
    return x * p["mix"] + prev * (1 - p["mix"])


def _wkv(name: str, node: Any, p: dict[str, Tensor], x: Any) -> Tensor:
    from ..models.spikegpt.wkv import wkv  # the model's own recurrence (C++ kernel or torch)

    k, v = x
    return wkv(p["time_decay"], p["time_first"], k, v)[0]


#: float semantics of the language-model nodes (``neuro.graph.lm_nodes``), ``x [T, B, C]`` (a
#: tuple in port order for nodes with ports)
LM_SEMANTICS: dict[type, Any] = {
    LM.Embedding: _embedding,
    LM.LayerNorm: lambda name, node, p, x: F.layer_norm(x, (x.shape[-1],), p["weight"], p["bias"],
                                                        node.eps),
    LM.TokenShift: _token_shift,
    LM.WKV: _wkv,
    LM.Gate: lambda name, node, p, x: torch.sigmoid(x[0]) * x[1],
    LM.SquaredReLU: lambda name, node, p, x: torch.relu(x).square(),
}


class _Runner:
    """Evaluates one node, over a whole sequence or one step at a time."""

    def __init__(self, name: str, node: N.Node) -> None:
        self.name, self.node = name, node
        self.neuron = build_neuron(node) if has_neuron_module(node) else None
        self.params = {k: torch.from_numpy(np.array(v)) for k, v in node.to_dict().items()
                       if isinstance(v, np.ndarray)}

    # whole sequence: x [T, B, ...]
    def sequence(self, x: Tensor) -> Tensor:
        node: Any  # dispatched on its exact class (``kind``), which mypy does not narrow
        node, p = self.node, self.params
        kind = type(node)
        if self.neuron is not None:
            return self.neuron(x)[0]
        if kind in (N.Affine, N.Linear):
            return kernels.spike_linear(x, p["weight"], p.get("bias"), cpp=kernels.use_cpp(x))
        if kind is N.DelayedAffine:  # same function as DelayedLinear's integer mode
            bias = p["bias"] if bool((p["bias"] != 0).any()) else None
            return kernels.delayed_affine(x, p["weight"], p["delay"], bias)
        if kind is N.Delay:
            return torch.stack([kernels.shift_time(x[..., i], int(d)) for i, d in enumerate(node.delay)], -1)
        if kind in (N.Conv1d, N.Conv2d):
            T, B = x.shape[:2]
            conv = F.conv1d if kind is N.Conv1d else F.conv2d
            y = conv(x.reshape(T * B, *x.shape[2:]), p["weight"], p.get("bias"), node.stride,
                     node.padding, node.dilation, node.groups)
            return y.reshape(T, B, *y.shape[1:])
        if kind in (N.SumPool2d, N.AvgPool2d):  # divisor 1: the plain window sum
            T, B = x.shape[:2]
            y = F.avg_pool2d(x.reshape(T * B, *x.shape[2:]), node.kernel_size, node.stride,
                             node.padding, count_include_pad=True,
                             divisor_override=1 if kind is N.SumPool2d else None)
            return y.reshape(T, B, *y.shape[1:])
        if kind is N.Flatten:
            n = x.dim() - 2
            s, e = node.start_dim % n + 2, node.end_dim % n + 2
            return x.flatten(s, e)
        if kind is N.ChannelAffine:
            return x * p["scale"] + p["shift"]
        if kind is N.Threshold:
            return (x - p["threshold"] >= 0).to(x.dtype)
        if kind in (N.Input, N.Output, LM.Add):
            return x
        if kind in LM_SEMANTICS:
            return LM_SEMANTICS[kind](self.name, node, p, x)
        raise GraphError(f"node {self.name!r}: no float semantics for {node.kind}")

    # one step inside a cycle
    def init(self, batch: tuple[int, ...], shape: tuple[int, ...], dtype) -> Any:
        if self.neuron is not None:
            b = batch if self.neuron.shape else batch + tuple(shape)
            if type(self.node) is N.EGRU:
                b = batch
            return self.neuron.init_state(b, dtype=dtype)
        if type(self.node) in (N.Delay, N.DelayedAffine):
            return []  # history of inputs
        return None

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        node: Any  # dispatched on its exact class, which mypy does not narrow
        node, p = self.node, self.params
        if node.role == "operator":
            raise GraphError(f"node {self.name!r} ({node.kind}) inside a cycle: the float executor "
                             "runs the language-model nodes over whole sequences only")
        if self.neuron is not None:
            return self.neuron.step(x, state)
        if type(node) is N.Linear:
            return x @ p["weight"].t(), state
        if type(node) is N.Affine:
            return x @ p["weight"].t() + p["bias"], state
        if type(node) in (N.Delay, N.DelayedAffine):
            hist = state + [x]
            keep = int(node.delay.max()) + 1
            hist = hist[-keep:]
            seq = torch.stack([torch.zeros_like(x)] * (keep - len(hist)) + hist)
            return self.sequence(seq)[-1], hist
        return self.sequence(x.unsqueeze(0))[0], state


def _as_tensor(name: str, x: Any) -> Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    if not (t.is_floating_point() or t.dtype in (torch.bool, torch.uint8, torch.int32, torch.int64)):
        raise TypeError(f"input {name!r}: unsupported dtype {t.dtype}")
    return t.to(torch.float32)


@torch.no_grad()
def simulate(graph: Graph, inputs: Any, *, record: bool = False,
             record_membranes: bool = False) -> dict[str, Tensor]:
    """Run ``graph`` on ``inputs``; see the module docstring.

    A quantized graph (``graph.metadata["format"]``) runs on the integer executor
    (``neuro.graph.intsim``) and returns int64 tensors. ``record_membranes`` adds
    ``"<neuron>.v"`` (membrane after reset, float graphs only) to the recorded values.
    """
    sched = graph.schedule()
    shapes = graph.infer_shapes()
    in_names = graph.inputs()
    if not isinstance(inputs, dict):
        if len(in_names) != 1:
            raise ValueError(f"the graph has inputs {in_names}: pass a dict name -> array")
        inputs = {in_names[0]: inputs}
    values: dict[str, Tensor] = {}
    x: Tensor | None  # None while a cycle's inputs are summed
    squeeze = None
    for name in in_names:
        if name not in inputs:
            raise ValueError(f"no data for input node {name!r}")
        x = _as_tensor(name, inputs[name])
        want = shapes[name]
        if x.dim() == len(want) + 1:
            x, sq = x.unsqueeze(1), True
        elif x.dim() == len(want) + 2:
            sq = False
        else:
            raise ValueError(f"input {name!r}: expected [T, {', '.join(map(str, want))}] or "
                             f"[T, B, ...], got shape {tuple(x.shape)}")
        if tuple(x.shape[2:]) != want:
            raise ValueError(f"input {name!r}: per-step shape must be {want}, got {tuple(x.shape[2:])}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"input {name!r} holds NaN or infinite values")
        squeeze = sq if squeeze is None else squeeze
        values[name] = x
    if "format" in graph.metadata:
        from .intsim import simulate_int

        ints = {}
        for n, x in values.items():
            if not bool((x == x.round()).all()):
                raise ValueError(f"input {n!r}: a quantized graph takes integer inputs (spikes)")
            ints[n] = x.to(torch.int64).numpy()
        res = simulate_int(graph, ints, record=record, record_membranes=record_membranes)
        return {n: torch.from_numpy(v[:, 0] if squeeze else v) for n, v in res.items()}
    T, B = next(iter(values.values())).shape[:2]
    runners = {n: _Runner(n, graph.nodes[n]) for n in graph.nodes}
    membranes: dict[str, Any] = {}  # a list of steps inside a cycle, then their stack

    for group in sched.groups:
        if not sched.cyclic(group):
            (name,) = group
            if name in values:
                continue
            x = graph.node_input(name, values)
            r = runners[name]
            if record_membranes and r.neuron is not None and type(r.node) is not N.EGRU:
                values[name], trace = r.neuron(x, record=True)
                membranes[f"{name}.v"] = trace.v
            else:
                values[name] = r.sequence(x)
            continue
        # a cycle: step loop over the group's nodes
        states = {n: runners[n].init((B,), shapes[n], torch.float32) for n in group}
        outs: dict[str, list[Tensor]] = {n: [] for n in group}
        prev = {n: torch.zeros(B, *shapes[n]) for n in group}
        for t in range(T):
            cur: dict[str, Tensor] = {}
            for n in group:
                x = None
                for s in graph.predecessors(n):
                    if (s, n) in sched.delayed:
                        v = prev[s]
                    elif s in cur:
                        v = cur[s]
                    else:
                        v = values[s][t]
                    x = v if x is None else x + v
                assert x is not None  # a node in a cycle has a predecessor
                cur[n], states[n] = runners[n].step(x, states[n])
            for n in group:
                outs[n].append(cur[n])
                if record_membranes and hasattr(states[n], "v"):
                    membranes.setdefault(f"{n}.v", []).append(states[n].v)  # type: ignore[union-attr]
            prev = cur
        for n in group:
            values[n] = torch.stack(outs[n])
            if isinstance(membranes.get(f"{n}.v"), list):
                membranes[f"{n}.v"] = torch.stack(membranes[f"{n}.v"])

    values.update(membranes)
    keep = values if record else {n: values[n] for n in graph.outputs()}
    return {n: (v[:, 0] if squeeze else v) for n, v in keep.items()}
