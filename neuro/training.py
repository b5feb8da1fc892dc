"""A small, explicit training loop for classifiers whose output is ``[T, B, C]``.

Loss: cross-entropy of the readout summed over time (``logits = out.sum(0)``); prediction:
argmax of the same sum. Seeds torch for reproducibility; shows a progress bar (tqdm) per epoch.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from neuro.datasets.synthetic import SpikeDataset


@dataclass
class TrainResult:
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                "loss": self.loss, "seconds": round(self.seconds, 3)}


@torch.no_grad()
def evaluate(model: nn.Module, data: SpikeDataset, batch_size: int = 256,
             predict: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Accuracy of ``predict(out)`` over ``data`` (default: argmax of the time-summed readout).
    Models with learnable delays are evaluated with integer delays, as the reference does."""
    predict = predict or (lambda out: out.sum(0).argmax(-1))
    was = model.training
    model.eval()
    delays = getattr(model, "integer_delays", None)
    if delays is not None:
        delays(True)
    correct = 0
    for x, y in data.batches(batch_size):
        out, _ = model(x)
        correct += int((predict(out) == y).sum())
    if delays is not None:
        delays(False)
    model.train(was)
    return correct / max(1, len(data))


def train_classifier(
    model: nn.Module,
    train: SpikeDataset,
    test: SpikeDataset,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Adam on summed-readout cross-entropy; returns per-epoch metrics."""
    from tqdm import tqdm

    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainResult()
    start = time.perf_counter()
    n_batches = (len(train) + batch_size - 1) // batch_size
    for epoch in range(epochs):
        model.train()
        total, correct, seen = 0.0, 0, 0
        bar = tqdm(train.batches(batch_size, shuffle=True, generator=gen), total=n_batches,
                   desc=f"epoch {epoch + 1}/{epochs}", disable=None if progress else True, leave=False)
        for x, y in bar:
            out, _ = model(x)
            logits = out.sum(0)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{correct / seen:.3f}")
        result.loss.append(total / seen)
        result.train_accuracy.append(correct / seen)
        result.test_accuracy.append(evaluate(model, test))
        log(f"epoch {epoch + 1}/{epochs}: loss {result.loss[-1]:.4f}  "
            f"train acc {result.train_accuracy[-1]:.3f}  test acc {result.test_accuracy[-1]:.3f}")
    result.seconds = time.perf_counter() - start
    return result


def evaluate_delay_snn(model: nn.Module, data: SpikeDataset, batch_size: int = 256) -> float:
    """Accuracy of a DelaySNN (summed-softmax prediction, integer delays)."""
    from .models.delay_snn import predict

    return evaluate(model, data, batch_size, predict)


def train_delay_snn(
    model: nn.Module,
    train: SpikeDataset,
    test: SpikeDataset,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_positions: float | None = None,
    weight_decay: float = 1e-5,
    integer_epochs: int = 0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """The reference's training recipe for :class:`neuro.models.DelaySNN`.

    Weights: Adam (``lr``, weight decay except BatchNorm) with a OneCycle schedule peaking at
    ``5 lr``, stepped per epoch. Positions: Adam (``lr_positions``, default ``100 lr``, no weight
    decay) with cosine annealing over ``epochs``. Positions are clamped after every step; the
    Gaussian width follows the sigma schedule per epoch. Test accuracy uses integer delays.
    Under ``torchrun`` (``neuro.distributed``) the model is wrapped in DDP and each rank trains on
    every ``world_size``-th batch.

    ``integer_epochs`` (default 0, the reference recipe): the last ``integer_epochs`` of the
    ``epochs`` train with the rounded integer delays that evaluation and export use; positions are
    frozen and only weights (and BatchNorm) keep learning. A position learned between two integers
    makes the Gaussian kernel split its weight over two delays, which rounding cannot keep; these
    epochs let the weights adapt to the delays the deployed network really has.
    """
    from tqdm import tqdm

    from . import distributed
    from .models.delay_snn import predict, summed_softmax_loss

    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    if not 0 <= integer_epochs <= epochs:
        raise ValueError(f"integer_epochs must lie in [0, epochs={epochs}], got {integer_epochs}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    bn = [p for m in model.modules() if isinstance(m, nn.BatchNorm1d) for p in m.parameters()]
    bn_ids = {id(p) for p in bn}
    weights = [p for p in model.weights() if id(p) not in bn_ids]
    opt_w = torch.optim.Adam([{"params": weights, "weight_decay": weight_decay},
                              {"params": bn, "weight_decay": 0.0}], lr=lr)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=5 * lr, total_steps=epochs)
    positions = model.positions()
    opt_p = sched_p = None
    if positions:
        opt_p = torch.optim.Adam(positions, lr=lr_positions or 100 * lr, weight_decay=0.0)
        sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=epochs)
    result = TrainResult()
    start = time.perf_counter()
    net = distributed.wrap(model)  # DDP under torchrun: gradients averaged over the ranks
    ws = distributed.world_size()
    n_batches = ((len(train) + batch_size - 1) // batch_size + ws - 1) // ws
    if not distributed.is_main():
        progress, log = False, (lambda s: None)
    for epoch in range(epochs):
        model.train()
        model.set_epoch(epoch, epochs)
        integer = epoch >= epochs - integer_epochs
        model.integer_delays(integer)
        total, correct, seen = 0.0, 0, 0
        batches = distributed.shard(train.batches(batch_size, shuffle=True, generator=gen))
        bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch + 1}/{epochs}",
                   disable=None if progress else True, leave=False)
        for x, y in bar:
            out, _ = net(x)
            loss = summed_softmax_loss(out, y)
            opt_w.zero_grad(set_to_none=True)
            if opt_p is not None:
                opt_p.zero_grad(set_to_none=True)
            loss.backward()
            opt_w.step()
            if opt_p is not None and not integer:
                opt_p.step()
            model.clamp_positions()
            total += loss.item() * len(y)
            correct += int((predict(out.detach()) == y).sum())
            seen += len(y)
        sched_w.step()
        if sched_p is not None:
            sched_p.step()
        distributed.sync_buffers(model)  # identical BatchNorm statistics on every rank
        result.loss.append(total / seen)
        result.train_accuracy.append(correct / seen)
        result.test_accuracy.append(evaluate_delay_snn(model, test))
        model.integer_delays(integer)  # evaluate() switched back to the training kernel
        log(f"epoch {epoch + 1}/{epochs}: loss {result.loss[-1]:.4f}  train acc "
            f"{result.train_accuracy[-1]:.3f}  test acc (integer delays) {result.test_accuracy[-1]:.3f}")
    model.integer_delays(False)  # the float positions stay the trainable checkpoint
    result.seconds = time.perf_counter() - start
    return result
