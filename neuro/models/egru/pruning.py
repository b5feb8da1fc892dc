"""Weight sparsity for EGRU models: magnitude pruning to a target with fine-tuning, CSR storage.

Magnitude pruning (per weight matrix): keep the ``round((1 - s) n)`` entries of largest
``|w|``, zero the rest and record a 0/1 mask (``EGRULayer.kernel_mask`` / ``recurrent_mask``);
the layer multiplies its weights by the mask, so pruned weights stay 0 through fine-tuning (their
gradient is 0). Gradual pruning follows Zhu & Gupta (2017)::

    s(k) = s_final (1 - (1 - k / K)^3),   k = 1 .. K rounds, fine-tuning between rounds

(the SpiNNaker 2 EGRU uses 95 % weight sparsity, stored as CSR). With a recurrent mask the fused
kernel visits ``R`` through a CSR index of its non-zeros, so pruned weights are never read.
:func:`to_csr` / :func:`from_csr` give the CSR form (``torch.sparse_csr`` tensors) for storage.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import torch
from torch import Tensor, nn

from .layer import EGRULayer

WEIGHTS = ("kernel", "recurrent_kernel")
_MASK = {"kernel": "kernel_mask", "recurrent_kernel": "recurrent_mask"}


def egru_layers(model: nn.Module) -> list[EGRULayer]:
    """The EGRU layers of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, EGRULayer)]


def magnitude_mask(weight: Tensor, sparsity: float) -> Tensor:
    """0/1 mask keeping the ``round((1 - sparsity) * n)`` largest-magnitude entries of ``weight``."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"pruning sparsity must lie in [0, 1), got {sparsity}")
    n = weight.numel()
    keep = int(round((1.0 - sparsity) * n))
    mask = torch.zeros(n, dtype=weight.dtype, device=weight.device)
    if keep > 0:
        mask[weight.detach().abs().flatten().topk(keep).indices] = 1
    return mask.view_as(weight)


def prune(model: nn.Module, sparsity: float, weights: Iterable[str] = WEIGHTS) -> dict[str, float]:
    """Prune every EGRU layer's ``weights`` to ``sparsity`` by magnitude (pruned entries of an
    earlier round stay pruned: they have magnitude 0). Returns the achieved sparsity per matrix."""
    out = {}
    weights = tuple(weights)
    for name in weights:
        if name not in WEIGHTS:
            raise ValueError(f"prune: weights must be among {WEIGHTS}, got {name!r}")
    layers = egru_layers(model)
    if not layers:
        raise ValueError("prune: the model has no EGRU layer")
    for i, layer in enumerate(layers):
        for name in weights:
            w = getattr(layer, name)
            old = getattr(layer, _MASK[name])
            eff = w if old is None else w * old
            mask = magnitude_mask(eff, sparsity)
            with torch.no_grad():
                w.mul_(mask)
            setattr(layer, _MASK[name], mask)
            out[f"layer{i}.{name}"] = 1.0 - float(mask.mean())
    return out


def schedule(final: float, rounds: int) -> list[float]:
    """Zhu & Gupta's cubic schedule: the sparsity after each of ``rounds`` pruning rounds."""
    if rounds < 1:
        raise ValueError(f"pruning rounds must be >= 1, got {rounds}")
    return [final * (1 - (1 - k / rounds) ** 3) for k in range(1, rounds + 1)]


M = TypeVar("M", bound=nn.Module)


def prune_and_fine_tune(model: M, final: float, rounds: int,
                        fine_tune: Callable[[M, int], object],
                        weights: Iterable[str] = WEIGHTS) -> list[dict[str, float]]:
    """Gradual pruning: for each round ``k``, :func:`prune` to ``schedule(final, rounds)[k]`` then
    ``fine_tune(model, k)`` (e.g. an epoch of :func:`~.training.fit`). Returns each round's
    achieved sparsities."""
    history = []
    for k, s in enumerate(schedule(final, rounds)):
        history.append(prune(model, s, weights))
        fine_tune(model, k)
    return history


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zero entries over all EGRU weight matrices (masks applied)."""
    zeros = total = 0
    for layer in egru_layers(model):
        for w in (layer.effective_kernel(), layer.effective_recurrent()):
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / max(total, 1)


def to_csr(model: nn.Module) -> dict[str, Tensor]:
    """The EGRU weight matrices as ``torch.sparse_csr`` tensors (``layer{i}.{name}``): only the
    non-zeros are stored (``crow_indices``, ``col_indices``, ``values``)."""
    import warnings

    warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
    return {f"layer{i}.{name}": (layer.effective_kernel() if name == "kernel"
                                 else layer.effective_recurrent()).detach().to_sparse_csr()
            for i, layer in enumerate(egru_layers(model)) for name in WEIGHTS}


def from_csr(model: nn.Module, csr: dict[str, Tensor]) -> None:
    """Load :func:`to_csr`'s tensors back: dense weights and the masks of their non-zeros."""
    layers = egru_layers(model)
    for key, t in csr.items():
        try:
            idx, name = key.split(".", 1)
            layer = layers[int(idx.removeprefix("layer"))]
        except (ValueError, IndexError):
            raise ValueError(f"from_csr: unknown entry {key!r}") from None
        if name not in WEIGHTS:
            raise ValueError(f"from_csr: unknown entry {key!r}")
        dense = t.to_dense()
        w = getattr(layer, name)
        if dense.shape != w.shape:
            raise ValueError(f"from_csr: {key} has shape {tuple(dense.shape)}, the model "
                             f"{tuple(w.shape)}")
        with torch.no_grad():
            w.copy_(dense)
        setattr(layer, _MASK[name], (dense != 0).to(w.dtype))


__all__ = ["WEIGHTS", "egru_layers", "from_csr", "magnitude_mask", "prune",
           "prune_and_fine_tune", "schedule", "to_csr", "weight_sparsity"]
