"""Integer reference executor: a quantized graph, bit for bit in its number format.

Every backend must reproduce these spikes exactly. Arithmetic is int64 numpy; the formats'
registers (24-bit Loihi u/v, s16.15, int16, ...) are modelled by explicit wrap/clip/saturate
(equations in ``neuro.graph.formats``). Synapse sums over whole sequences use float64 matmuls,
which are exact while every partial sum stays below 2^53 (checked).

Values: spikes are 0/1, non-spiking readouts (LI) give their integer membrane, EGRU populations
their graded events ``y`` in s16.15 (``neuro.graph.egru_int``; ``"<name>.v"`` records ``c``); an
EGRU language model's embedding and decoder give rows and integer logits (``neuro.graph.egru_lm_int``).
"""
from __future__ import annotations

from functools import partial
from typing import Any, cast

import numpy as np

from . import egru_int, egru_lm_int
from . import nodes as N
from .formats import NumberFormat
from .graph import Graph, GraphError
from .populations import neuron_bias

#: dense synapse kinds: one integer matmul (exact classes; a subclass is refused)
DENSE = (N.Affine, N.Linear)
#: neuron kinds the integer neuron implements (exact classes; a subclass is refused)
NEURONS = (N.LIF, N.CubaLIF, N.IF, N.LI)


def _shr(x: np.ndarray, k: int | np.ndarray, rounding: str) -> np.ndarray:
    """``x >> k`` rounding toward zero (sign-magnitude) or down (arithmetic shift)."""
    if rounding == "toward_zero":
        return np.sign(x) * (np.abs(x) >> k)
    return x >> k


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return ((x + half) % (1 << bits)) - half


def _lava_wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's current wrap (``AbstractPyLifModelFixed.subthr_dynamics``): > 2^23 -> -2^24, <= -2^23 -> +2^24."""
    m = 1 << 23
    return np.where(x > m, x - 2 * m, np.where(x <= -m, x + 2 * m, x))


def lava_weights(w: np.ndarray) -> np.ndarray:
    """Dense bit-accurate weight handling: clip to 8 bits by sign mode, drop the LSB if mixed."""
    w = w.astype(np.int64)
    if (w >= 0).all():
        return np.clip(w, 0, 255)
    if (w <= 0).all():
        return -np.clip(-w, 0, 255)
    w = np.clip(w, -256, 255)
    return (w >> 1) << 1


#: inputs with at most this fraction of non-zero entries take the event-driven integer sum
EVENT_DENSITY = 0.15


def _matmul_exact(x: np.ndarray, w: np.ndarray, w_t: np.ndarray | None = None,
                  w_t32: np.ndarray | None = None, wmax: int | None = None) -> np.ndarray:
    """Integer ``x @ w.T`` over the last axis, exact. Sparse inputs (spikes): an event-driven
    int64 sum in C++ over the non-zero entries (``w_t = w.T`` contiguous int64 may be passed in).
    Dense inputs: float32 BLAS while every partial sum stays below 2^24 (spikes times 8-bit
    weights), float64 below 2^53, else int64."""
    import torch

    if x.size and _ext_ok() and np.count_nonzero(x) <= EVENT_DENSITY * x.size:
        if w_t is None:
            w_t = np.ascontiguousarray(w.T, dtype=np.int64)
        flat = x.reshape(-1, x.shape[-1])
        xmax = max(int(flat.max()), -int(flat.min()))
        wmax = int(np.abs(w_t).max(initial=0)) if wmax is None else wmax
        if xmax * flat.shape[1] * wmax < 2**31:  # every partial sum fits int32: accumulate there
            w_t = w_t32 if w_t32 is not None else w_t.astype(np.int32)  # (exact, 2x SIMD width)
        y = torch.ops.neuro_ops.int_event_matmul(
            torch.from_numpy(np.ascontiguousarray(flat, dtype=np.int64)), torch.from_numpy(w_t))
        return y.numpy().reshape(*x.shape[:-1], w.shape[0])
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).sum(1).max(initial=0))
    for dtype, limit in ((torch.float32, 2**24), (torch.float64, 2**53)):
        if bound < limit:  # torch's GEMM; every partial sum is an exactly representable integer
            y = torch.from_numpy(np.ascontiguousarray(x)).to(dtype) @ torch.from_numpy(w).to(dtype).t()
            return y.round().to(torch.int64).numpy()
    return x.astype(np.int64) @ w.T.astype(np.int64)


def _conv2d_exact(x: np.ndarray, w: np.ndarray, node: Any) -> np.ndarray:
    """Integer cross-correlation of ``x [T, B, C, H, W]`` with the integer kernel ``w``
    (``Conv2d``'s geometry, zero padding; the bias is added to the membrane by the neuron),
    exact: torch's float64 convolution, every partial sum an integer below 2^53 (checked;
    ``GraphError`` beyond)."""
    import torch
    import torch.nn.functional as F

    T, B = x.shape[:2]
    flat = x.reshape(T * B, *x.shape[2:])
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).reshape(w.shape[0], -1).sum(1).max(initial=0))
    if bound >= 2**53:
        raise GraphError(f"Conv2d: partial sums up to {bound:.3g} exceed the exact range 2^53")
    y = F.conv2d(torch.from_numpy(np.ascontiguousarray(flat, np.float64)),
                 torch.from_numpy(np.ascontiguousarray(w, np.float64)), None, node.stride,
                 node.padding, node.dilation, node.groups)
    return y.round().to(torch.int64).numpy().reshape(T, B, *y.shape[1:])


def _sumpool2d_exact(x: np.ndarray, node: Any) -> np.ndarray:
    """Integer window sums of ``x [T, B, C, H, W]`` (``SumPool2d``, zero padding), exact."""
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    xp = np.pad(np.asarray(x, np.int64), [(0, 0)] * 3 + [(ph, ph), (pw, pw)])
    H, W = xp.shape[-2:]
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((*x.shape[:3], Ho, Wo), np.int64)
    for a in range(kh):
        for b in range(kw):
            out += xp[..., a:a + sh * (Ho - 1) + 1:sh, b:b + sw * (Wo - 1) + 1:sw]
    return out


class _IntRunner:
    #: the node's fields are read by its exact class (``type(node)``), which mypy does not narrow
    node: Any

    def __init__(self, name: str, node: Any, fmt: NumberFormat, bias: np.ndarray | None) -> None:
        self.name, self.node, self.fmt = name, node, fmt
        self.trace: list[np.ndarray] | None = None  # membrane after reset, per step, when recording
        self.compiled = True  # whole-sequence neurons use the C++ kernel when it is available
        self.bias = bias  # summed integer bias of the incoming synapses (v units), or None
        self.lm_call: Any = None  # EGRU LM embedding or graded readout (egru_lm_int), set by simulate_int
        if node.role == "synapse" and node.has_integer_form:
            w = node.weight
            if not np.issubdtype(w.dtype, np.integer):
                raise GraphError(f"node {name!r} ({node.kind}): field 'weight' is not integer; "
                                 "run neuro.graph.quantize first")
            self.w = lava_weights(w) if fmt.family == "loihi" else w.astype(np.int64)
            self.w_t = np.ascontiguousarray(self.w.T) if self.w.ndim == 2 else self.w
            self.wmax = int(np.abs(self.w).max(initial=0))
            self.w_t32 = self.w_t.astype(np.int32) if self.wmax < 2**31 else None
        if type(node) is N.EGRU:
            self.cell = egru_int.Cell(name, node)
            self.k = np.ascontiguousarray(np.asarray(node.kernel, np.int64))  # [in, 3H]
            self.r = np.ascontiguousarray(np.asarray(node.recurrent_kernel, np.int64))  # [H, 3H]
        if type(node) in NEURONS and node.q is None:
            raise GraphError(f"node {name!r} ({node.kind}): no integer parameters (field 'q'); "
                             "run neuro.graph.quantize first")

    # -- synapses ---------------------------------------------------------------------------
    def _shift_exp(self, a: np.ndarray) -> np.ndarray:
        e = self.node.weight_exp
        if e == 0:
            return a
        return a << e if e > 0 else a >> -e

    def sequence(self, x: np.ndarray) -> np.ndarray:
        node = self.node
        kind = type(node)
        if node.role in ("input", "output"):
            return x
        if self.lm_call is not None:
            return self.lm_call(x)
        if kind in DENSE:
            return self._shift_exp(_matmul_exact(x, self.w, self.w_t, self.w_t32, self.wmax))
        if kind is N.DelayedAffine:
            out = np.zeros((*x.shape[:-1], self.w.shape[0]), np.int64)
            for d in np.unique(node.delay):
                out += _matmul_exact(_shift(x, int(d)), self.w * (node.delay == d))
            return self._shift_exp(out)
        if kind is N.Delay:
            return np.stack([_shift(x[..., i], int(d)) for i, d in enumerate(node.delay)], -1)
        if kind is N.Conv2d:
            return self._shift_exp(_conv2d_exact(x, self.w, node))
        if kind is N.SumPool2d:
            return _sumpool2d_exact(x, node)
        if kind is N.Flatten:
            n = x.ndim - 2
            s, e = node.start_dim % n + 2, node.end_dim % n + 2
            return x.reshape(*x.shape[:s], -1, *x.shape[e + 1:])
        if kind is N.EGRU:
            return self._egru(x)
        if kind in NEURONS:
            if self.compiled and _ext_ok():
                return self._compiled(x)
            state = self.init(x.shape[1:])
            out = np.empty_like(x)
            for t in range(x.shape[0]):
                out[t], state = self.step(x[t], state)
            return out  # self.trace holds v when recording
        raise GraphError(f"node {self.name!r}: {node.kind} has no integer form yet")

    # -- stateful step ----------------------------------------------------------------------------
    def init(self, shape: tuple[int, ...]) -> Any:
        if type(self.node) in NEURONS:
            z = np.zeros(shape, np.int64)
            return (z, z.copy())  # (current u / i, voltage v)
        if type(self.node) in (N.Delay, N.DelayedAffine):
            return []
        return None

    def step(self, a: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        q: Any  # set on every neuron (checked in __init__); unused otherwise
        node, fmt, q = self.node, self.fmt, getattr(self.node, "q", None)
        if type(node) in (N.Delay, N.DelayedAffine):
            hist = (state + [a])[-(int(node.delay.max()) + 1):]
            seq = np.stack([np.zeros_like(a)] * (int(node.delay.max()) + 1 - len(hist)) + hist)
            return self.sequence(seq)[-1], hist
        if type(node) not in NEURONS:
            return self.sequence(a[None])[0], state
        u, v = state
        bias = 0 if self.bias is None else self.bias
        spiking = node.spiking
        if fmt.family == "loihi":
            du, dv = np.asarray(q["du"]), np.asarray(q["dv"])
            u = _shr(u * (4096 - (du + 1)), 12, "toward_zero") + (a << fmt.input_shift)
            u = _lava_wrap24(u)
            v = _shr(v * (4096 - dv), 12, "toward_zero") + u + bias
            lim = (1 << 23) - 1
            v = np.clip(v, -lim, lim)
            if not spiking:
                return self._out(v, u, v)
            s = v > (int(q["vth"]) << fmt.threshold_shift)
            v = np.where(s, 0, v)
            return self._out(s.astype(np.int64), u, v)
        # fixed family
        if type(node) is N.CubaLIF:
            u = self._decay(u, q, "alpha") + a
            u = self._overflow(u)
            x = u
        else:
            x = a
        v = self._overflow(self._decay(v, q, "beta") + x + bias)
        if not spiking:
            return self._out(v, u, v)
        vth = np.asarray(q["vth"], np.int64)
        s = v >= vth if fmt.spike_rule == "ge" else v > vth
        v = np.where(s, 0 if node.reset == "zero" else v - vth, v)
        return self._out(s.astype(np.int64), u, v)

    def kernel_args(self, shape: tuple[int, ...]) -> tuple[list[Any], list[Any]]:
        """``(tensors [bias, p0, p1, vth], flags)`` of the C++ integer neuron for this node."""
        import torch

        node, fmt, q = self.node, self.fmt, self.node.q
        M = int(np.prod(shape))

        def full(v: Any) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(
                np.broadcast_to(np.asarray(v, np.int64), shape)).reshape(M).copy())

        spiking = node.spiking
        cuba = type(node) is N.CubaLIF
        if fmt.family == "loihi":
            p0, p1, family, mode = full(q["du"]), full(q["dv"]), 0, 0
        else:
            key = "m" if fmt.decay == "mantissa" else "shift"
            p0 = full(q[f"beta_{key}"])
            p1 = full(q[f"alpha_{key}"] if cuba else 0)
            family, mode = 1, (0 if fmt.decay == "mantissa" else 1)
        tensors = [full(0 if self.bias is None else self.bias), p0, p1,
                   full(q["vth"] if spiking else 0)]
        flags = [family, cuba, spiking, mode, fmt.decay_bits, fmt.rounding == "toward_zero",
                 fmt.overflow == "saturate", fmt.state_bits, fmt.spike_rule == "ge",
                 getattr(node, "reset", "zero") == "subtract"]
        return tensors, flags

    def _compiled(self, x: np.ndarray) -> np.ndarray:
        """The whole sequence in the C++ kernel (``int_lif_forward``): same arithmetic as step()."""
        import torch

        T, shape = x.shape[0], x.shape[1:]
        tensors, flags = self.kernel_args(shape)
        xt = torch.from_numpy(np.ascontiguousarray(x.reshape(T, -1), dtype=np.int64))
        out, vtr = torch.ops.neuro_ops.int_lif_forward(xt, *tensors, *flags)
        if self.trace is not None:
            self.trace.extend(vtr.numpy().reshape(T, *shape))
        return out.numpy().reshape(T, *shape)

    def _egru(self, x: np.ndarray) -> np.ndarray:
        """The integer EGRU over ``x [T, B, in]`` -> graded events ``y [T, B, H]``
        (``neuro.graph.egru_int``); the input sums of every step in one exact matmul."""
        cell = self.cell
        ax = cell.gates_x(_matmul_exact(x, self.k.T, self.k))
        T, B = x.shape[:2]
        y = np.zeros((T, B, cell.H), np.int64)
        prev = np.zeros((B, cell.H), np.int64)
        c = np.zeros((B, cell.H), np.int64)
        for t in range(T):
            live = np.flatnonzero(prev.any(0))  # units with an event in some sample: their rows
            bh = cell.gates_h(prev[:, live] @ self.r[live])  # exact int64
            prev, c = cell.step(ax[t], bh, c)
            y[t] = prev
            if self.trace is not None:
                self.trace.append(c)
        return y

    def _out(self, out: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, Any]:
        if self.trace is not None:
            self.trace.append(v)
        return out, (u, v)

    def _decay(self, v: np.ndarray, q: dict[str, Any], which: str) -> np.ndarray:
        fmt = self.fmt
        if fmt.decay == "mantissa":
            return _shr(v * np.asarray(q[f"{which}_m"], np.int64), fmt.decay_bits, fmt.rounding)
        k = np.asarray(q[f"{which}_shift"], np.int64)
        return np.where(k == 0, v, v - _shr(v, np.maximum(k, 1), fmt.rounding))

    def _overflow(self, v: np.ndarray) -> np.ndarray:
        fmt = self.fmt
        if fmt.overflow == "wrap":
            return _wrap(v, fmt.state_bits)
        return np.clip(v, -fmt.state_max - 1, fmt.state_max)


def _compiled_recurrence(graph: Graph, group: list[str], sched: Any, values: dict[str, np.ndarray],
                         runners: dict[str, _IntRunner], shapes: dict[str, tuple[int, ...]]
                         ) -> dict[str, np.ndarray] | None:
    """A population with one recurrent synapse (``in -> n``, ``n -> W -> n``) in the C++ kernel;
    None when ``group`` has another shape (it then runs the numpy step loop)."""
    import torch

    neurons = [n for n in group if type(graph.nodes[n]) in NEURONS]
    syns = [n for n in group if type(graph.nodes[n]) in DENSE]
    if len(group) != 2 or len(neurons) != 1 or len(syns) != 1:
        return None
    n, r = neurons[0], syns[0]
    if graph.predecessors(r) != [n] or (n, r) not in sched.delayed or len(shapes[n]) != 1:
        return None
    ext = [p for p in graph.predecessors(n) if p != r]
    if not ext:
        return None
    a_ext = values[ext[0]]
    for p in ext[1:]:
        a_ext = a_ext + values[p]
    runner = runners[n]
    tensors, flags = runner.kernel_args(shapes[n])
    w_t = torch.from_numpy(np.ascontiguousarray(runners[r].w.T, dtype=np.int64))
    out, vtr = torch.ops.neuro_ops.int_recurrent_lif_forward(
        torch.from_numpy(np.ascontiguousarray(a_ext, dtype=np.int64)), w_t,
        cast(Any, graph.nodes[r]).weight_exp, *tensors, *flags)
    out_np = out.numpy()
    if runner.trace is not None:
        runner.trace.extend(vtr.numpy())
    # the synapse's values (W applied to the previous step's output), as the step loop records them
    prev = np.concatenate([np.zeros_like(out_np[:1]), out_np[:-1]])
    return {n: out_np, r: runners[r].sequence(prev)}


def _readout(ro: egru_lm_int.Readout, r: _IntRunner, y: np.ndarray) -> np.ndarray:
    """An EGRU LM decoder (``egru_lm_int.Readout``) with the exact matmul of the synapses."""
    return ro.finish(_matmul_exact(y, r.w, r.w_t, r.w_t32, r.wmax))


def _ext_ok() -> bool:
    from ..kernels import _ext

    return _ext.load()


def _shift(x: np.ndarray, d: int) -> np.ndarray:
    if d == 0:
        return x
    out = np.zeros_like(x)
    if d < x.shape[0]:
        out[d:] = x[:-d]
    return out


def simulate_int(graph: Graph, inputs: dict[str, np.ndarray], *, record: bool = False,
                 record_membranes: bool = False, compiled: bool = True) -> dict[str, np.ndarray]:
    """Run a quantized ``graph`` on integer inputs ``{input_name: [T, B, ...]}``.

    ``record_membranes`` adds ``"<neuron>.v"``: the integer membrane after reset at every step.
    ``compiled=False`` steps every neuron in numpy (the same arithmetic; used to test the kernel).
    """
    if "spikegpt_int" in graph.metadata:  # the integer SpikeGPT (neuro.graph.spikegpt_int)
        from .spikegpt_int import simulate_spikegpt_int

        return simulate_spikegpt_int(graph, inputs, record=record,
                                     record_membranes=record_membranes)
    fmt = NumberFormat.from_dict(graph.metadata["format"])
    sched = graph.schedule()
    shapes = graph.infer_shapes()
    values: dict[str, np.ndarray] = {k: np.asarray(v, np.int64) for k, v in inputs.items()}
    T, B = next(iter(values.values())).shape[:2]
    runners: dict[str, _IntRunner] = {}
    for name, node in graph.nodes.items():
        bias = None
        if type(node) in NEURONS:  # synapse biases are in v units, added to v
            bias = neuron_bias(graph, name, np.int64)
        runners[name] = _IntRunner(name, node, fmt, bias)
        runners[name].compiled = compiled
        if record_membranes and type(node) in (*NEURONS, N.EGRU):
            runners[name].trace = []
    lm = egru_lm_int.registers(graph)
    for name in lm["embedding"]:
        runners[name].lm_call = partial(egru_lm_int.embed, name, np.asarray(cast(Any, graph.nodes[name]).weight))
    for name, regs in lm["readout"].items():
        ro = egru_lm_int.Readout(name, graph.nodes[name], regs)
        runners[name].lm_call = partial(_readout, ro, runners[name])
    for group in sched.groups:
        if not sched.cyclic(group):
            (name,) = group
            if name in values:
                continue
            x = graph.input_sum(name, values)
            values[name] = runners[name].sequence(x)
            continue
        if compiled and _ext_ok():
            done = _compiled_recurrence(graph, group, sched, values, runners, shapes)
            if done is not None:
                values.update(done)
                continue
        states = {n: runners[n].init((B, *shapes[n])) for n in group}
        outs = {n: np.empty((T, B, *shapes[n]), np.int64) for n in group}
        prev = {n: np.zeros((B, *shapes[n]), np.int64) for n in group}
        for t in range(T):
            cur: dict[str, np.ndarray] = {}
            for n in group:
                x = None
                for s in graph.predecessors(n):
                    val = prev[s] if (s, n) in sched.delayed else (cur[s] if s in cur else values[s][t])
                    x = val if x is None else x + val
                cur[n], states[n] = runners[n].step(x, states[n])
                outs[n][t] = cur[n]
            prev = cur
        values.update(outs)
    for n, r in runners.items():
        if r.trace:
            values[f"{n}.v"] = np.stack(r.trace)
    return values if record else {n: values[n] for n in graph.outputs()}
