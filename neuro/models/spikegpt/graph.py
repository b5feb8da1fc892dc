"""SpikeGPT -> graph IR: the same network as nodes and edges (``neuro.graph.lm_nodes``).

One graph step is one token. The input is the one-hot token ``[V]`` (``one_hot_tokens`` makes it
from ids ``[T, B]``); the output is the logits ``[V]``. Node names are the model's module paths::

    input -> emb (Embedding, binary) -> blocks.0.ln0 (LayerNorm) -> x
    block i, from the residual stream x:
      blocks.i.ln1 -> blocks.i.att.shift_{k,v,r} (TokenShift) -> blocks.i.att.{key,value,receptance}
      (Linear) ; blocks.i.att.wkv (WKV <- key, value) ; blocks.i.att.gate (Gate <- receptance, wkv)
      -> blocks.i.att.output (Linear) -> blocks.i.lif1 (LIF) ; blocks.i.add1 (Add <- x, lif1)
      blocks.i.ln2 -> blocks.i.ffn.shift_{k,r} -> blocks.i.ffn.{key,receptance} ;
      blocks.i.ffn.relu2 (SquaredReLU <- key) -> blocks.i.ffn.value ;
      blocks.i.ffn.gate (Gate <- receptance, value) -> blocks.i.lif2 (LIF) ; blocks.i.add2 (Add)
    ln_out (LayerNorm) -> head (Linear) -> output

The LIF nodes come from the model's own :class:`neuro.neurons.LIF` units (``describe()``), so the
graph carries their exact parameters; the non-spiking baseline (``spiking=False``) has none (the
sub-layer output goes straight into the Add). The float reference executor runs this graph to
the model's logits (tests: ``test_spikegpt_graph.py``).
"""
from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from neuro.graph import Graph
from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.lower import neuron_node

from .model import Block, SpikeGPT

#: graph.dt of a SpikeGPT graph: one step is one token; the value only labels the time axis
TOKEN_STEP = 1e-3


def _w(p: Tensor) -> np.ndarray:
    return p.detach().cpu().to(torch.float32).numpy().reshape(p.shape[-1] if p.dim() == 3 else p.shape)


class _Edges:
    def __init__(self) -> None:
        self.nodes: dict[str, N.Node] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: N.Node, *srcs: str) -> str:
        self.nodes[name] = node
        self.edges.extend((s, name) for s in srcs)
        return name


def _layer_norm(ln: nn.LayerNorm) -> LM.LayerNorm:
    return LM.LayerNorm(weight=_w(ln.weight), bias=_w(ln.bias), eps=ln.eps)


def _linear(lin: nn.Linear) -> N.Linear:
    return N.Linear(weight=_w(lin.weight))


def _lif(b: _Edges, name: str, lif: Any, src: str) -> str:
    if lif is None:  # the non-spiking baseline: the identity
        return src
    return b.add(name, neuron_node(lif.describe()), src)


def _block(b: _Edges, i: int, block: Block, x: str) -> str:
    p = f"blocks.{i}"
    if i == 0:
        x = b.add(f"{p}.ln0", _layer_norm(block.ln0), x)
    att, ffn = block.att, block.ffn
    a = b.add(f"{p}.ln1", _layer_norm(block.ln1), x)
    mixed = {m: b.add(f"{p}.att.shift_{m}", LM.TokenShift(mix=_w(getattr(att, f"time_mix_{m}"))), a)
             for m in ("k", "v", "r")}
    k = b.add(f"{p}.att.key", _linear(att.key), mixed["k"])
    v = b.add(f"{p}.att.value", _linear(att.value), mixed["v"])
    r = b.add(f"{p}.att.receptance", _linear(att.receptance), mixed["r"])
    y = b.add(f"{p}.att.wkv", LM.WKV(time_decay=_w(att.time_decay), time_first=_w(att.time_first)),
              k, v)
    g = b.add(f"{p}.att.gate", LM.Gate(), r, y)
    o = b.add(f"{p}.att.output", _linear(att.output), g)
    s = _lif(b, f"{p}.lif1", block.lif1, o)
    x = b.add(f"{p}.add1", LM.Add(), x, s)
    f = b.add(f"{p}.ln2", _layer_norm(block.ln2), x)
    fk = b.add(f"{p}.ffn.shift_k", LM.TokenShift(mix=_w(ffn.time_mix_k)), f)
    fr = b.add(f"{p}.ffn.shift_r", LM.TokenShift(mix=_w(ffn.time_mix_r)), f)
    k = b.add(f"{p}.ffn.key", _linear(ffn.key), fk)
    h = b.add(f"{p}.ffn.relu2", LM.SquaredReLU(), k)
    v = b.add(f"{p}.ffn.value", _linear(ffn.value), h)
    r = b.add(f"{p}.ffn.receptance", _linear(ffn.receptance), fr)
    g = b.add(f"{p}.ffn.gate", LM.Gate(), r, v)
    s = _lif(b, f"{p}.lif2", block.lif2, g)
    return b.add(f"{p}.add2", LM.Add(), x, s)


def to_graph(model: SpikeGPT) -> Graph:
    """The validated graph of ``model`` (module docstring); dropout is left out (inference)."""
    cfg = model.config
    b = _Edges()
    b.add("input", N.Input(shape=(cfg.vocab_size,)))
    x = b.add("emb", LM.Embedding(weight=_w(model.emb.weight), binary=cfg.binary_embedding), "input")
    for i, block in enumerate(cast("list[Block]", model.blocks)):
        x = _block(b, i, block, x)
    x = b.add("ln_out", _layer_norm(model.ln_out), x)
    x = b.add("head", _linear(model.head), x)
    b.add("output", N.Output(), x)
    meta = {"source": "SpikeGPT", "step": "one token", "input": "one-hot tokens",
            "config": model.config_dict()}
    return Graph(b.nodes, b.edges, dt=TOKEN_STEP, metadata=meta).validate()


def one_hot_tokens(idx: Tensor | np.ndarray, vocab_size: int) -> np.ndarray:
    """Token ids ``[T, B]`` (or ``[T]``) -> one-hot float32 ``[T, B, V]`` (``[T, V]``), the input of
    the graph."""
    ids = np.asarray(idx, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got [{ids.min()}, {ids.max()}]")
    out = np.zeros((*ids.shape, vocab_size), np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out
