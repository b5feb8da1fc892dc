import numpy as np
import pytest

from neuro.graph import Graph, nodes


def wrap(node: nodes.Node) -> Graph:
    """A valid graph ``input -> node -> output`` around ``node`` (input shape probed)."""
    shapes = {nodes.Conv1d: (1, 5), nodes.Conv2d: (1, 4, 4), nodes.Flatten: (2, 3),
              nodes.SumPool2d: (1, 4, 4), nodes.AvgPool2d: (1, 4, 4)}
    in_shape = shapes.get(type(node))
    if in_shape is None:
        for probe in [(n,) for n in range(1, 8)]:
            try:
                node.output_shape("probe", probe)
                in_shape = probe
                break
            except ValueError:
                continue
    if node.ports:  # one edge per port: the input, then pass-through copies of it
        eye = np.eye(in_shape[0], dtype=np.float32)
        extra = {f"p{i}": nodes.Linear(weight=eye * (i + 1)) for i in range(1, len(node.ports))}
        edges = [("in", "n"), *[e for p in extra for e in (("in", p), (p, "n"))], ("n", "out")]
        return Graph({"in": nodes.Input(shape=in_shape), **extra, "n": node,
                      "out": nodes.Output()}, edges).validate()
    return Graph({"in": nodes.Input(shape=in_shape), "n": node, "out": nodes.Output()},
                 [("in", "n"), ("n", "out")]).validate()


@pytest.fixture
def wrap_node():
    return wrap
