"""Helpers for the SpiNNaker backend tests: hand-built integer graphs and small machines."""
from __future__ import annotations

import numpy as np
import pytest

from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.formats import SPINNAKER
from neuro.hardware.spinnaker import Machine

ONE = 1 << 15  # 1.0 in s16.15


def lif(n: int, vth: int, beta_m: int = ONE, *, reset: str = "zero", kind: str = "LIF",
        alpha_m: int | None = None) -> N.Node:
    """An integer neuron node (``q`` set by hand, as ``quantize`` would)."""
    if kind == "LI":
        node = N.LI(shape=(n,), beta=0.5)
        node.q = {"scale": float(ONE), "beta_m": beta_m}
        return node
    cls = {"LIF": N.LIF, "IF": N.IF, "CubaLIF": N.CubaLIF}[kind]
    node = cls(shape=(n,), beta=1.0 if kind == "IF" else 0.5, threshold=1.0, reset=reset)
    node.q = {"scale": float(ONE), "vth": vth, "beta_m": beta_m}
    if kind == "CubaLIF":
        node.q["alpha_m"] = ONE // 2 if alpha_m is None else alpha_m
    return node


def int_graph(nodes: dict[str, N.Node], edges: list[tuple[str, str]]) -> Graph:
    """A graph quantized by hand to the ``spinnaker`` format."""
    for node in nodes.values():
        for f in ("weight", "bias"):
            if hasattr(node, f) and getattr(node, f) is not None:
                setattr(node, f, np.asarray(getattr(node, f)).astype(np.int64))
    return Graph(nodes, edges, metadata={"format": SPINNAKER.to_dict()}).validate()


@pytest.fixture
def small_machine() -> Machine:
    """Few neurons per core and few cores per chip: every network spans several chips."""
    return Machine(width=3, height=3, cores_per_chip=2, neurons_per_core=8)


@pytest.fixture
def graphs():
    return {"lif": lif, "int_graph": int_graph}
