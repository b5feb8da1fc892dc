"""The backend-neutral graph IR: nodes, graphs, lowering from modules, number formats, the
reference executors, quantization and the mismatch report (DESIGN.md's core API).

See ``nodes.py`` for the node vocabulary, its roles and the time convention, ``graph.py`` for the
step semantics of edges and cycles, ``populations.py`` for the population view every integer
target shares, ``nir_io.py`` for NIR interchange (``pip install 'neuro[nir]'``).
"""
from . import lm_nodes, nodes, populations
from .formats import FORMATS, NumberFormat, get_format
from .graph import Graph, GraphError, Schedule
from .intsim import simulate_int
from .lower import from_module
from .mismatch import MismatchReport, mismatch_report
from .module import GraphModel
from .nir_io import from_nir, read_nir, to_nir, write_nir
from .nodes import ROLES, Node, NodeError
from .populations import Populations, fold_channel_affines, neuron_problems, partition
from .quantize import quantize
from .registry import NODE_TYPES, node_from_dict
from .simulate import simulate

__all__ = ["FORMATS", "Graph", "GraphError", "GraphModel", "MismatchReport", "NODE_TYPES", "Node",
           "NodeError", "NumberFormat", "Populations", "ROLES", "Schedule", "fold_channel_affines",
           "from_module", "from_nir", "get_format", "lm_nodes", "mismatch_report", "neuron_problems", "nodes",
           "node_from_dict", "partition", "populations", "quantize", "read_nir", "simulate", "simulate_int", "to_nir",
           "write_nir"]
