"""The graph as NEST populations and connection lists (``iaf_psc_delta`` at 1 ms resolution).

Equations (neuro's discrete LIF, zero reset, immediate timing, ``neuro.neurons.lif``)::

    h[t] = beta v[t-1] + sum_j W_ij s_j[t - d_ij] + b_i       (decay_input=True: W, b times 1 - beta)
    s[t] = H(h[t] - theta)      v[t] = h[t] (1 - s[t])

NEST's ``iaf_psc_delta`` at ``resolution = 1.0`` ms integrates exactly the same map with
``tau_m = -1/ln(beta)`` ms (round-tripped so that ``exp(-1/tau_m)`` is the float64 value of the
float32 beta; the value NEST computes is stored as ``beta_simulated``), ``E_L = V_reset = V_m = 0``,
``V_th = theta`` (both compare ``>=``), ``t_ref = refractory`` steps (NEST discards input while
refractory, like the reference), weights in mV and delays in ms (1 ms = 1 step).

Subtractive reset (``reset="subtract"``, immediate timing): ``v[t] = h[t] - s[t] theta``. NEST's
``iaf_psc_delta`` cannot express it, so such populations use the NESTML model
``neuro_lif_subtract_neuron`` (``nestml_models``: the same update, propagator and ``>=`` threshold,
``V_m -= V_th`` on a spike, ``refr_steps`` held steps), built into a NEST extension module on first
use; ``supports`` refuses them, naming what is missing, where it cannot be built.

Latency alignment: a spike emitted at NEST time ``t`` through a connection of delay ``D >= 1`` ms
reaches the target's update that ends at ``t + D``. Population ``P``'s reference step ``t`` is NEST
time ``t + L_P`` (its *lag*); a projection with reference delay ``d`` steps (DelayedAffine delay +
Delay nodes + 1 for a recurrent edge) gets ``D = d + L_P - L_src``. The lags are the smallest
integers with ``D >= 1`` everywhere (difference constraints, solved by Bellman-Ford); inputs have
lag >= 1 (spike generators start after t = 0) and populations lag >= 2 (their bias arrives from a
spike generator with delay 1 that fires at every step ``L_P - 1 + t``: the bias is added exactly,
every step, also for ``beta = 1``). A cycle whose reference delays are shorter than its length in
hops cannot be aligned and is refused.

Non-spiking ``LI`` readouts have no NEST model: they, and every graph output, are computed on the
host by neuro's float reference executor from the spikes NEST produced (``host_graph``), so they
are exact whenever the spikes are.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuro.graph import Graph, fold_channel_affines, nodes, partition

from . import nestml_models

#: neuron kinds NEST runs (exact kinds; a subclass such as CubaLIF is not an LIF here)
NEST_NEURONS = ("LIF", "IF")
#: synapse kinds mapped to connection lists
SYNAPSES = ("Linear", "Affine", "DelayedAffine")
#: neuron kinds computed on the host from NEST's spikes (readouts only)
HOST_NEURONS = ("LI",)
STRUCTURAL = ("Delay", "Flatten", "ChannelAffine", "Input", "Output")
TAU_MAX = 1e300   # beta = 1 (no leak): exp(-1/1e300) == 1.0
TAU_MIN = 1e-300  # beta = 0: exp(-1e300) == 0.0


def tau_for_beta(beta: float) -> tuple[float, float]:
    """``(tau_m, beta_simulated)``: ``tau_m`` in ms with ``exp(-1/tau_m)`` equal to ``beta`` if
    some float64 ``tau_m`` gives it (nearby values are tried), else the closest one found."""
    beta = float(beta)
    if beta >= 1.0:
        return TAU_MAX, 1.0
    if beta <= 0.0:
        return TAU_MIN, 0.0
    tau = -1.0 / math.log(beta)
    best = (abs(math.exp(-1.0 / tau) - beta), tau)
    for direction in (math.inf, -math.inf):
        t = tau
        for _ in range(64):
            got = math.exp(-1.0 / t)
            if got == beta:
                return t, got
            best = min(best, (abs(got - beta), t))
            t = math.nextafter(t, direction)
    return best[1], math.exp(-1.0 / best[1])


def neuron_problems(name: str, node: Any) -> list[str]:  # a LIF or IF node (fields by kind)
    kind = f"node {name!r} ({node.kind})"
    out = []
    for f in ("v_leak", "v_reset"):  # NIR's leak and reset potentials: not mapped to E_L/V_reset yet
        if np.any(np.asarray(getattr(node, f, 0)) != 0):
            out.append(f"{kind}: field {f!r} (non-zero) is not mapped to NEST yet")
    if node.reset == "subtract" and node.reset_timing == "immediate":
        missing = nestml_models.missing()
        if missing:
            out.append(f"{kind}: reset 'subtract' is not expressible with NEST's iaf_psc_delta (it "
                       f"resets to V_reset) and the NESTML model {nestml_models.SUBTRACT_MODEL} "
                       "cannot be built here: " + "; ".join(missing))
    elif node.reset != "zero":
        out.append(f"{kind}: reset {node.reset!r} is not expressible with NEST's iaf_psc_delta")
    if node.reset_timing != "immediate":
        out.append(f"{kind}: reset_timing {node.reset_timing!r}: NEST resets in the step of the spike "
                   "(only 'immediate')")
    return out


def neuron_model(node: Any) -> str:
    """The NEST model of a LIF/IF node: ``iaf_psc_delta`` (zero reset) or the NESTML model
    ``neuro_lif_subtract_neuron`` (subtractive reset; ``nestml_models``)."""
    return nestml_models.SUBTRACT_MODEL if node.reset == "subtract" else "iaf_psc_delta"


@dataclass
class Plan:
    """What NEST runs: populations (LIF/IF nodes), their lags, projections, host readouts."""

    graph: Graph                                   # ChannelAffines folded
    populations: list[str]
    inputs: list[str]
    lags: dict[str, int]
    projections: list[dict[str, Any]]              # source, target, synapse, arrays
    host: list[str]                                # LI nodes computed on the host
    problems: list[str] = field(default_factory=list)


#: why a kind has no NEST mapping (printed with the refusal)
WHY = {
    "EGRU": "NEST's point neurons (iaf_psc_*) integrate weighted spikes into a membrane; the "
            "EGRU's multiplicative gates (sigmoid/tanh, z * c, r * (R y)) and its graded "
            "real-valued events have no NEST model",
}


def plan(graph: Graph) -> Plan:
    """Partition ``graph`` for NEST; ``Plan.problems`` lists every reason it cannot run."""
    problems: list[str] = []
    refused: list[str] = []
    allowed = set(NEST_NEURONS) | set(SYNAPSES) | set(HOST_NEURONS) | set(STRUCTURAL)
    for n, node in graph.nodes.items():
        if node.kind not in allowed or type(node).__name__ != node.kind:
            why = f": {WHY[node.kind]}" if node.kind in WHY else ""
            problems.append(f"node {n!r} ({node.kind}): NEST target has no mapping for kind "
                            f"{node.kind}{why} (runs {list(NEST_NEURONS)} neurons, {list(SYNAPSES)} "
                            f"synapses, {list(HOST_NEURONS)} readouts)")
            refused.append(n)
        elif node.kind in NEST_NEURONS:
            msgs = neuron_problems(n, node)
            problems += msgs
            if msgs:
                refused.append(n)
    g = copy.deepcopy(graph)
    if problems:
        return Plan(g, [], [], {}, [], [], problems)
    try:
        fold_channel_affines(g)
    except ValueError as exc:
        return Plan(g, [], [], {}, [], [], [str(exc)])
    view = partition(g)
    problems += view.messages(refused)
    pops = [n for n in view.neurons if g.nodes[n].kind in NEST_NEURONS]
    host = [n for n in view.neurons if g.nodes[n].kind in HOST_NEURONS]
    projections = []
    for p in view.projections:
        syn: Any = g.nodes[p.synapse]  # a synapse node (weight, and delay when DelayedAffine)
        if p.target in host:
            continue
        if p.source in host:
            problems.append(f"node {p.source!r} (LI) feeds population {p.target!r} through "
                            f"{p.synapse!r}: NEST has no LI neuron; an LI node is supported only as "
                            "a readout (computed on the host)")
            continue
        w = np.asarray(syn.weight, np.float64)
        d = np.zeros(w.shape, np.int64) if syn.kind != "DelayedAffine" else syn.delay.astype(np.int64)
        d = d + p.delay.reshape(1, -1) + int(p.recurrent)
        tgt: Any = g.nodes[p.target]  # a LIF-family node
        if tgt.decay_input:
            w = w * (1.0 - np.asarray(tgt.beta, np.float64).reshape(-1, 1) * np.ones((w.shape[0], 1)))
        post, pre = np.nonzero(w)
        projections.append({"synapse": p.synapse, "source": p.source, "target": p.target,
                            "pre": pre.astype(np.int64), "post": post.astype(np.int64),
                            "weight": w[post, pre], "steps": d[post, pre]})
    # lags: L_tgt >= L_src + 1 - d for every connection (Bellman-Ford, longest path)
    lags = {n: 1 for n in view.inputs}
    lags.update({n: 2 for n in pops})
    edges: dict[tuple[str, str], int] = {}
    for pr in projections:
        if len(pr["steps"]):
            key = (pr["source"], pr["target"])
            edges[key] = max(edges.get(key, -10**9), 1 - int(pr["steps"].min()))
    for _ in range(len(lags) + 1):
        changed = False
        for (s, t), need in edges.items():
            if lags[t] < lags[s] + need:
                lags[t] = lags[s] + need
                changed = True
        if not changed:
            break
    else:
        bad = sorted({t for (s, t), need in edges.items() if lags[t] < lags[s] + need})
        problems.append(f"populations {bad}: a cycle has reference delays shorter than its number "
                        "of hops; NEST needs delays >= 1 ms on every connection, so it cannot be "
                        "aligned with the reference")
    for pr in projections:
        pr["delay"] = pr["steps"] + lags[pr["target"]] - lags[pr["source"]]
    return Plan(g, pops, list(view.inputs), lags, projections, host, problems)


def network(p: Plan) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON description and arrays of the NEST network (``nest/network.json`` + ``.npz``)."""
    g = p.graph
    shapes = g.infer_shapes()
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for n in p.populations:
        node: Any = g.nodes[n]  # a LIF-family node (fields by kind)
        size = int(np.prod(shapes[n]))
        beta = np.broadcast_to(np.asarray(node.beta, np.float64).reshape(-1), (size,))
        taus, sims = zip(*(tau_for_beta(b) for b in beta)) if size else ((), ())
        from neuro.graph.populations import neuron_bias

        bias = neuron_bias(g, n, np.float64)
        bias = np.zeros(size) if bias is None else np.broadcast_to(bias, (size,)).astype(np.float64)
        if node.decay_input:
            bias = bias * (1.0 - beta)
        arrays[f"pop/{n}/tau_m"] = np.asarray(taus, np.float64)
        arrays[f"pop/{n}/beta_simulated"] = np.asarray(sims, np.float64)
        arrays[f"pop/{n}/v_th"] = np.broadcast_to(
            np.asarray(node.threshold, np.float64).reshape(-1), (size,)).copy()
        arrays[f"pop/{n}/bias"] = bias
        pops.append({"name": n, "kind": node.kind, "model": neuron_model(node), "size": size,
                     "shape": list(shapes[n]),
                     "lag": p.lags[n], "t_ref": int(node.refractory),
                     "has_bias": bool(np.any(bias != 0)),
                     "beta_exact": bool(np.all(np.asarray(sims) == beta))})
    projs = []
    for i, pr in enumerate(p.projections):
        key = f"proj/{i}"
        arrays[f"{key}/pre"], arrays[f"{key}/post"] = pr["pre"], pr["post"]
        arrays[f"{key}/weight"], arrays[f"{key}/delay"] = pr["weight"], pr["delay"].astype(np.int64)
        projs.append({"key": key, "synapse": pr["synapse"], "source": pr["source"],
                      "target": pr["target"], "connections": int(len(pr["pre"])),
                      "max_delay": int(pr["delay"].max(initial=1))})
    inputs = [{"name": n, "size": int(np.prod(shapes[n])), "shape": list(shapes[n]),
               "lag": p.lags[n]} for n in p.inputs]
    models = sorted({q["model"] for q in pops})
    net = {"resolution_ms": 1.0, "neuron_models": models or ["iaf_psc_delta"], "inputs": inputs,
           "populations": pops, "projections": projs, "host_readouts": p.host,
           "max_lag": max(p.lags.values(), default=0)}
    return net, arrays


def host_graph(graph: Graph, populations: list[str]) -> Graph | None:
    """The part of ``graph`` computed on the host: every Output and LI node and what feeds them,
    back to the NEST populations (which become ``Input`` nodes fed with NEST's spikes) and the
    graph's inputs. None when there is nothing to compute."""
    shapes = graph.infer_shapes()
    keep: dict[str, nodes.Node] = {}
    stack = [n for n, node in graph.nodes.items() if node.kind in ("Output", *HOST_NEURONS)]
    if not stack:
        return None
    while stack:
        n = stack.pop()
        if n in keep:
            continue
        if n in populations:
            keep[n] = nodes.Input(shape=tuple(shapes[n]))
            continue
        keep[n] = graph.nodes[n]
        stack.extend(graph.predecessors(n))
    edges = [(a, b) for a, b in graph.edges if a in keep and b in keep and b not in populations]
    return Graph(keep, edges, graph.dt, dict(graph.metadata))


__all__ = ["HOST_NEURONS", "NEST_NEURONS", "Plan", "SYNAPSES", "host_graph", "network",
           "neuron_model", "plan", "tau_for_beta"]
