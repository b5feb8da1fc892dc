"""EGRU language model -> graph IR (``neuro.graph``): one graph step is one word.

::

    input (one-hot word [V]) -> embedding (Embedding E [V, D]) -> layers.0 (EGRU) -> ...
    -> layers.{L-1} (EGRU) -> decoder (Affine: weight E, bias b; the tied decoder) -> output

Dropouts (word, embedding, variational, DropConnect) and zoneout are training-only and left out:
the graph is the model in ``eval()`` mode, and the float reference executor gives its logits
(tests: ``test_egru_graph.py``). The EGRU nodes carry the layers' weights (EvNN layout) and their
effective thresholds. The gesture network does not lower: its convolutional front end ends in a
ReLU and a global average pool, which have no graph nodes.
"""
from __future__ import annotations

from neuro.graph import Graph
from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.lower import module_node

from .model import EGRULanguageModel

#: graph.dt of a language model: one step is one word; the value only labels the time axis
WORD_STEP = 1e-3


def to_graph(model: EGRULanguageModel) -> Graph:
    """The validated graph of ``model`` (module docstring)."""
    cfg = model.config
    E = model.embedding.weight.detach().cpu().float().numpy()
    nodes: dict[str, N.Node] = {"input": N.Input(shape=(cfg.vocab_size,)),
                                "embedding": LM.Embedding(weight=E, binary=False)}
    edges = [("input", "embedding")]
    src = "embedding"
    for i, layer in enumerate(model.layers):
        name = f"layers.{i}"
        nodes[name] = module_node(layer)  # type: ignore[arg-type]  # an EGRU neuron module
        edges.append((src, name))
        src = name
    nodes["decoder"] = N.Affine(weight=E, bias=model.decoder_bias.detach().cpu().float().numpy())
    nodes["output"] = N.Output()
    edges += [(src, "decoder"), ("decoder", "output")]
    meta = {"source": "EGRULanguageModel", "step": "one word", "input": "one-hot tokens",
            "config": model.config_dict()}
    return Graph(nodes, edges, dt=WORD_STEP, metadata=meta).validate()
