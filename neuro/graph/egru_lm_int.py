"""The integer EGRU language model: the embedding lookup and the decoder head around EGRU layers.

A lowered ``EGRULanguageModel`` (``neuro.models.egru.graph``) is::

    input (one-hot token [V]) -> embedding (Embedding E [V, D]) -> EGRU -> ... -> EGRU
    -> decoder (Affine W [V, H], b [V]) -> output (logits [V])

In a format with ``F`` EGRU fraction bits (``spinnaker`` s16.15: ``F = 15``; FPGA ``int16``:
``F = 12``; ``neuro.graph.egru_int``) :func:`quantize_lm` gives it these integer forms:

* **Embedding** (``weight`` becomes ``Eq = round(E 2^F)`` int64, each entry within the
  ``state_bits`` register): a one-hot token row lookup, ``e[t] = x[t] . Eq`` = the token's row of
  ``Eq`` (values with ``F`` fraction bits). The first EGRU layer reads it with ``in_frac = F``; a
  machine sends the row as dense input every step (``D`` values per token).
* **EGRU layers**: ``neuro.graph.egru_int`` (``in_frac = F``: the embedding or the previous
  layer's graded events ``y``).
* **Decoder** (a *graded readout*: an ``Affine`` that reads one EGRU's events ``y`` and feeds only
  ``Output`` nodes): ``weight`` becomes ``Wq = round(W 2^kf)`` (signed ``weight_bits``-bit
  mantissas, ``kf`` the largest fraction width at which the largest weight fits, as
  :func:`~neuro.graph.egru_int.weight_frac`), ``bias`` ``bq = round(b 2^F)``, and::

      logits[t] = sat(((y[t] . Wq) >> kf) + bq)          [V]   F fraction bits

  ``>>`` is the floor shift, ``sat`` clips to the ``state_bits`` register, the sum ``y . Wq`` is
  exact (64 bits) before the one shift, so an event-driven machine adding ``payload x weight``
  per graded packet gets the same bits. The logits are integers with ``F`` fraction bits:
  ``logits / 2^F`` are the model's real logits (``softmax`` gives the next-word distribution).

The registers live in ``graph.metadata["egru_lm"]``: ``{"embedding": {name: {"frac_bits"}},
"readout": {name: {"kernel_frac", "in_frac", "frac_bits", "state_bits", "source"}}}``.
The integer reference executor (``neuro.graph.intsim``) runs both through :func:`embed` and
:class:`Readout`; the SpiNNaker graded-event path and the FPGA step graph reproduce them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import lm_nodes as LM
from . import nodes as N
from .formats import NumberFormat
from .graph import Graph, GraphError

#: key of the integer registers in ``graph.metadata``
META_KEY = "egru_lm"


def lm_parts(g: Graph) -> tuple[list[str], list[str]]:
    """``(embeddings, readouts)``: the Embedding nodes and graded-readout Affines of an EGRU
    graph (``[]``, ``[]`` when it has no EGRU or none of them)."""
    if not any(type(n) is N.EGRU for n in g.nodes.values()):
        return [], []
    emb = [n for n, node in g.nodes.items() if type(node) is LM.Embedding]
    ro = [n for n, node in g.nodes.items() if type(node) is N.Affine
          and any(type(g.nodes[p]) is N.EGRU for p in g.predecessors(n))]
    return emb, ro


def lm_problems(g: Graph) -> list[str]:
    """Every reason the EGRU LM pieces of ``g`` have no integer form (module docstring)."""
    emb, ro = lm_parts(g)
    problems = []
    for n in emb:
        node: Any = g.nodes[n]
        if node.binary:
            problems.append(f"node {n!r} (Embedding): a binary embedding (SpikeGPT's) has no "
                            "integer form in an EGRU graph (the EGRU reads real values)")
        preds = g.predecessors(n)
        if len(preds) != 1 or g.nodes[preds[0]].role != "input":
            problems.append(f"node {n!r} (Embedding): must read one Input (one-hot tokens), "
                            f"reads {preds}")
        bad = [s for s in g.successors(n) if type(g.nodes[s]) is not N.EGRU]
        if bad:
            problems.append(f"node {n!r} (Embedding): feeds {bad}; its integer form feeds EGRU "
                            "populations only")
    for n in ro:
        preds = g.predecessors(n)
        if len(preds) != 1:
            problems.append(f"node {n!r} (Affine): a graded readout reads exactly one EGRU, "
                            f"it reads {preds}")
        bad = [s for s in g.successors(n) if g.nodes[s].role != "output"]
        if bad:
            problems.append(f"node {n!r} (Affine): reads EGRU events and feeds {bad}; a graded "
                            "readout feeds Output nodes only")
    return problems


def is_lm(g: Graph) -> bool:
    """Whether ``g`` is an EGRU graph with an Embedding or a graded readout."""
    emb, ro = lm_parts(g)
    return bool(emb or ro)


def quantize_lm(g: Graph, fmt: NumberFormat, in_frac_inputs: int) -> Graph:
    """Quantize an EGRU LM graph ``g`` in place (module docstring) and return it validated;
    ``GraphError`` naming the node for what the format cannot hold. ``in_frac_inputs``: fraction
    bits of values fed directly to an EGRU by an Input (0: spikes or counts)."""
    from .egru_int import quantize_egru, weight_frac

    problems = lm_problems(g)
    allowed = (N.Input, N.Output, N.EGRU, LM.Embedding, N.Affine)
    problems += [f"node {n!r} ({node.kind}) has no integer form in an EGRU language model "
                 "(Input, Embedding, EGRU, a graded-readout Affine, Output)"
                 for n, node in g.nodes.items() if type(node) not in allowed]
    emb, ro = lm_parts(g)
    problems += [f"node {n!r} (Affine): has no integer form here (an Affine in an EGRU graph "
                 "must read one EGRU: a graded readout)"
                 for n, node in g.nodes.items() if type(node) is N.Affine and n not in ro]
    if problems:
        raise GraphError(problems[0])
    F = fmt.frac_bits or fmt.egru_frac_bits
    if fmt.family != "fixed" or F == 0:
        raise GraphError(f"format {fmt.name}: no integer EGRU (fixed-point state with fraction "
                         "bits needed: 'spinnaker' s16.15, FPGA 'int16' with 12)")
    regs: dict[str, Any] = {"embedding": {}, "readout": {}}
    node: Any
    for n in emb:
        node = g.nodes[n]
        e = np.round(np.asarray(node.weight, np.float64) * (1 << F))
        if np.abs(e).max(initial=0) > fmt.state_max:
            raise GraphError(f"node {n!r} (Embedding): field 'weight' holds "
                             f"{float(np.abs(node.weight).max()):.4g}, beyond the "
                             f"{fmt.state_bits}-bit state with {F} fraction bits of format {fmt.name}")
        node.weight = e.astype(np.int64)
        regs["embedding"][n] = {"frac_bits": F}
    scales: dict[str, float] = {}
    for n in g.schedule().order:
        node = g.nodes[n]
        if type(node) is not N.EGRU:
            continue
        fracs = {in_frac_inputs if g.nodes[p].role == "input" else F for p in g.predecessors(n)}
        if len(fracs) != 1:
            raise GraphError(f"node {n!r} (EGRU): its inputs have different fraction widths "
                             f"{sorted(fracs)}")
        try:
            quantize_egru(n, node, fmt, fracs.pop())
        except ValueError as exc:
            raise GraphError(str(exc)) from None
        scales[n] = float(1 << F)
    for n in ro:
        node = g.nodes[n]
        try:
            kf = weight_frac(np.asarray(node.weight), fmt, n, "weight", kind="Affine")
        except ValueError as exc:
            raise GraphError(str(exc)) from None
        b = np.round(np.asarray(node.bias, np.float64) * (1 << F))
        if np.abs(b).max(initial=0) > fmt.state_max:
            raise GraphError(f"node {n!r} (Affine): field 'bias' overflows the {fmt.state_bits}-bit "
                             f"state of format {fmt.name}")
        node.weight = np.round(np.asarray(node.weight, np.float64) * 2.0 ** kf).astype(np.int32)
        node.bias = b.astype(np.int64)
        node.weight_exp = 0
        regs["readout"][n] = {"kernel_frac": kf, "in_frac": F, "frac_bits": F,
                              "state_bits": fmt.state_bits, "source": g.predecessors(n)[0]}
    g.metadata = {**g.metadata, "format": fmt.to_dict(), "scales": scales, META_KEY: regs}
    return g.validate()


def registers(g: Graph) -> dict[str, Any]:
    """The LM registers of a quantized graph (``{}``-valued sections when it has none)."""
    regs = g.metadata.get(META_KEY) or {}
    return {"embedding": dict(regs.get("embedding", {})), "readout": dict(regs.get("readout", {}))}


def embed(name: str, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The integer embedding of one-hot tokens ``x [T, B, V]`` -> ``[T, B, D]``: each step's row
    of ``weight`` (int64 ``[V, D]``); ``ValueError`` naming the node unless ``x`` is one-hot."""
    x = np.asarray(x)
    if x.shape[-1] != weight.shape[0] or not (((x == 0) | (x == 1)).all()
                                              and (x.sum(-1) == 1).all()):
        raise ValueError(f"node {name!r} (Embedding): its input must be one-hot tokens [.., "
                         f"{weight.shape[0]}] (one 1 per step and sample, zeros elsewhere)")
    return np.asarray(weight, np.int64)[x.argmax(-1)]


class Readout:
    """The integer decoder head of a graded readout node (module docstring)."""

    def __init__(self, name: str, node: Any, regs: dict[str, Any]) -> None:
        for k in ("kernel_frac", "frac_bits", "state_bits"):
            if k not in regs:
                raise ValueError(f"node {name!r} (Affine): graded-readout register {k!r} missing "
                                 f"from graph.metadata[{META_KEY!r}]")
        w = np.asarray(node.weight)
        if not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"node {name!r} (Affine): field 'weight' is not integer; run "
                             "neuro.graph.quantize first")
        self.name = name
        self.w = w.astype(np.int64)                       # [V, H]
        self.b = np.asarray(node.bias, np.int64)          # [V]
        self.kf = int(regs["kernel_frac"])
        sb = int(regs["state_bits"])
        self.lo, self.hi = -(1 << (sb - 1)), (1 << (sb - 1)) - 1

    def finish(self, acc: np.ndarray) -> np.ndarray:
        """``logits`` from the exact sums ``acc = y . Wq`` ``[..., V]``."""
        return np.clip((acc >> self.kf) + self.b, self.lo, self.hi)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """``logits [T, B, V]`` of graded events ``y [T, B, H]`` (exact int64 sums)."""
        y = np.asarray(y, np.int64)
        acc = np.zeros((*y.shape[:-1], self.w.shape[0]), np.int64)
        flat, out = y.reshape(-1, y.shape[-1]), acc.reshape(-1, self.w.shape[0])
        for i in range(flat.shape[0]):  # row by row: only the units with an event
            live = np.flatnonzero(flat[i])
            if live.size:
                out[i] = self.w[:, live] @ flat[i, live]
        return self.finish(acc)


def dequantize_logits(logits: np.ndarray, g: Graph, name: str | None = None) -> np.ndarray:
    """Real logits ``logits / 2^F`` of a readout (the only one, or ``name``)."""
    ro = registers(g)["readout"]
    if not ro:
        raise ValueError("the graph has no graded readout (graph.metadata['egru_lm'])")
    regs = ro[name] if name is not None else next(iter(ro.values()))
    return np.asarray(logits, np.float64) / float(1 << int(regs["frac_bits"]))


__all__ = ["META_KEY", "Readout", "dequantize_logits", "embed", "is_lm", "lm_parts",
           "lm_problems", "quantize_lm", "registers"]
