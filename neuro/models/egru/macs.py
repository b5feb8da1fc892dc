"""Multiply-accumulates per token of an EGRU language model: dense, and what activity sparsity
(events) and weight sparsity (pruned weights, CSR) leave.

Counting rule (weight-matrix products only; biases, gate nonlinearities, the element-wise state
update, the embedding lookup and the softmax are O(H) or O(V) per token and not counted). For
EGRU layer ``l`` with input width ``I``, ``H`` units, input weights ``W [I, 3H]`` and recurrent
weights ``R [H, 3H]`` (pruning masks applied), per token (one sequence, one step ``t``)::

    dense:          3H I + 3H H
    weights only:   nnz(W) + nnz(R)                         (every input and unit active)
    activity only:  3H (#{i: x_i[t] != 0} + #{j: o_j[t-1] = 1})      (dense rows)
    events x CSR:   sum_{i: x_i[t] != 0} nnz(W[i, :]) + sum_{j: o_j[t-1] = 1} nnz(R[j, :])

``x`` is the layer's input (the embedding row for layer 0, which is dense; the events ``y`` of the
layer below otherwise, non-zero exactly where that layer's ``o = 1``); ``o[t-1]`` are the layer's
own events at the previous step (the state carried across segments; zero before the first
word). This is the work of the fused kernel, which reads the rows of ``W`` and ``R`` of non-zero
inputs only, through CSR when pruned. The tied decoder ``logits = y_L E^T + b`` (``E [V, emb]``,
never pruned) costs ``V emb`` dense and ``V #{j: o_L,j[t] = 1}`` event-driven. Counts are
averaged over every token of the held-out data, measured in evaluation mode with the state
carried (as :func:`~.training.evaluate`).

Dense recurrent baselines: an ``nn.GRU`` layer costs ``3H (I + H)``, an ``nn.LSTM`` layer
``4H (I + H)`` per token (:func:`dense_macs_per_token`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .model import EGRULanguageModel
from .pruning import egru_layers

GATES = {"egru": 3, "gru": 3, "lstm": 4}


def dense_macs_per_token(kind: str, emb_dim: int, hidden_sizes: list[int],
                         vocab_size: int) -> dict[str, Any]:
    """Dense MACs per token of a ``kind`` (``egru``, ``gru``, ``lstm``) language model with a tied
    decoder: ``{"layers": [per layer], "decoder": V emb, "total"}``."""
    if kind not in GATES:
        raise ValueError(f"dense_macs_per_token: kind must be one of {sorted(GATES)}, got {kind!r}")
    sizes = [emb_dim] + list(hidden_sizes)
    layers = [GATES[kind] * h * (i + h) for i, h in zip(sizes[:-1], sizes[1:])]
    decoder = vocab_size * emb_dim
    return {"layers": layers, "decoder": decoder, "total": sum(layers) + decoder}


@torch.no_grad()
def macs_per_token(model: EGRULanguageModel, data: Tensor, *, batch_size: int = 10,
                   bptt: int = 35) -> dict[str, Any]:
    """Measured MACs per token of ``model`` on word ids ``data [N]`` (module docstring's rule):
    ``{"tokens", "activity_sparsity", "weight_sparsity", "layers": [{"dense", "weights_only",
    "activity_only", "events_csr", "input_activity", "event_rate"}], "decoder": {"dense",
    "events"}, "total": {"dense", "weights_only", "activity_only", "events_csr"}}`` (totals
    include the decoder; ``weights_only`` and ``dense`` count the decoder dense)."""
    from neuro.datasets.wordlm import batchify, bptt_batches

    if not isinstance(model, EGRULanguageModel):
        raise ValueError(f"macs_per_token: expects an EGRULanguageModel, got "
                         f"{type(model).__name__}")
    layers = egru_layers(model)
    cfg = model.config
    W = [layer.effective_kernel().detach() for layer in layers]
    R = [layer.effective_recurrent().detach() for layer in layers]
    w_rows = [(w != 0).sum(1).to(torch.float64) for w in W]  # [I] non-zeros per input row
    r_rows = [(r != 0).sum(1).to(torch.float64) for r in R]  # [H]
    emb_nz = (model.embedding.weight.detach() != 0).to(torch.float64)  # [V, E]
    n = len(layers)
    ev_csr = [0.0] * n
    act_only = [0.0] * n
    in_active = [0.0] * n
    events = [0.0] * n
    dec_events = 0.0
    tokens = 0
    was = model.training
    model.eval()
    stream = batchify(data, min(batch_size, max(1, data.numel() // 2)))
    state = None
    for x, _ in bptt_batches(stream, bptt):
        prev = state
        _, state = model(x, state)
        o = [t.to(torch.float64) for t in model.last_aux.o]  # per layer [T, B, H]
        tokens += x.numel()
        for i in range(n):
            inp = emb_nz[x] if i == 0 else o[i - 1]  # [T, B, I]: non-zero inputs
            before = (torch.zeros_like(o[i][:1]) if prev is None
                      else prev[i].o.to(torch.float64)[None])
            o_prev = torch.cat([before, o[i][:-1]])  # [T, B, H]: events at t - 1
            ev_csr[i] += float((inp @ w_rows[i]).sum() + (o_prev @ r_rows[i]).sum())
            act_only[i] += float(3 * layers[i].hidden_size * (inp.sum() + o_prev.sum()))
            in_active[i] += float(inp.sum())
            events[i] += float(o[i].sum())
        dec_events += float(o[-1].sum()) * cfg.vocab_size
    model.train(was)
    tokens = max(tokens, 1)
    dense = dense_macs_per_token("egru", cfg.emb_dim, cfg.hidden_sizes, cfg.vocab_size)
    per_layer = []
    for i, layer in enumerate(layers):
        per_layer.append({
            "dense": dense["layers"][i],
            "weights_only": int((W[i] != 0).sum() + (R[i] != 0).sum()),
            "activity_only": act_only[i] / tokens,
            "events_csr": ev_csr[i] / tokens,
            "input_activity": in_active[i] / tokens / W[i].shape[0],
            "event_rate": events[i] / tokens / layer.hidden_size})
    dec = {"dense": dense["decoder"], "events": dec_events / tokens}
    total = {
        "dense": dense["total"],
        "weights_only": sum(p["weights_only"] for p in per_layer) + dec["dense"],
        "activity_only": sum(p["activity_only"] for p in per_layer) + dec["events"],
        "events_csr": sum(p["events_csr"] for p in per_layer) + dec["events"]}
    zeros = sum(int((w == 0).sum()) for w in W + R)
    size = sum(w.numel() for w in W + R)
    units = sum(layer.hidden_size for layer in layers)
    return {"tokens": tokens, "layers": per_layer, "decoder": dec, "total": total,
            "weight_sparsity": zeros / max(size, 1),
            "activity_sparsity": 1.0 - sum(events) / tokens / max(units, 1)}


__all__ = ["GATES", "dense_macs_per_token", "macs_per_token"]
