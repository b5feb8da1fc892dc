"""The population view of a graph: neuron populations, the synapses feeding them, projections.

Every integer target (quantize, Loihi, SpiNNaker) sees a network the same way, so the partition
lives here once:

* a **population** is a neuron node (``role == "neuron"``) together with the synapse nodes
  (``role == "synapse"``) that feed it (none for a population that ``owns_weights``, EGRU: its
  inputs are Inputs or populations directly); a synapse feeds exactly one population (per-channel
  rescalings after it, ``folds_into_synapse``, are skipped: quantize folds them into it);
* a **projection** is one synapse seen from its source: the ``Input`` or population whose values
  reach the synapse through pass-through nodes (``role == "structural"``: ``Delay``, ``Flatten``,
  ``SumPool2d``; :func:`projection_synapses` gives a projection as explicit synapse rows),
  the per-channel delay those ``Delay`` nodes add, and whether the edge leaving the source is
  delivered one step later (a recurrent edge inside a cycle, ``Graph.schedule().delayed``). A
  synapse summing several paths has one projection per path;
* an **output** reads one population or ``Input`` through pass-through nodes.

Whatever does not fit this shape is listed in ``Populations.problems`` as ``(node, message)``:
``node`` is the node out of place, so a backend that already refuses that node's kind can drop
the follow-up message. The view is structural only; which kinds and options a target runs is
the target's own ``supports()``.

Also here, shared by quantize and the backends: :func:`fold_channel_affines` (fold every
ChannelAffine into its synapse), :func:`neuron_problems` (what a number format or a target's
registers cannot express of a neuron node) and :func:`neuron_bias` (the summed bias of a
population's synapses, added to its membrane).

Latency alignment is not shared: Loihi pads entering synapses with DelayDense steps per
strongly connected group, the SpiNNaker simulator shifts each population's start tick and lets
synaptic delays absorb the difference (see their modules); the two solve different problems.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from . import nodes as N
from .formats import NumberFormat
from .graph import Graph, GraphError

#: synapse kinds whose weights are ``[out, in]`` matrices a per-channel scale can fold into
_FOLDABLE = (N.Affine, N.Linear, N.DelayedAffine)


@dataclass
class Chain:
    """A path into a consumer node from ``origin``, through the pass-through nodes ``path``
    (nearest the consumer first). ``delay`` [consumer's input channels]: steps added by the
    ``Delay`` nodes on the way; ``delayed_edge``: the edge leaving ``origin`` delivers the
    previous step's value (a recurrent edge)."""

    origin: str
    path: tuple[str, ...]
    delay: np.ndarray
    delayed_edge: bool


@dataclass
class Projection:
    """Synapse node ``synapse`` from population (or Input) ``source`` to population ``target``;
    ``delay`` per source channel (steps of ``Delay`` nodes on the way), ``recurrent``: the
    reference executor delivers the source's previous step, ``path``: the pass-through nodes."""

    synapse: str
    source: str
    target: str
    delay: np.ndarray
    recurrent: bool
    path: tuple[str, ...] = ()


@dataclass
class Populations:
    """The partition of a graph (module docstring)."""

    inputs: list[str]
    neurons: dict[str, list[str]]                     # neuron node -> synapse nodes feeding it
    projections: list[Projection]
    outputs: dict[str, str]                           # Output node -> population or Input it reads
    output_chains: dict[str, Chain] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def messages(self, skip: Collection[str] = ()) -> list[str]:
        """Problem messages, without those about the nodes in ``skip`` (already refused)."""
        drop = set(skip)
        return [m for n, m in self.problems if n not in drop]


def _is_source(node: N.Node) -> bool:
    return node.role in ("input", "neuron")


def _is_pass_through(node: N.Node) -> bool:
    return node.role == "structural" and not node.folds_into_synapse


def chains(graph: Graph, consumer: str, delayed: set[tuple[str, str]],
           shapes: dict[str, tuple[int, ...]]) -> list[Chain]:
    """Every path into ``consumer``, walked back through pass-through nodes to the first node
    that is not one (an Input, a population, or something out of place)."""
    out: list[Chain] = []

    def walk(name: str, child: str, path: tuple[str, ...], acc: np.ndarray) -> None:
        node = graph.nodes[name]
        if not _is_pass_through(node):
            out.append(Chain(name, path, acc, (name, child) in delayed))
            return
        if node.stateful:  # a Delay node: its per-channel delay
            acc = acc + np.asarray(cast(Any, node).delay).reshape(-1).astype(np.int64)
        for p in graph.predecessors(name):
            walk(p, name, (*path, name), acc)

    for p in graph.predecessors(consumer):
        walk(p, consumer, (), np.zeros(int(np.prod(shapes[p])), np.int64))
    return out


def synapse_target(graph: Graph, synapse: str) -> list[str]:
    """The nodes a synapse's values reach, past per-channel rescalings folded into it."""
    succ = graph.successors(synapse)
    while len(succ) == 1 and graph.nodes[succ[0]].folds_into_synapse:
        succ = graph.successors(succ[0])
    return succ


def partition(graph: Graph) -> Populations:
    """The population view of ``graph`` (float or quantized; module docstring)."""
    sched = graph.schedule()
    shapes = graph.infer_shapes()
    nodes = graph.nodes
    problems: list[tuple[str, str]] = []
    inputs = [n for n, node in nodes.items() if node.role == "input"]
    neurons: dict[str, list[str]] = {n: [] for n, node in nodes.items() if node.role == "neuron"}
    for n in neurons:
        for p in graph.predecessors(n):
            pn = nodes[p]
            if nodes[n].owns_weights:  # EGRU: its own input weights read the source directly
                if not _is_source(pn):
                    problems.append((p, f"node {n!r} ({nodes[n].kind}): input {p!r} ({pn.kind}) "
                                        "is not an Input or a population; the population holds "
                                        "its own input weights"))
                continue
            if pn.role != "synapse" and not pn.folds_into_synapse:
                problems.append((p, f"node {n!r} ({nodes[n].kind}): input {p!r} ({pn.kind}) is not "
                                    "a synapse; a neuron population takes synapse inputs"))
    projections: list[Projection] = []
    for s, node in nodes.items():
        if node.role != "synapse":
            continue
        succ = synapse_target(graph, s)
        if len(succ) != 1 or nodes[succ[0]].role != "neuron":
            problems.append((succ[0] if len(succ) == 1 else s,
                             f"node {s!r} ({node.kind}): a synapse must feed exactly one neuron "
                             f"population, it feeds {succ}"))
            continue
        target = succ[0]
        neurons[target].append(s)
        for c in chains(graph, s, sched.delayed, shapes):
            if not _is_source(nodes[c.origin]):
                problems.append((c.origin, f"node {c.origin!r} ({nodes[c.origin].kind}) feeds synapse "
                                           f"{s!r}: a synapse's input must come from an Input or a "
                                           "neuron population, through Delay/Flatten/SumPool2d "
                                           "nodes only"))
                continue
            projections.append(Projection(s, c.origin, target, c.delay, c.delayed_edge, c.path))
    outputs: dict[str, str] = {}
    output_chains: dict[str, Chain] = {}
    for o in graph.outputs():
        cs = chains(graph, o, sched.delayed, shapes)
        if len(cs) != 1 or not _is_source(nodes[cs[0].origin]):
            subject = cs[0].origin if len(cs) == 1 else o
            problems.append((subject, f"output {o!r}: must read one population or Input (through "
                                      f"Delay/Flatten nodes only); it reads {[c.origin for c in cs]}"))
            continue
        outputs[o], output_chains[o] = cs[0].origin, cs[0]
    return Populations(inputs, neurons, projections, outputs, output_chains, problems)


# ------------------------------------------------------------------------------ shared helpers
def fold_channel_affines(g: Graph) -> None:
    """Fold every ``ChannelAffine`` into the synapse before it (in place): ``W' = W * scale``,
    ``b' = b * scale + shift`` (a Linear becomes an Affine)."""
    for name in [n for n, node in g.nodes.items() if node.folds_into_synapse]:
        node = g.nodes[name]
        if type(node) is not N.ChannelAffine:
            raise GraphError(f"node {name!r} ({node.kind}): no rule folds {node.kind} into a synapse")
        preds = g.predecessors(name)
        syn: Any = g.nodes[preds[0]] if len(preds) == 1 else None
        if type(syn) not in _FOLDABLE or g.successors(preds[0]) != [name]:
            raise GraphError(f"node {name!r} (ChannelAffine): only a scale directly after a synapse "
                             "has an integer form (it is folded into that synapse)")
        s, b = node.scale.astype(np.float64), node.shift.astype(np.float64)
        w = syn.weight.astype(np.float64) * s[:, None]
        bias = getattr(syn, "bias", np.zeros(len(s)))
        new_bias = (np.asarray(bias, np.float64) * s + b).astype(np.float32)
        src = preds[0]
        if type(syn) is N.Linear:
            g.nodes[src] = N.Affine(weight=w.astype(np.float32), bias=new_bias)
        else:
            syn.weight, syn.bias = w.astype(np.float32), new_bias
        g.edges = [(src, d) if s_ == name else (s_, d) for s_, d in g.edges if d != name]
        del g.nodes[name]


def fold_avg_pools(g: Graph) -> None:
    """Replace every ``AvgPool2d`` by a ``SumPool2d`` and fold its ``1 / (kh kw)`` into the
    synapse it feeds (in place): ``W' = W / (kh kw)``, exact in real arithmetic; the integer
    formats then quantize ``W'`` (an integer mean would need a division that no power-of-two
    shift gives exactly for a 3x3 window). The pool must feed exactly one synapse, through
    ``Flatten`` nodes only, and be that synapse's only input (``GraphError`` naming it)."""
    for name in [n for n, node in g.nodes.items() if type(node) is N.AvgPool2d]:
        pool: Any = g.nodes[name]
        cur, succ = name, g.successors(name)
        while len(succ) == 1 and type(g.nodes[succ[0]]) is N.Flatten and \
                g.predecessors(succ[0]) == [cur]:
            cur, succ = succ[0], g.successors(succ[0])
        syn: Any = g.nodes[succ[0]] if len(succ) == 1 else None
        if syn is None or syn.role != "synapse" or g.predecessors(succ[0]) != [cur] \
                or not np.issubdtype(np.asarray(syn.weight).dtype, np.floating):
            raise GraphError(f"node {name!r} (AvgPool2d): its integer form folds 1/(kh kw) into "
                             "the one synapse it feeds (through Flatten nodes), which it does not "
                             f"here (it feeds {succ})")
        k = float(np.prod(pool.kernel_size))
        syn.weight = (syn.weight.astype(np.float64) / k).astype(np.float32)
        g.nodes[name] = N.SumPool2d(kernel_size=pool.kernel_size, stride=pool.stride,
                                    padding=pool.padding)


def _pool_map(node: Any, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(out_idx, in_idx)``: every (output, input) pair of a ``SumPool2d`` window (flat indices
    over ``[C, H, W]``; padding cells have no input)."""
    C, H, W = in_shape
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    c, i, j, a, b = np.meshgrid(np.arange(C), np.arange(Ho), np.arange(Wo), np.arange(kh),
                                np.arange(kw), indexing="ij")
    y, x = i * sh + a - ph, j * sw + b - pw
    ok = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    return ((c * Ho + i) * Wo + j)[ok], ((c * H + y) * W + x)[ok]


def conv2d_synapses(node: Any, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(post, pre, weight)``: the explicit synapses of a ``Conv2d`` node on input ``[C, H, W]``
    (flat indices of its output ``[Cout, Ho, Wo]`` and input), one per non-zero kernel entry
    and output pixel whose receptive cell lies inside the input (zero padding has no synapse)."""
    C, H, W = in_shape
    w = np.asarray(node.weight)
    Co, Cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw), g = node.stride, node.padding, node.dilation, node.groups
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    o, c, a, b = np.nonzero(w)
    vals = w[o, c, a, b]
    cin = (o // (Co // g)) * Cg + c
    i, j = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
    i, j = i.reshape(1, -1), j.reshape(1, -1)
    y, x = i * sh + a[:, None] * dh - ph, j * sw + b[:, None] * dw - pw
    ok = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    post = (o[:, None] * Ho + i) * Wo + j
    pre = (cin[:, None] * H + y) * W + x
    return post[ok], pre[ok], np.broadcast_to(vals[:, None], ok.shape)[ok]


def projection_synapses(graph: Graph, pr: Projection, shapes: dict[str, tuple[int, ...]]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(post, pre, weight, delay)``: projection ``pr`` as explicit synapses from the source's
    channels (flat) to the target's, non-zero weights only, for targets that store synapse rows.

    The synapse node gives its entries (``Affine``/``Linear``/``DelayedAffine``: the non-zero
    ``W[o, i]``; ``Conv2d``: :func:`conv2d_synapses`), then the pass-through nodes on the path
    are composed in: ``Flatten``/``Delay`` keep the index, a ``SumPool2d`` maps each pooled cell to
    the cells of its window (weight unchanged: the sum is linear). Entries that meet on the same
    ``(post, pre, delay)`` add up. ``delay``: the ``DelayedAffine`` delay plus the path's ``Delay``
    steps (not the recurrent step)."""
    node: Any = graph.nodes[pr.synapse]
    in_shape = tuple(shapes[graph.predecessors(pr.synapse)[0]])
    if type(node) is N.Conv2d:
        post, mid, w = conv2d_synapses(node, in_shape)
        d = np.zeros(post.size, np.int64)
    else:
        wm = np.asarray(node.weight)
        post, mid = np.nonzero(wm)
        w = wm[post, mid]
        d = (np.asarray(node.delay)[post, mid].astype(np.int64) if type(node) is N.DelayedAffine
             else np.zeros(post.size, np.int64))
    d = d + np.asarray(pr.delay, np.int64)[mid]
    pooled = False
    for p in pr.path:  # nearest the synapse first
        pn: Any = graph.nodes[p]
        if type(pn) in (N.SumPool2d, N.AvgPool2d):  # (a float AvgPool2d: its mean, 1/(kh kw))
            m_out, m_in = _pool_map(pn, tuple(shapes[graph.predecessors(p)[0]]))
            if type(pn) is N.AvgPool2d:
                w = w / float(np.prod(pn.kernel_size))
            order = np.argsort(m_out, kind="stable")
            m_out, m_in = m_out[order], m_in[order]
            lo, hi = np.searchsorted(m_out, mid, "left"), np.searchsorted(m_out, mid, "right")
            cnt = hi - lo
            rep = np.repeat(np.arange(mid.size), cnt)
            idx = np.repeat(lo, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            post, mid, w, d = post[rep], m_in[idx], w[rep], d[rep]
            pooled = True
    if pooled and post.size:  # sum the entries that meet
        n_pre = int(np.prod(shapes[pr.source]))
        nd = int(d.max(initial=0)) + 1
        key = (post.astype(np.int64) * n_pre + mid) * nd + d
        uniq, inv = np.unique(key, return_inverse=True)
        acc = np.bincount(inv, weights=w.astype(np.float64), minlength=uniq.size)
        if np.issubdtype(w.dtype, np.integer):  # integer sums: exact below 2^53
            acc = np.round(acc).astype(np.int64)
        keep = acc != 0
        uniq, w = uniq[keep], acc[keep]
        post, mid, d = uniq // (n_pre * nd), (uniq // nd) % n_pre, uniq % nd
    return post.astype(np.int64), mid.astype(np.int64), w, d.astype(np.int64)


def pool_overlap(graph: Graph, name: str) -> int:
    """The most pooling windows that one source cell of synapse ``name`` lies in, over the
    ``SumPool2d`` nodes on its input path (``prod ceil(k / s)`` per pool; 1 without overlap).
    A weight of :func:`projection_synapses`' rows is at most this many kernel weights summed, so
    quantize keeps ``overlap x |W|`` inside the format's weight range."""
    m = 1
    cur = graph.predecessors(name)
    while len(cur) == 1 and _is_pass_through(graph.nodes[cur[0]]):
        pn: Any = graph.nodes[cur[0]]
        if type(pn) in (N.SumPool2d, N.AvgPool2d):
            m *= int(np.prod([-(-k // st) for k, st in zip(pn.kernel_size, pn.stride)]))
        cur = graph.predecessors(cur[0])
    return m


def synapse_abs_rowsum(graph: Graph, name: str) -> float:
    """The largest sum of ``|W|`` over the inputs of one neuron fed by synapse ``name``, times
    the window of every ``SumPool2d`` in front of it (each input then carries up to that many
    spikes per step): the membrane bound of quantize without calibration data."""
    node: Any = graph.nodes[name]
    w = np.abs(np.asarray(node.weight, np.float64))
    row = float(w.reshape(w.shape[0], -1).sum(1).max(initial=0))
    cur = graph.predecessors(name)
    while len(cur) == 1 and _is_pass_through(graph.nodes[cur[0]]):
        pn: Any = graph.nodes[cur[0]]
        if type(pn) is N.SumPool2d:
            row *= int(np.prod(pn.kernel_size))
        cur = graph.predecessors(cur[0])
    return row


def input_decay_synapses(g: Graph, name: str) -> list[str] | None:
    """The synapses an ``LIF``'s input decay folds into: every predecessor of ``name``, when each
    is a Linear/Affine/DelayedAffine feeding only ``name``; None when the fold is not possible."""
    preds = g.predecessors(name)
    if type(g.nodes[name]) is not N.LIF or not preds:
        return None
    if all(type(g.nodes[p]) in _FOLDABLE and g.successors(p) == [name] for p in preds):
        return preds
    return None


def fold_input_decay(g: Graph) -> None:
    """Fold every foldable ``LIF`` input decay into its synapses (in place).

    ``decay_input`` charges ``h = beta v + (1 - beta) x``; with ``x = sum_s W_s u_s + b_s`` that is
    the plain charge ``h = beta v + x'`` of the synapses ``W'_s = (1 - beta) W_s`` (rows scaled per
    neuron), ``b'_s = (1 - beta) b_s``, exactly in real arithmetic; the integer formats then
    quantize ``W'``. Neurons whose input does not come only from such synapses keep the flag
    (``neuron_problems`` names them)."""
    for name in list(g.nodes):
        node: Any = g.nodes[name]
        if not getattr(node, "decay_input", False):
            continue
        syns = input_decay_synapses(g, name)
        if syns is None:
            continue
        n_out = cast(Any, g.nodes[syns[0]]).weight.shape[0]
        scale = np.broadcast_to(1.0 - node.beta.astype(np.float64), (n_out,))
        for s in syns:
            syn: Any = g.nodes[s]
            syn.weight = (syn.weight.astype(np.float64) * scale[:, None]).astype(np.float32)
            if getattr(syn, "bias", None) is not None:
                syn.bias = (syn.bias.astype(np.float64) * scale).astype(np.float32)
        node.decay_input = False


def merge_biases(g: Graph) -> None:
    """Move the summed bias of each population's synapses onto one synapse (in place).

    A neuron adds ``sum_s b_s`` to its input every step, so the sum may sit on any one synapse
    (the first biased one keeps ``sum_s b_s``, the others get zeros): the same float network,
    but quantize then rounds one bias instead of each, so the integer bias is the rounded sum
    (an ``RLeaky``'s feed-forward + recurrent bias on Loihi: a sum of two ``mant << exp`` values
    need not be one, their rounded sum is)."""
    for n, node in g.nodes.items():
        if node.role != "neuron" or node.owns_weights:
            continue
        syns = [s for s in g.predecessors(n) if g.nodes[s].role == "synapse"
                and getattr(g.nodes[s], "bias", None) is not None]
        biased = [s for s in syns if np.any(cast(Any, g.nodes[s]).bias != 0)]
        if len(biased) < 2:
            continue
        total = np.sum([np.asarray(cast(Any, g.nodes[s]).bias, np.float64) for s in biased], 0)
        for i, s in enumerate(biased):
            syn: Any = g.nodes[s]
            syn.bias = (total if i == 0 else np.zeros_like(total)).astype(np.float32)


#: name suffixes of the nodes :func:`current_bias_sources` adds
BIAS_SOURCE, BIAS_SOURCE_ON, BIAS_WEIGHT = ".bias_source", ".bias_source.on", ".bias_weight"


def current_bias_sources(g: Graph) -> list[str]:
    """Turn each ``CubaLIF``'s synapse bias into a constant spike source (in place); returns the
    populations changed.

    The float ``CubaLIF`` charges its current with the whole synaptic input,
    ``i_t = alpha i_{t-1} + W s_t + b``, so a synapse bias ``b`` is a constant input *current*;
    the integer neurons add a bias to the membrane ``v`` (Lava's ``bias_mant``), which would skip
    the current's decay. Exactly equal in real arithmetic: a one-neuron population
    ``<n>.bias_source`` that spikes on every step (an LIF with ``beta = 0``, threshold 0.5, zero
    reset, whose only synapse ``<n>.bias_source.on`` reads the graph's first Input with zero
    weights and bias 1: ``v_t = 1 > 0.5`` from the first step on, whatever the input; the Input
    edge only anchors its shape and timing) and a synapse ``<n>.bias_weight`` (``Linear``, weight
    ``b`` [N, 1]) from it into ``n``: ``i_t = alpha i_{t-1} + W s_t + b * 1``. Every target then
    runs it with the LIF, synapse and recurrence it already has; the bias becomes one weight
    column, quantized with the population's other weights (so it shares their scale and
    range), and the source costs one neuron spiking every step (counted like any other)."""
    changed = []
    for n, node in list(g.nodes.items()):
        if type(node) is not N.CubaLIF:
            continue
        syns = [s for s in g.predecessors(n) if g.nodes[s].role == "synapse"
                and getattr(g.nodes[s], "bias", None) is not None]
        if not any(np.any(cast(Any, g.nodes[s]).bias != 0) for s in syns):
            continue
        total = np.sum([np.asarray(cast(Any, g.nodes[s]).bias, np.float64) for s in syns], 0)
        for s in syns:
            syn: Any = g.nodes[s]
            syn.bias = np.zeros_like(syn.bias)
        src, on, w = n + BIAS_SOURCE, n + BIAS_SOURCE_ON, n + BIAS_WEIGHT
        if any(k in g.nodes for k in (src, on, w)):
            raise GraphError(f"node {n!r} (CubaLIF): cannot add its bias source, a node named "
                             f"{src!r}, {on!r} or {w!r} exists")
        inp = [k for k, nd in g.nodes.items() if nd.role == "input"]
        shape = g.infer_shapes()[inp[0]] if inp else ()
        if len(shape) != 1:
            raise GraphError(f"node {n!r} (CubaLIF): its synapse bias becomes a constant spike "
                             "source read from a flat Input; the graph's first Input has shape "
                             f"{shape}")
        g.nodes[src] = N.LIF(shape=(1,), beta=np.zeros(1, np.float32),
                             threshold=np.full(1, 0.5, np.float32), reset="zero")
        g.nodes[on] = N.Affine(weight=np.zeros((1, shape[0]), np.float32),
                               bias=np.ones(1, np.float32))
        g.nodes[w] = N.Linear(weight=np.asarray(total, np.float32).reshape(-1, 1))
        g.edges += [(inp[0], on), (on, src), (src, w), (w, n)]
        changed.append(n)
    return changed


def neuron_problems(name: str, node: N.Node, fmt: NumberFormat,
                    one_value: Sequence[str] = (), graph: Graph | None = None) -> list[str]:
    """What number format ``fmt`` cannot express of neuron node ``name`` (reset mode, reset
    timing, refractory period, input decay, leak and reset potentials), plus the fields in ``one_value`` that the target
    holds in one register per population but that vary across the population. ``[]``: fine.
    With ``graph``, an input decay that :func:`fold_input_decay` folds is not a problem."""
    kind = f"node {name!r} ({node.kind})"
    out = []
    reset = getattr(node, "reset", None)
    if reset is not None and reset not in fmt.resets:
        out.append(f"{kind}: field 'reset' {reset!r} is not available in format {fmt.name} "
                   f"(supports {list(fmt.resets)})")
    if getattr(node, "reset_timing", "immediate") != "immediate":
        out.append(f"{kind}: field 'reset_timing' must be 'immediate' for format {fmt.name}")
    refractory = int(getattr(node, "refractory", 0))
    if refractory:
        out.append(f"{kind}: field 'refractory' ({refractory} steps) has no integer form yet")
    if getattr(node, "decay_input", False) and (graph is None
                                                or input_decay_synapses(graph, name) is None):
        out.append(f"{kind}: field 'decay_input' has no integer form here: only an LIF fed by "
                   "Linear/Affine/DelayedAffine synapses alone has its 1 - beta folded into them")
    for f in ("v_leak", "v_reset"):  # NIR's leak and reset potentials
        if np.any(np.asarray(getattr(node, f, 0)) != 0):
            out.append(f"{kind}: field {f!r} (non-zero) has no integer form yet")
    for f in one_value:
        if hasattr(node, f) and np.unique(np.asarray(getattr(node, f))).size > 1:
            out.append(f"{kind}: per-neuron {f}: the target has one {f} register per population")
    return out


def neuron_bias(g: Graph, n: str, dtype: Any = None) -> np.ndarray | None:
    """The summed bias of the synapses feeding ``n`` (membrane units in a quantized graph), each
    converted to ``dtype`` first when given; None when no synapse has a bias. A ``Conv2d``'s
    per-channel bias ``[Cout]`` is given as ``[Cout, 1, 1]`` (it broadcasts over the pixels);
    an all-zero one counts as no bias."""
    bs = []
    for s in g.predecessors(n):
        node: Any = g.nodes[s]
        if node.role != "synapse" or getattr(node, "bias", None) is None:
            continue
        b = np.asarray(node.bias, dtype)
        if type(node) is N.Conv2d:
            if not b.any():
                continue
            b = b.reshape(-1, 1, 1)
        bs.append(b)
    return sum(bs[1:], bs[0]) if bs else None


__all__ = ["BIAS_SOURCE", "BIAS_SOURCE_ON", "BIAS_WEIGHT", "Chain", "Populations", "Projection",
           "chains", "conv2d_synapses", "current_bias_sources", "fold_avg_pools",
           "fold_channel_affines", "fold_input_decay", "input_decay_synapses", "merge_biases",
           "neuron_bias", "neuron_problems", "partition", "pool_overlap", "projection_synapses",
           "synapse_abs_rowsum", "synapse_target"]
