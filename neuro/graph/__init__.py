"""The backend-neutral graph IR: nodes, graphs, lowering from modules, the reference executor.

See ``nodes.py`` for the node vocabulary and the time convention, ``graph.py`` for the step
semantics of edges and cycles, ``populations.py`` for the population view every integer target
shares, ``nir_io.py`` for NIR interchange (``pip install 'neuro[nir]'``).
"""
from . import nodes, populations
from .graph import Graph, GraphError, Schedule
from .lower import from_module
from .module import GraphModel
from .nir_io import from_nir, read_nir, to_nir, write_nir
from .nodes import NODE_TYPES, ROLES, Node, NodeError
from .populations import Populations, fold_channel_affines, neuron_problems, partition
from .simulate import simulate

__all__ = ["Graph", "GraphError", "GraphModel", "NODE_TYPES", "Node", "NodeError", "Populations", "ROLES",
           "Schedule", "fold_channel_affines", "from_module", "neuron_problems", "nodes", "partition",
           "populations", "simulate", "from_nir", "read_nir", "to_nir", "write_nir"]
