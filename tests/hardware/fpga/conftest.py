"""Hand-made integer graphs for the FPGA target's edge cases."""
import numpy as np
import pytest

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.formats import NumberFormat


def int_graph(fmt: NumberFormat, nodes: dict, edges: list) -> Graph:
    """A graph already in integer form (weights, ``q``) for ``fmt``: no quantize involved."""
    return Graph(nodes, edges, metadata={"format": fmt.to_dict(), "scales": {}}).validate()


def qparams(fmt: NumberFormat, **kw) -> dict:
    """Neuron ``q`` dict; ``LEAK`` in a key becomes ``m`` or ``shift`` by the format's decay."""
    key = "m" if fmt.decay == "mantissa" else "shift"
    return {"scale": 1.0, **{k.replace("LEAK", key): v for k, v in kw.items()}}


def spikes(T: int, n: int, rate: float, seed: int, B: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, B, n)) < rate).astype(np.float32)


def mixed_graph(f: NumberFormat, T: int = 120) -> tuple[Graph, np.ndarray]:
    """Subtract reset, CubaLIF, per-neuron leaks (k = 0 / m = 4096 included) and thresholds,
    biases, a Delay node and Flatten, two synapses into one population, a recurrent edge, and an
    input read out directly; values sized to ``f`` so the state range is exercised."""
    rng = np.random.default_rng(3)
    wm = f.weight_max
    vth = lambda *m: [int(x * wm) for x in m]  # noqa: E731
    mant = f.decay == "mantissa"
    nodes = {
        "in": N.Input(shape=(2, 3)),
        "flat": N.Flatten(),
        "dl": N.Delay(delay=np.array([0, 3, 1, 5, 2, 0])),
        "a": N.Affine(weight=rng.integers(-wm // 2, wm, (5, 6)).astype(np.int32),
                      bias=np.array([5, -7, 0, wm, -3], np.int64)),
        "b": N.DelayedAffine(weight=rng.integers(-wm // 2, wm // 2, (5, 6)).astype(np.int32),
                             delay=rng.integers(0, 4, (5, 6)), bias=np.zeros(5, np.int64)),
        "p": N.LIF(reset="subtract", q=qparams(f, beta_LEAK=[4096, 3000, 2048, 4000, 100] if mant
                                               else [0, 1, 2, 3, 9], vth=vth(2, 3, 2.5, 4, 1.5))),
        "r": N.Linear(weight=rng.integers(-wm, wm, (5, 5)).astype(np.int32)),
        "c1": N.Linear(weight=rng.integers(-wm // 4, wm, (4, 5)).astype(np.int32)),
        "c": N.CubaLIF(reset="zero", q=qparams(f, beta_LEAK=3500 if mant else 2,
                                               alpha_LEAK=[1000, 2000, 3000, 4090] if mant else [1, 3, 5, 7],
                                               vth=vth(3)[0])),
        "out": N.Output(), "raw": N.Output(),
    }
    edges = [("in", "flat"), ("flat", "dl"), ("dl", "a"), ("flat", "b"), ("a", "p"), ("b", "p"),
             ("p", "r"), ("r", "p"), ("p", "c1"), ("c1", "c"), ("c", "out"), ("in", "raw")]
    return int_graph(f, nodes, edges), spikes(T, 6, 0.3, 1).reshape(T, 2, 2, 3)


@pytest.fixture
def fpga_graphs():
    """Helpers: ``int_graph``, ``qparams``, ``spikes``, ``mixed_graph``."""
    import types

    return types.SimpleNamespace(int_graph=int_graph, qparams=qparams, spikes=spikes,
                                 mixed_graph=mixed_graph)
