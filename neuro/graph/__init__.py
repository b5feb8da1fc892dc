"""The backend-neutral graph IR: nodes, graphs, lowering from modules, the reference executor.

See ``nodes.py`` for the node vocabulary and the time convention, ``graph.py`` for the step
semantics of edges and cycles, ``nir_io.py`` for NIR interchange (``pip install 'neuro[nir]'``).
"""
from . import nodes
from .graph import Graph, GraphError, Schedule
from .lower import from_module
from .module import GraphModel
from .nir_io import from_nir, read_nir, to_nir, write_nir
from .nodes import NODE_TYPES, Node, NodeError
from .simulate import simulate

__all__ = ["Graph", "GraphError", "GraphModel", "NODE_TYPES", "Node", "NodeError", "Schedule", "from_module",
           "nodes", "simulate", "from_nir", "read_nir", "to_nir", "write_nir"]
