"""``GraphModel``: a graph held as an ``nn.Module``, so imported graphs live in checkpoints.

The graph's arrays are buffers (named ``a0, a1, ...``; the mapping is in the config), its
structure is the JSON config. ``forward(x[T, B, N])`` runs the float reference executor and
returns ``(output, None)`` like every neuro model. Lowering a ``GraphModel`` returns its graph.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..limits import check_array_size, check_model_size
from .graph import Graph
from .simulate import simulate


class GraphModel(nn.Module):
    name = "graph"

    def __init__(self, graph: Graph, *, validate: bool = True) -> None:
        super().__init__()
        if validate:
            graph.validate()
        struct, arrays = graph._split()
        self._struct = struct
        self._keys = sorted(arrays)
        for i, key in enumerate(self._keys):
            # np.array keeps 0-d arrays 0-d (np.ascontiguousarray would make them [1])
            self.register_buffer(f"a{i}", torch.from_numpy(np.array(arrays[key], order="C")))

    @property
    def graph(self) -> Graph:
        struct = _fill(self._struct, {k: getattr(self, f"a{i}").cpu().numpy()
                                      for i, k in enumerate(self._keys)})
        return Graph.from_dict(struct).validate()

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, None]:
        if state is not None:
            raise ValueError("GraphModel runs whole sequences from a zero state")
        g = self.graph
        return simulate(g, x)[g.outputs()[0]], None

    def config_dict(self) -> dict[str, Any]:
        shapes = {k: {"shape": list(getattr(self, f"a{i}").shape),
                      "dtype": str(getattr(self, f"a{i}").dtype).removeprefix("torch.")}
                  for i, k in enumerate(self._keys)}
        return {"graph": self._struct, "arrays": shapes, "keys": self._keys}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> GraphModel:
        """Rebuild with zero arrays of the recorded shapes (``load_state_dict`` fills them; the
        graph is validated when it is read through :attr:`graph`)."""
        try:
            declared = {k: (tuple(v["shape"]), np.dtype(v["dtype"])) for k, v in cfg["arrays"].items()}
            total = 0
            for k, (shape, dtype) in declared.items():  # declared sizes before any allocation
                check_array_size(f"graph checkpoint config: array {k!r}", shape, dtype.itemsize)
                total += math.prod(shape) * dtype.itemsize
            check_model_size("graph checkpoint config", total, f"{len(declared)} arrays")
            arrays = {k: np.zeros(shape, dtype=dtype) for k, (shape, dtype) in declared.items()}
            return cls(Graph.from_dict(_fill(cfg["graph"], arrays)), validate=False)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad graph checkpoint config ({exc})") from None


def _fill(struct: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    out = {**struct, "nodes": {}}
    for name, nd in struct["nodes"].items():
        out["nodes"][name] = {k: (arrays[v["$array"]] if isinstance(v, dict) and "$array" in v else v)
                              for k, v in nd.items()}
    return out
