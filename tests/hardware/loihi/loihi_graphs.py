"""Graphs for the Loihi tests: merged networks and the edge cases of Lava's fixed-point arithmetic.

Lava starts one OS process per Lava Process and needs seconds per run, so the tests merge
networks into one graph (:func:`union`, node names prefixed) and run them in one worker call;
every comparison stays per node.

``edge_graph(T, B)`` returns ``(graph, spikes)``: one quantized graph (format ``loihi2``) with six
independent parts, each with its own input:

* ``wrap``: 40 inputs into 3 IF neurons with du = 0 (the current barely decays): all-+254,
  all--256 and odd mixed-sign weights (Lava drops the LSB); the current wraps past 2^23, v hits
  its clip +-(2^23 - 1) and spikes above vth << 6 = 2^23 - 64 (vth = 2^17 - 1, the largest).
* ``li``: an LI readout without leak driven to +-(2^23 - 1): it must never spike (Lava's LIF
  with vth = 2^17).
* ``thr``: v equal to vth << 6 exactly (no spike: the rule is strict), an inhibitory-only synapse
  with odd weights (kept: no LSB drop in one-sign mode) and two synapses into one population.
* ``bias``: biases that need bias_exp 1..6 (5000, -8000, 2^17, -3) and mixed odd weights.
* ``skip``: a skip connection (DelayedAffine, alignment pad), a Delay node before a synapse,
  a CubaLIF (du = 1000) and an IF (dv = 0).
* ``rec``: a recurrent population whose loop runs through a Delay node (3-step loop) with mixed
  recurrent weights, and an LI readout.
"""
from __future__ import annotations

import numpy as np

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.formats import LOIHI2

SCALE = 64.0  # float units -> v units; only the floating_pt mode reads it


def _lif(du: int = 4095, dv: int = 0, vth: int = 100, cuba: bool = False) -> N.LIF:
    kw = dict(beta=np.float32(1 - dv / 4096), threshold=np.float32(vth * 64 / SCALE), reset="zero")
    node = N.CubaLIF(alpha=np.float32(1 - (du + 1) / 4096), **kw) if cuba else N.LIF(**kw)
    node.q = {"scale": SCALE, "du": du, "dv": dv, "vth": vth}
    return node


def _li(dv: int) -> N.LI:
    node = N.LI(beta=np.float32(1 - dv / 4096))
    node.q = {"scale": SCALE, "du": 4095, "dv": dv}
    return node


def _lin(w) -> N.Linear:
    return N.Linear(weight=np.asarray(w, np.int32))


def edge_graph(T: int = 200, B: int = 1, seed: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    nodes: dict[str, N.Node] = {}
    edges: list[tuple[str, str]] = []
    spikes: dict[str, np.ndarray] = {}

    def add(name, node, *srcs):
        nodes[name] = node
        edges.extend((s, name) for s in srcs)

    def inp(name, n, rate):
        add(name, N.Input(shape=(n,)))
        spikes[name] = (rng.random((T, B, n)) < rate).astype(np.int64)

    # wrap: current wrap-around, v clip, spikes at the top of the range
    inp("wrap.in", 40, 0.5)
    odd = np.where(np.arange(40) % 2, 253, -255)
    add("wrap.w", _lin([np.full(40, 254), np.full(40, -256), odd]), "wrap.in")
    add("wrap.n", _lif(du=0, dv=0, vth=(1 << 17) - 1), "wrap.w")
    add("wrap.out", N.Output(), "wrap.n")
    # li: saturating non-spiking readout
    inp("li.in", 30, 0.5)
    add("li.w", _lin([np.full(30, 254), np.full(30, -256)]), "li.in")
    add("li.n", _li(dv=0), "li.w")
    add("li.out", N.Output(), "li.n")
    # thr: exact threshold, inhibitory-only synapse, two synapses into one population
    inp("thr.in", 3, 0.0)
    spikes["thr.in"][[5, 9, 30, 31], :, 0] = 1       # v = 640 = vth << 6 at step 5: no spike
    spikes["thr.in"][40:, :, 1:] = (rng.random((T - 40, B, 2)) < 0.3)
    add("thr.exc", _lin([[10, 0, 0], [0, 10, 0]]), "thr.in")
    add("thr.inh", _lin([[0, 0, -3], [0, -7, -3]]), "thr.in")
    add("thr.n", _lif(du=4095, dv=0, vth=10), "thr.exc", "thr.inh")
    add("thr.out", N.Output(), "thr.n")
    # bias: mantissa/exponent split
    inp("bias.in", 5, 0.3)
    w = rng.integers(-255, 256, (4, 5))
    add("bias.w", N.Affine(weight=w.astype(np.int32),
                           bias=np.array([5000, -8000, 1 << 17, -3], np.int32)), "bias.in")
    add("bias.n", _lif(du=4095, dv=300, vth=3000), "bias.w")
    add("bias.out", N.Output(), "bias.n")
    # skip: alignment pads, Delay node, CubaLIF, IF
    inp("skip.in", 6, 0.3)
    add("skip.w1", _lin(rng.integers(-60, 120, (8, 6))), "skip.in")
    add("skip.a", _lif(du=4095, dv=200, vth=50), "skip.w1")
    add("skip.w2", _lin(rng.integers(-40, 80, (5, 8))), "skip.a")
    add("skip.w3", N.DelayedAffine(weight=rng.integers(-50, 100, (5, 6)).astype(np.int32),
                                   delay=rng.integers(0, 7, (5, 6)), bias=np.zeros(5, np.int32)),
        "skip.in")
    add("skip.b", _lif(du=1000, dv=100, vth=60, cuba=True), "skip.w2", "skip.w3")
    add("skip.d", N.Delay(delay=np.arange(6)), "skip.in")
    add("skip.w4", _lin(rng.integers(-30, 60, (5, 6))), "skip.d")
    add("skip.w5", _lin(rng.integers(-40, 90, (5, 5))), "skip.b")
    add("skip.c", _lif(du=4095, dv=0, vth=1500), "skip.w4", "skip.w5")
    add("skip.out", N.Output(), "skip.c")
    # rec: a recurrent loop through a 2-step Delay node
    inp("rec.in", 5, 0.2)
    add("rec.win", _lin(rng.integers(0, 120, (10, 5))), "rec.in")
    add("rec.n", _lif(du=4095, dv=400, vth=30), "rec.win", "rec.wrec")
    add("rec.d", N.Delay(delay=np.full(10, 2)), "rec.n")
    wrec = rng.integers(-90, 60, (10, 10))
    np.fill_diagonal(wrec, 0)
    add("rec.wrec", _lin(wrec), "rec.d")
    add("rec.wout", _lin(rng.integers(-100, 100, (3, 10))), "rec.n")
    add("rec.li", _li(dv=500), "rec.wout")
    add("rec.out", N.Output(), "rec.li")
    g = Graph(nodes, edges, 1e-3, {"format": LOIHI2.to_dict(),
                                   "scales": {n: SCALE for n, v in nodes.items()
                                              if isinstance(v, (N.LIF, N.LI))}})
    return g.validate(), spikes


def union(parts: dict[str, tuple[Graph, np.ndarray]]) -> tuple[Graph, dict[str, np.ndarray]]:
    """Disjoint union of graphs (node ``n`` of part ``k`` becomes ``k.n``) and their inputs
    (``{k.input: spikes}``). Parts must share T and B. Quantizing the union quantizes each
    population as in its own graph (scales are per population)."""
    nodes, edges, spikes = {}, [], {}
    for k, (g, x) in parts.items():
        nodes.update({f"{k}.{n}": node for n, node in g.nodes.items()})
        edges += [(f"{k}.{a}", f"{k}.{b}") for a, b in g.edges]
        (inp,) = g.inputs()
        spikes[f"{k}.{inp}"] = x
    first = next(iter(parts.values()))[0]  # every parameter is per step: dt is only a label
    meta = {k: v for k, v in first.metadata.items() if k in ("format", "scales")}
    return Graph(nodes, edges, first.dt, {"source": "union", **meta}).validate(), spikes
