"""Operations per token of SpikeGPT, counted on a real run with NeuroBench's rules.

For every ``nn.Linear`` call with input rows ``u`` (one row per token and sequence) and weight
``W [O, I]`` (biases: none in SpikeGPT):

* dense operations: ``O * I`` per row (every connection);
* effective operations: ``sum_i [u_i != 0] * nnz(W[:, i])`` per row;
* an effective operation is an accumulate (AC) when the row holds only values in {-1, 0, 1}
  (spikes), otherwise a multiply-accumulate (MAC).

The spikes of the two LIF units of each block are added to the residual stream: one AC per spike
(``residual_acs``). Element-wise work (LayerNorm, token-shift mixing, sigmoid, WKV's exponentials,
LIF updates) is not a synaptic operation in NeuroBench and is reported separately as
``elementwise`` (per token and sequence: ``LN 3 x 5C``, mixes ``5 x 3C``, sigmoids ``2C``, WKV
``~14C``, LIF ``2 x 4C``, squared ReLU ``2H``; an order of magnitude, not an exact count).

What this shows (``tests``): every Linear of SpikeGPT reads a real-valued vector (a LayerNorm
output, ``r * wkv``, or ``relu(.)^2``), never spikes, so all of its synaptic operations are MACs;
the spikes only feed additions into the residual stream. Effective and dense counts differ only by
the zeros after the ReLU of the channel mixing (and exact zeros elsewhere). The paper's "20x"
/ "32.2x fewer operations" cannot come from these rules; it needs counting the LIF outputs'
sparsity as if it reached the next layer's synapses, which the data flow does not do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .model import SpikeGPT


@dataclass
class LayerOps:
    """Counts of one Linear (or the residual adds) over the whole run."""

    dense: int = 0
    macs: int = 0
    acs: int = 0

    @property
    def effective(self) -> int:
        return self.macs + self.acs


@dataclass
class OpsReport:
    """Per-layer counts over ``tokens`` token-sequence positions (``T x B``)."""

    tokens: int
    layers: dict[str, LayerOps] = field(default_factory=dict)
    spikes: int = 0
    lif_updates: int = 0
    elementwise: int = 0

    def per_token(self) -> dict[str, Any]:
        """Totals per token: dense and effective synaptic operations (MACs, ACs) of the Linears,
        their ratio, the residual ACs (spike adds), element-wise work, LIF spike rate."""
        syn = {k: v for k, v in self.layers.items() if k != "residual"}
        dense = sum(v.dense for v in syn.values())
        macs = sum(v.macs for v in syn.values())
        acs = sum(v.acs for v in syn.values())
        res = self.layers.get("residual", LayerOps())
        n = max(self.tokens, 1)
        return {
            "dense_synaptic_ops": dense / n,
            "effective_macs": macs / n,
            "effective_acs": acs / n,
            "dense_over_effective": dense / max(macs + acs, 1),
            "residual_acs": res.acs / n,
            "elementwise_ops": self.elementwise / n,
            "spike_rate": self.spikes / max(self.lif_updates, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "per_token": self.per_token(),
                "layers": {k: {**asdict(v), "effective": v.effective}
                           for k, v in self.layers.items()},
                "spikes": self.spikes, "lif_updates": self.lif_updates}


def _is_spikes(u: Tensor) -> Tensor:
    """Per row: whether every value is in {-1, 0, 1}."""
    return ((u == 0) | (u == 1) | (u == -1)).all(-1)


@torch.no_grad()
def count_ops(model: SpikeGPT, idx: Tensor) -> OpsReport:
    """Run ``idx [T, B]`` through ``model`` (fresh state) and count (module docstring)."""
    report = OpsReport(tokens=idx.numel())
    hooks = []

    def hook(name: str, lin: nn.Linear):
        nnz_col = (lin.weight != 0).sum(0).to(torch.float64)  # [I]

        def pre(_m: nn.Module, args: tuple[Tensor, ...]) -> None:
            u = args[0].reshape(-1, args[0].shape[-1])
            eff = ((u != 0).to(torch.float64) @ nnz_col)  # [rows]
            spikes = _is_spikes(u)
            ops = report.layers.setdefault(name, LayerOps())
            ops.dense += u.shape[0] * lin.weight.numel()
            ops.acs += int(eff[spikes].sum())
            ops.macs += int(eff[~spikes].sum())

        return pre

    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_pre_hook(hook(name, m)))
    probe: dict[str, Tensor] = {}
    try:
        model(idx, probe=probe)
    finally:
        for h in hooks:
            h.remove()
    cfg = model.config
    C, H, n = cfg.n_embd, cfg.ffn_mult * cfg.n_embd, idx.numel()
    residual = report.layers.setdefault("residual", LayerOps())
    for i in range(cfg.n_layer):
        for sub in ("att", "ffn"):
            s = probe[f"L{i}.{sub}_spikes"]
            if cfg.spiking:
                report.spikes += int((s != 0).sum())
                report.lif_updates += s.numel()
                residual.acs += int((s != 0).sum())
            else:
                residual.macs += int((s != 0).sum())  # real-valued adds
            residual.dense += s.numel()
    per_block = 3 * 5 * C + 5 * 3 * C + 2 * C + 14 * C + (8 * C if cfg.spiking else 0) + 2 * H
    report.elementwise = n * (cfg.n_layer * per_block + 2 * 5 * C)
    return report


__all__ = ["LayerOps", "OpsReport", "count_ops"]
