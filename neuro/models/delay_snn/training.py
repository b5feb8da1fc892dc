"""Training the delay SNN: the reference's DCLS recipe, ``neuro train delay-snn`` and the demo."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ...training import distributed
from ...training.loop import TrainResult, check_positive, evaluate, fit
from ..base import Trained, TrainRequest, split_keys
from .model import DelaySNN, DelaySNNConfig, predict, summed_softmax_loss

if TYPE_CHECKING:
    from neuro.datasets.synthetic import SpikeDataset

#: the training keys a ``--config`` JSON may hold next to the DelaySNNConfig keys
TRAIN_KEYS = frozenset({"batch_size", "lr", "lr_positions", "weight_decay", "integer_epochs",
                        "epochs", "seed"})
#: the offline delay task's network (one hidden layer of 64, K = 9)
OFFLINE: dict[str, Any] = {"n_hidden": 64, "n_layers": 1, "max_delay": 9, "dropout": 0.1}


def evaluate_delay_snn(model: nn.Module, data: SpikeDataset, batch_size: int = 256) -> float:
    """Accuracy of a DelaySNN (summed-softmax prediction, integer delays)."""
    return evaluate(model, data, batch_size, predict)


def train_delay_snn(
    model: DelaySNN,
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
    """The reference's training recipe for :class:`DelaySNN`.

    Weights: Adam (``lr``, weight decay except BatchNorm) with a OneCycle schedule peaking at
    ``5 lr``, stepped per epoch. Positions: Adam (``lr_positions``, default ``100 lr``, no weight
    decay) with cosine annealing over ``epochs``. Positions are clamped after every step; the
    Gaussian width follows the sigma schedule per epoch. Test accuracy uses integer delays.
    Under ``torchrun`` (``neuro.training.distributed``) the model is wrapped in DDP and each rank
    trains on every ``world_size``-th batch.

    ``integer_epochs`` (default 0, the reference recipe): the last ``integer_epochs`` of the
    ``epochs`` train with the rounded integer delays that evaluation and export use; positions are
    frozen and only weights (and BatchNorm) keep learning. A position learned between two integers
    makes the Gaussian kernel split its weight over two delays, which rounding cannot keep; these
    epochs let the weights adapt to the delays the deployed network really has.
    """
    check_positive(epochs=epochs, batch_size=batch_size, lr=lr)
    if not 0 <= integer_epochs <= epochs:
        raise ValueError(f"integer_epochs must lie in [0, epochs={epochs}], got {integer_epochs}")
    torch.manual_seed(seed)
    bn = [p for m in model.modules() if isinstance(m, nn.BatchNorm1d) for p in m.parameters()]
    bn_ids = {id(p) for p in bn}
    weights = [p for p in model.weights() if id(p) not in bn_ids]
    opt_w = torch.optim.Adam([{"params": weights, "weight_decay": weight_decay},
                              {"params": bn, "weight_decay": 0.0}], lr=lr)
    scheds: list = [torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=5 * lr, total_steps=epochs)]
    opts: list[torch.optim.Optimizer] = [opt_w]
    positions = model.positions()
    if positions:
        opt_p = torch.optim.Adam(positions, lr=lr_positions or 100 * lr, weight_decay=0.0)
        opts.append(opt_p)
        scheds.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=epochs))

    def integer(epoch: int) -> bool:
        return epoch >= epochs - integer_epochs

    def start(epoch: int) -> None:
        model.set_epoch(epoch, epochs)
        model.integer_delays(integer(epoch))
        if integer(epoch) and (epoch == 0 or not integer(epoch - 1)):  # the phase changes: say so
            log(f"epoch {epoch + 1}/{epochs}: from here on training uses the rounded integer delays "
                "the deployed network has (positions frozen, weights adapt); the training loss "
                "jumps at first because the Gaussian delay kernel is gone")

    def end(epoch: int, result: TrainResult) -> None:
        model.integer_delays(integer(epoch))  # evaluation switched back to the training kernel

    result = fit(model, train, test, loss=summed_softmax_loss, optimizers=opts, schedulers=scheds,
                 epochs=epochs, batch_size=batch_size, seed=seed, predict=predict,
                 stepped=lambda epoch: opts[:1] if integer(epoch) else opts,
                 on_epoch_start=start, after_step=model.clamp_positions, on_epoch_end=end,
                 progress=progress, log=log, test_label="test acc (integer delays)")
    model.integer_delays(False)  # the float positions stay the trainable checkpoint
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="directory or file with the SHD .h5/.h5.gz files "
                                       "(default: the offline delay task)")


def train(req: TrainRequest) -> Trained:
    """``neuro train delay-snn``: SHD with ``--data``, else the offline delay task; DDP under
    ``torchrun``. The config JSON holds :class:`DelaySNNConfig` keys and :data:`TRAIN_KEYS`."""
    from ...datasets import delay_pattern_task

    distributed.init_from_env()  # torchrun --nproc_per_node N: DDP over N processes
    cfg = dict(req.config)
    opts = split_keys(cfg, TRAIN_KEYS)
    epochs = opts.pop("epochs", 150 if req.data else 15)
    epochs = req.epochs if req.epochs is not None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    seed = opts.pop("seed", req.seed)
    torch.manual_seed(seed)
    if req.data:
        from ...datasets import load_shd

        config = DelaySNNConfig.from_dict(cfg)  # the SHD defaults; checked before reading data
        train_set, test_set = load_shd("train", data=req.data), load_shd("test", data=req.data)
    else:
        train_set, test_set = delay_pattern_task(seed=seed + 1)
        config = DelaySNNConfig.from_dict({"n_inputs": train_set.n_channels,
                                           "n_outputs": train_set.n_classes, **OFFLINE, **cfg})
    model = DelaySNN(config)
    req.log(f"training delay-snn on {req.data or 'the offline delay task'}: {len(train_set)} train / "
            f"{len(test_set)} test, {epochs} epochs")
    result = train_delay_snn(model, train_set, test_set, epochs=epochs, seed=seed, **opts)
    return Trained(model, {"data": str(req.data or "delay_pattern_task"), "seed": seed,
                           **result.as_dict()},
                   f"test accuracy {result.test_accuracy[-1]:.4f} (integer delays)",
                   save=distributed.is_main())


def demo(*, seed: int, epochs: int, samples: int, log: Callable[[str], None] = print) -> Trained:
    """``neuro demo``'s delay SNN: the offline delay task, 2 of the epochs with integer delays."""
    from ...datasets import delay_pattern_task

    torch.manual_seed(seed)
    log("LIF network with learnable synaptic delays (DCLS) on the offline delay task")
    train_set, test_set = delay_pattern_task(seed=seed + 1)
    log(f"data: {len(train_set)} train / {len(test_set)} test samples, T={train_set.n_steps} "
        f"steps, {train_set.n_channels} channels, {train_set.n_classes} classes that differ only "
        "in the intervals between paired channels")
    model = DelaySNN(DelaySNNConfig(n_inputs=train_set.n_channels, n_outputs=train_set.n_classes,
                                    **OFFLINE))
    result = train_delay_snn(model, train_set, test_set, epochs=epochs, seed=seed,
                             integer_epochs=min(2, epochs - 1))
    x = np.ascontiguousarray(test_set.spikes[:samples].transpose(1, 0, 2)).astype(np.float32)
    return Trained(model, {"task": "delay_pattern_task", "seed": seed, **result.as_dict()},
                   f"test accuracy: {result.test_accuracy[-1]:.3f} (integer delays; chance "
                   f"{1 / train_set.n_classes:.3f}), trained in {result.seconds:.1f} s",
                   test_inputs=x, task=f"delay pattern task, {train_set.n_classes} classes",
                   score=("accuracy", float(result.test_accuracy[-1])),
                   test_labels=np.asarray(test_set.labels[:samples], np.int64))


__all__ = ["TRAIN_KEYS", "add_arguments", "demo", "evaluate_delay_snn", "train", "train_delay_snn"]
