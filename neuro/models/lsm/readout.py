"""Readouts on spike features: closed-form ridge regression and trained ANN projections.

**Features** (:func:`spike_features`). From spikes ``s [T, B, N]``: the exponentially filtered
trace at the last step, ``f = sum_t beta^(T-1-t) s[t]`` (``beta = 1``: spike counts), optionally
per time bin (``bins`` equal slices of the sequence, concatenated: ``[B, bins * N]``).

**Ridge** (:func:`fit_ridge`). One-hot targets ``Y [n, C]``; features standardised with the
training mean ``mu`` and standard deviation ``sd`` (constant features get ``sd = 1``); then
``W_z = (Z^T Z + alpha I)^-1 Z^T (Y - mean Y)`` on ``Z = (F - mu) / sd`` (float64, the bias is
not penalised) and, back in feature units, ``W = W_z / sd``, ``b = mean Y - W mu``. Prediction:
``argmax(F W^T + b)``. :func:`select_alpha` picks ``alpha`` on a held-out part of the training
set and refits on all of it.

**Trained projections** (:class:`ProjectionHead`): an MLP (``hidden`` ReLU layers, or none:
linear) on standardised features, trained with Adam (the LSM reference trains such an ANN on the
reservoir's spike counts). Two losses:

* ``"ce"``: class logits, cross-entropy;
* ``"contrastive"``: CLIP-style. The head maps features to an ``embed_dim`` embedding ``z``; each
  class has a learned embedding ``e_c`` (the "text" side). With unit vectors and temperature
  ``tau``, ``S[i, j] = <z_i, e_{y_j}> / tau`` over a batch; targets ``P[i, j] = [y_i = y_j] /
  #{k: y_k = y_i}`` (samples of the same class are all positives); loss ``(CE_rows(S, P) +
  CE_cols(S, P)) / 2``. Prediction: the class whose embedding is nearest in cosine.

:func:`train_cross_modal` is the paper's zero-shot setting: two heads (one per modality, e.g.
image and audio reservoirs) trained with the same symmetric loss on pairs of samples of the same
class; :func:`zero_shot_accuracy` classifies samples of unseen classes of modality A by the
nearest class prototype (mean unit embedding) of modality B.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


# ------------------------------------------------------------------------------ features
def spike_features(spikes: Tensor, *, beta: float = 1.0, bins: int = 1) -> Tensor:
    """``[T, B, N]`` spikes -> ``[B, bins * N]`` filtered traces at the end of each time bin."""
    if spikes.dim() != 3:
        raise ValueError(f"spike_features: spikes must be [T, B, N], got shape {tuple(spikes.shape)}")
    if not 0 <= beta <= 1:
        raise ValueError(f"spike_features: beta must lie in [0, 1], got {beta}")
    T = spikes.shape[0]
    if not isinstance(bins, int) or not 1 <= bins <= T:
        raise ValueError(f"spike_features: bins must be an int in 1..T={T}, got {bins!r}")
    s = spikes.float()
    edges = [round(i * T / bins) for i in range(bins + 1)]
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        w = torch.tensor([beta ** (b - 1 - t) for t in range(a, b)], dtype=s.dtype, device=s.device)
        out.append(torch.einsum("t,tbn->bn", w, s[a:b]))
    return torch.cat(out, -1)


# ------------------------------------------------------------------------------ ridge
@dataclass
class RidgeReadout:
    """``logits = features @ weight.T + bias``; ``weight [C, D]``, ``bias [C]`` (float64)."""

    weight: np.ndarray
    bias: np.ndarray
    alpha: float

    def logits(self, features: np.ndarray | Tensor) -> np.ndarray:
        f = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, np.float64)
        return f @ self.weight.T + self.bias

    def predict(self, features: np.ndarray | Tensor) -> np.ndarray:
        return self.logits(features).argmax(1)

    def accuracy(self, features: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> float:
        y = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
        return float((self.predict(features) == y).mean())


def _as_np(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, np.float64)


def _check_xy(features: Any, labels: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    f, y = _as_np(features), np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if f.ndim != 2:
        raise ValueError(f"features must be [n, D], got shape {f.shape}")
    if y.shape != (f.shape[0],):
        raise ValueError(f"labels must be [{f.shape[0]}], got shape {y.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features hold NaN or infinite values")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
    return f, y.astype(np.int64)


def fit_ridge(features: Any, labels: Any, n_classes: int, *, alpha: float = 1.0) -> RidgeReadout:
    """Closed-form ridge regression to one-hot targets (module docstring)."""
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"ridge alpha must be a finite number >= 0, got {alpha!r}")
    f, y = _check_xy(features, labels, n_classes)
    Y = np.eye(n_classes)[y]
    mu, sd = f.mean(0), f.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    Z = (f - mu) / sd
    ym = Y.mean(0)
    A = Z.T @ Z + alpha * np.eye(Z.shape[1])
    wz = np.linalg.solve(A, Z.T @ (Y - ym)) if alpha > 0 else np.linalg.lstsq(Z, Y - ym, rcond=None)[0]
    w = (wz / sd[:, None]).T
    return RidgeReadout(w, ym - w @ mu, float(alpha))


def select_alpha(features: Any, labels: Any, n_classes: int, *,
                 alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0),
                 val_fraction: float = 0.2, seed: int = 0) -> RidgeReadout:
    """Pick ``alpha`` by accuracy on a seeded held-out ``val_fraction`` of the data (ties: the
    larger alpha), then refit on all of it."""
    if not alphas:
        raise ValueError("select_alpha: give at least one alpha")
    f, y = _check_xy(features, labels, n_classes)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(round(val_fraction * len(y))))
    val, tr = order[:n_val], order[n_val:]
    best = max(sorted(alphas), key=lambda a: (fit_ridge(f[tr], y[tr], n_classes, alpha=a).accuracy(f[val], y[val]), a))
    return fit_ridge(f, y, n_classes, alpha=best)


# ------------------------------------------------------------------------------ trained heads
class ProjectionHead(nn.Module):
    """Standardisation -> MLP (``dims[0] -> ... -> dims[-1]``, ReLU between layers).

    With ``loss="contrastive"`` it also holds one learned embedding per class (``class_embed``,
    ``[n_classes, dims[-1]]``) and predicts the nearest class in cosine.
    """

    mean: Tensor  # buffers registered in __init__
    std: Tensor

    def __init__(self, dims: Sequence[int], *, loss: str = "ce", n_classes: int | None = None,
                 temperature: float = 0.1) -> None:
        super().__init__()
        dims = [int(d) for d in dims]
        if len(dims) < 2 or min(dims) <= 0:
            raise ValueError(f"ProjectionHead dims must be >= 2 positive sizes, got {dims}")
        if loss not in ("ce", "contrastive"):
            raise ValueError(f"ProjectionHead loss must be 'ce' or 'contrastive', got {loss!r}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.dims, self.loss_kind, self.temperature = dims, loss, float(temperature)
        self.register_buffer("mean", torch.zeros(dims[0]))
        self.register_buffer("std", torch.ones(dims[0]))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        if loss == "contrastive":
            if not n_classes:
                raise ValueError("a contrastive ProjectionHead needs n_classes")
            self.class_embed = nn.Parameter(torch.randn(n_classes, dims[-1]) / math.sqrt(dims[-1]))
        self.n_classes = n_classes or dims[-1]

    def set_normalisation(self, features: Tensor) -> None:
        with torch.no_grad():
            self.mean.copy_(features.mean(0))
            sd = features.std(0) if features.shape[0] > 1 else torch.ones_like(self.std)
            self.std.copy_(torch.where(sd > 1e-6, sd, torch.ones_like(sd)))

    def forward(self, features: Tensor) -> Tensor:
        """Logits ``[B, C]`` (``"ce"``) or unit embeddings ``[B, embed_dim]`` (``"contrastive"``)."""
        z = self.net((features - self.mean) / self.std)
        return F.normalize(z, dim=-1) if self.loss_kind == "contrastive" else z

    def logits(self, features: Tensor) -> Tensor:
        """Class scores ``[B, C]`` for both kinds (cosine / temperature for contrastive)."""
        out = self(features)
        if self.loss_kind == "ce":
            return out
        return out @ F.normalize(self.class_embed, dim=-1).t() / self.temperature

    def config_dict(self) -> dict[str, Any]:
        return {"dims": self.dims, "loss": self.loss_kind, "n_classes": self.n_classes,
                "temperature": self.temperature}


def clip_loss(za: Tensor, zb: Tensor, labels_a: Tensor, labels_b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE of unit embeddings ``za [n, d]`` and ``zb [m, d]`` where every pair of the
    same label is a positive (rows and columns normalised to sum to 1)."""
    s = za @ zb.t() / temperature
    pos = (labels_a[:, None] == labels_b[None, :]).to(s.dtype)
    if not bool((pos.sum(1) > 0).all() and (pos.sum(0) > 0).all()):
        raise ValueError("clip_loss: every sample needs at least one positive of the same label")
    rows = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(s, 1)).sum(1).mean()
    cols = -(pos / pos.sum(0, keepdim=True) * F.log_softmax(s, 0)).sum(0).mean()
    return (rows + cols) / 2


@dataclass
class TrainLog:
    loss: list[float]
    seconds: float


def _train_minibatches(opt: torch.optim.Optimizer, n: int, *, epochs: int, batch_size: int,
                       generator: torch.Generator, loss_of: Callable[[Tensor], Tensor],
                       before_epoch: Callable[[], None] | None = None) -> TrainLog:
    """The readouts' one training loop: per epoch ``before_epoch()``, a fresh permutation of the
    ``n`` samples, and one Adam step per mini-batch of ``loss_of(indices)``; logs the mean loss."""
    import time

    log = TrainLog([], 0.0)
    start = time.perf_counter()
    for _ in range(epochs):
        if before_epoch is not None:
            before_epoch()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = loss_of(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log.loss.append(total / n)
    log.seconds = time.perf_counter() - start
    return log


def _check_training(epochs: int, batch_size: int, lr: float) -> None:
    if epochs <= 0 or batch_size <= 0 or not lr > 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")


def train_head(head: ProjectionHead, features: Tensor, labels: Tensor, *, epochs: int = 100,
               lr: float = 1e-3, batch_size: int = 100, weight_decay: float = 0.0, seed: int = 0) -> TrainLog:
    """Train ``head`` (Adam, shuffled mini-batches) on ``features [n, D]``, ``labels [n]``."""
    _check_training(epochs, batch_size, lr)
    features = torch.as_tensor(features, dtype=torch.float32)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if features.shape[0] != labels.shape[0] or features.shape[1] != head.dims[0]:
        raise ValueError(f"train_head: features {tuple(features.shape)} and labels {tuple(labels.shape)} "
                         f"do not fit a head with input size {head.dims[0]}")
    head.set_normalisation(features)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)

    def loss_of(idx: Tensor) -> Tensor:
        x, y = features[idx], labels[idx]
        if head.loss_kind == "ce":
            return F.cross_entropy(head(x), y)
        e = F.normalize(head.class_embed, dim=-1)
        return clip_loss(head(x), e[y], y, y, head.temperature)

    head.train()
    log = _train_minibatches(opt, len(labels), epochs=epochs, batch_size=batch_size,
                             generator=gen, loss_of=loss_of)
    head.eval()
    return log


@torch.no_grad()
def head_accuracy(head: ProjectionHead, features: Tensor, labels: Tensor) -> float:
    pred = head.logits(torch.as_tensor(features, dtype=torch.float32)).argmax(1)
    return float((pred == torch.as_tensor(labels)).float().mean())


# ------------------------------------------------------------------------------ cross-modal
def train_cross_modal(head_a: ProjectionHead, head_b: ProjectionHead, feat_a: Tensor, labels_a: Tensor,
                      feat_b: Tensor, labels_b: Tensor, *, epochs: int = 50, lr: float = 1e-3,
                      batch_size: int = 100, seed: int = 0) -> TrainLog:
    """CLIP-style training of two contrastive heads on pairs of samples of the same class: each
    sample of A is paired with a random sample of B of its class, drawn anew every epoch."""
    for h in (head_a, head_b):
        if h.loss_kind != "contrastive":
            raise ValueError("train_cross_modal needs two contrastive ProjectionHeads")
    feat_a, feat_b = torch.as_tensor(feat_a, dtype=torch.float32), torch.as_tensor(feat_b, dtype=torch.float32)
    labels_a, labels_b = torch.as_tensor(labels_a), torch.as_tensor(labels_b)
    missing = sorted(set(labels_a.tolist()) - set(labels_b.tolist()))
    if missing:
        raise ValueError(f"train_cross_modal: classes {missing} of A have no sample in B")
    head_a.set_normalisation(feat_a)
    head_b.set_normalisation(feat_b)
    by_class = {int(c): torch.nonzero(labels_b == c).flatten() for c in labels_b.unique()}
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in list(head_a.net.parameters()) + list(head_b.net.parameters())]
    opt = torch.optim.Adam(params, lr=lr)
    partner = torch.empty(len(labels_a), dtype=torch.int64)

    def draw_partners() -> None:
        for c, idx in by_class.items():
            sel = labels_a == c
            partner[sel] = idx[torch.randint(len(idx), (int(sel.sum()),), generator=gen)]

    def loss_of(ia: Tensor) -> Tensor:
        y = labels_a[ia]
        return clip_loss(head_a(feat_a[ia]), head_b(feat_b[partner[ia]]), y, y, head_a.temperature)

    log = _train_minibatches(opt, len(labels_a), epochs=epochs, batch_size=batch_size,
                             generator=gen, loss_of=loss_of, before_epoch=draw_partners)
    head_a.eval()
    head_b.eval()
    return log


@torch.no_grad()
def zero_shot_accuracy(head_a: ProjectionHead, head_b: ProjectionHead, feat_a: Tensor, labels_a: Tensor,
                       feat_b: Tensor, labels_b: Tensor, classes: Sequence[int]) -> float:
    """Accuracy of classifying A samples of ``classes`` by the nearest B class prototype (the mean
    unit embedding of B's samples of each class in ``classes``)."""
    classes = [int(c) for c in classes]
    if len(classes) < 2:
        raise ValueError("zero_shot_accuracy needs at least two classes")
    feat_a, feat_b = torch.as_tensor(feat_a, dtype=torch.float32), torch.as_tensor(feat_b, dtype=torch.float32)
    labels_a, labels_b = torch.as_tensor(labels_a), torch.as_tensor(labels_b)
    protos = []
    for c in classes:
        sel = labels_b == c
        if not bool(sel.any()):
            raise ValueError(f"zero_shot_accuracy: class {c} has no sample in B")
        protos.append(F.normalize(head_b(feat_b[sel]).mean(0), dim=0))
    P = torch.stack(protos)
    keep = torch.isin(labels_a, torch.tensor(classes))
    if not bool(keep.any()):
        raise ValueError("zero_shot_accuracy: no A sample of the given classes")
    pred = (head_a(feat_a[keep]) @ P.t()).argmax(1)
    truth = torch.tensor([classes.index(int(c)) for c in labels_a[keep]])
    return float((pred == truth).float().mean())


__all__ = ["ProjectionHead", "RidgeReadout", "TrainLog", "clip_loss", "fit_ridge", "head_accuracy",
           "select_alpha", "spike_features", "train_cross_modal", "train_head", "zero_shot_accuracy"]
